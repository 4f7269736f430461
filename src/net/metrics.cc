// Retry backoff and the Prometheus text exposition.
#include <cmath>
#include <cstdio>

#include "coffer/base/random.h"
#include "coffer/net/net.h"

namespace coffer::net {

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& p, int attempt) {
  double d = double(p.initial.count()) * std::pow(p.multiplier, std::max(0, attempt - 1));
  d = std::min(d, double(p.max_delay.count()));
  uint64_t hi = uint64_t(d), lo = hi / 2;
  return std::chrono::milliseconds(lo + (hi > lo ? RandomBelow(hi - lo + 1) : 0));
}

void Metrics::CountRequest(std::string_view route, int status, double seconds, uint64_t bytes_in,
                           uint64_t bytes_out) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), status}];
  bytes_in_ += bytes_in;
  bytes_out_ += bytes_out;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++buckets_[i];
  }
  ++latency_count_;
  latency_sum_ += seconds;
}

void Metrics::CountError(std::string_view error_class) {
  std::lock_guard lock(mu_);
  ++errors_[std::string(error_class)];
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string o;
  auto line = [&](const std::string& s) { o += s + "\n"; };
  line("# HELP " + prefix_ + "_requests_total Requests by route and HTTP status.");
  line("# TYPE " + prefix_ + "_requests_total counter");
  for (const auto& [k, v] : requests_) {
    line(prefix_ + "_requests_total{route=\"" + k.first + "\",code=\"" + std::to_string(k.second) + "\"} " +
         std::to_string(v));
  }
  line("# HELP " + prefix_ + "_errors_total Failed requests by class.");
  line("# TYPE " + prefix_ + "_errors_total counter");
  for (const auto& [k, v] : errors_) line(prefix_ + "_errors_total{class=\"" + k + "\"} " + std::to_string(v));
  line("# TYPE " + prefix_ + "_received_bytes_total counter");
  line(prefix_ + "_received_bytes_total " + std::to_string(bytes_in_));
  line("# TYPE " + prefix_ + "_sent_bytes_total counter");
  line(prefix_ + "_sent_bytes_total " + std::to_string(bytes_out_));
  line("# HELP " + prefix_ + "_request_seconds Request latency.");
  line("# TYPE " + prefix_ + "_request_seconds histogram");
  char buf[64];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%g", kBuckets[i]);
    line(prefix_ + "_request_seconds_bucket{le=\"" + buf + "\"} " + std::to_string(buckets_[i]));
  }
  line(prefix_ + "_request_seconds_bucket{le=\"+Inf\"} " + std::to_string(latency_count_));
  std::snprintf(buf, sizeof(buf), "%.6f", latency_sum_);
  line(prefix_ + "_request_seconds_sum " + buf);
  line(prefix_ + "_request_seconds_count " + std::to_string(latency_count_));
  return o;
}

}  // namespace coffer::net
