#!/usr/bin/env python3
"""A stand-in for the original Python disk host, written from its protocol description (DESIGN 1.1)
for side-by-side benchmarks: in-memory 16384 x 272-byte disk, GET /ReadBlock?block=N, POST
/WriteBlock?block=N, HTTP/1.0 (one TCP connection per request, like the original's dev server).
Usage: disk_host_imitation.py PORT"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RECORD = 272
disk = bytearray(RECORD * 16384)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _block(self, op):
        q = parse_qs(urlparse(self.path).query)
        b = q.get("block", [""])[0]
        if not b:
            self._send(400, json.dumps({"error": "Missing block arg in block " + op}).encode(), "application/json")
            return None
        return int(b)

    def do_GET(self):
        n = self._block("read")
        if n is not None:
            with lock:
                data = bytes(disk[n * RECORD:(n + 1) * RECORD])
            self._send(200, data, "application/octet-stream")

    def do_POST(self):
        n = self._block("write")
        if n is None:
            return
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if len(data) != RECORD:
            msg = "Incorrect data size %d bytes for block write" % len(data)
            self._send(400, json.dumps({"error": msg}).encode(), "application/json")
            return
        with lock:
            disk[n * RECORD:(n + 1) * RECORD] = data
        self._send(200, b"OK", "text/html; charset=utf-8")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
