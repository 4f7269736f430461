// `coffer fs ...`: littlefs on a plain image (--image) or a sealed volume (--volume/--key).
// Browsing and single-file commands live here; the bulk transfers (put, get, pack, unpack) are in
// fs_transfer.cc. Errors go through ReportError: kDataLoss (the volume failed authentication) exits 3.
#include <nlohmann/json.hpp>

#include <iomanip>
#include <memory>
#include <set>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "cli/fs_commands.h"
#include "cli/fs_util.h"

namespace coffer::cli {
namespace {

using nlohmann::json;

const char* TypeName(fs::EntryType t) { return t == fs::EntryType::kDir ? "dir" : "file"; }

json EntryJson(const std::string& path, const fs::EntryInfo& e) {
  json j{{"path", path}, {"name", e.name}, {"type", TypeName(e.type)}};
  if (e.type == fs::EntryType::kFile) j["size"] = e.size;
  return j;
}

Status Finish(MountedFs& m) {
  COFFER_RETURN_IF_ERROR(m.fs->Unmount());
  return m.dev.device->Sync();
}

Status DoFormat(const DeviceOptions& o, Console& con) {
  COFFER_ASSIGN_OR_RETURN(FsDevice dev, OpenFsDevice(o, DeviceUse::kFormat));
  COFFER_RETURN_IF_ERROR(fs::Filesystem::Format(*dev.device, dev.config).WithContext("format " + dev.description));
  COFFER_RETURN_IF_ERROR(dev.device->Sync());
  con.out << "formatted " << dev.description << " as littlefs " << o.disk_version << "\n";
  return Status::Ok();
}

Status DoLs(const DeviceOptions& o, const std::string& raw, bool as_json, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, m->fs->info().name_max));
  COFFER_ASSIGN_OR_RETURN(fs::EntryInfo self, m->fs->Stat(path));
  std::vector<std::pair<std::string, fs::EntryInfo>> rows;
  if (self.type == fs::EntryType::kFile) {
    rows.emplace_back(path, self);
  } else {
    COFFER_ASSIGN_OR_RETURN(auto entries, ListDir(*m->fs, path));
    for (auto& e : entries) rows.emplace_back(JoinFsPath(path, e.name), e);
  }
  if (as_json) {
    json arr = json::array();
    for (auto& [p, e] : rows) arr.push_back(EntryJson(p, e));
    con.out << arr.dump(2) << "\n";
  } else {
    for (auto& [p, e] : rows) {
      if (e.type == fs::EntryType::kDir) {
        con.out << "d " << std::setw(10) << "-" << "  " << e.name << "/\n";
      } else {
        con.out << "f " << std::setw(10) << e.size << "  " << e.name << "\n";
      }
    }
  }
  return Status::Ok();
}

Status DoTree(const DeviceOptions& o, const std::string& raw, bool as_json, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, m->fs->info().name_max));
  COFFER_ASSIGN_OR_RETURN(fs::EntryInfo self, m->fs->Stat(path));
  if (self.type != fs::EntryType::kDir) return FailedPrecondition(path + " is a file, not a directory");
  json arr = json::array();
  uint64_t files = 0, dirs = 0, bytes = 0;
  if (!as_json) con.out << path << "\n";
  COFFER_RETURN_IF_ERROR(WalkFs(*m->fs, path, [&](const WalkEntry& w) {
    if (w.info.type == fs::EntryType::kDir) {
      dirs++;
    } else {
      files++;
      bytes += w.info.size;
    }
    if (as_json) {
      arr.push_back(EntryJson(w.path, w.info));
    } else {
      con.out << std::string(size_t(w.depth + 1) * 2, ' ') << w.info.name
              << (w.info.type == fs::EntryType::kDir ? "/" : "  (" + std::to_string(w.info.size) + ")") << "\n";
    }
    return Status::Ok();
  }));
  if (as_json) {
    con.out << arr.dump(2) << "\n";
  } else {
    con.out << dirs << " directories, " << files << " files, " << bytes << " bytes\n";
  }
  return Status::Ok();
}

Status DoCat(const DeviceOptions& o, const std::string& raw, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, m->fs->info().name_max, false));
  COFFER_ASSIGN_OR_RETURN(fs::EntryInfo st, m->fs->Stat(path));
  if (st.type != fs::EntryType::kFile) return FailedPrecondition(path + " is a directory; cat reads files");
  // Bytes reach stdout as they are read and authenticated: an integrity failure midway stops the
  // stream and the exit status (3) says the output is incomplete.
  COFFER_RETURN_IF_ERROR(ReadFsFile(*m->fs, path, [&](const uint8_t* d, size_t n) {
    con.out.write(reinterpret_cast<const char*>(d), std::streamsize(n));
    return con.out ? Status::Ok() : IoError("writing to standard output failed");
  }));
  con.out.flush();
  return Status::Ok();
}

Status RemoveTree(fs::Filesystem& f, const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(auto entries, ListDir(f, path));
  for (auto& e : entries) {
    std::string child = JoinFsPath(path, e.name);
    if (e.type == fs::EntryType::kDir) {
      COFFER_RETURN_IF_ERROR(RemoveTree(f, child));
    } else {
      COFFER_RETURN_IF_ERROR(f.Remove(child).WithContext("remove " + child));
    }
  }
  return f.Remove(path).WithContext("remove " + path);
}

Status DoRm(const DeviceOptions& o, const std::vector<std::string>& paths, bool recursive, bool force,
            Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadWrite));
  for (const auto& raw : paths) {
    COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, m->fs->info().name_max, false));
    auto st = m->fs->Stat(path);
    if (!st.ok()) {
      if (st.status().code() == StatusCode::kNotFound && force) continue;
      return st.status().WithContext("rm " + path);
    }
    if (st->type == fs::EntryType::kDir && recursive) {
      COFFER_RETURN_IF_ERROR(RemoveTree(*m->fs, path));
    } else {
      Status s = m->fs->Remove(path);
      if (!s.ok() && st->type == fs::EntryType::kDir && s.code() == StatusCode::kFailedPrecondition) {
        return FailedPrecondition("rm " + path + ": directory is not empty (use -r to remove it and its contents)");
      }
      COFFER_RETURN_IF_ERROR(s.WithContext("rm " + path));
    }
  }
  return Finish(*m);
}

Status DoMkdir(const DeviceOptions& o, const std::vector<std::string>& paths, bool parents, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadWrite));
  for (const auto& raw : paths) {
    COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, m->fs->info().name_max, false));
    if (parents) {
      std::string cur;
      size_t i = 1;
      while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        cur = path.substr(0, j);
        auto st = m->fs->Stat(cur);
        if (st.ok()) {
          if (st->type != fs::EntryType::kDir) return FailedPrecondition("mkdir " + path + ": " + cur + " is a file");
        } else if (st.status().code() == StatusCode::kNotFound) {
          COFFER_RETURN_IF_ERROR(m->fs->Mkdir(cur).WithContext("mkdir " + cur));
        } else {
          return st.status();
        }
        i = j + 1;
      }
    } else {
      COFFER_RETURN_IF_ERROR(m->fs->Mkdir(path).WithContext("mkdir " + path));
    }
  }
  return Finish(*m);
}

Status DoMv(const DeviceOptions& o, const std::string& raw_from, const std::string& raw_to, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadWrite));
  uint32_t nm = m->fs->info().name_max;
  COFFER_ASSIGN_OR_RETURN(std::string from, FsPath(raw_from, nm, false));
  COFFER_ASSIGN_OR_RETURN(std::string to, FsPath(raw_to, nm, false));
  COFFER_ASSIGN_OR_RETURN(fs::EntryInfo src, m->fs->Stat(from));
  auto dst = m->fs->Stat(to);
  // Like mv(1): moving onto an existing directory moves into it.
  if (dst.ok() && dst->type == fs::EntryType::kDir && src.type == fs::EntryType::kFile) {
    to = JoinFsPath(to, FsBaseName(from));
  }
  if (to == from) return Status::Ok();
  if (to.rfind(from + "/", 0) == 0) return InvalidArgument("mv: cannot move " + from + " into itself (" + to + ")");
  COFFER_RETURN_IF_ERROR(m->fs->Rename(from, to).WithContext("mv " + from + " " + to));
  return Finish(*m);
}

Status DoStat(const DeviceOptions& o, const std::string& raw, bool as_json, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, m->fs->info().name_max));
  COFFER_ASSIGN_OR_RETURN(fs::EntryInfo e, m->fs->Stat(path));
  if (path == "/") e.name = "/";
  if (as_json) {
    con.out << EntryJson(path, e).dump(2) << "\n";
  } else {
    con.out << "path: " << path << "\ntype: " << TypeName(e.type) << "\n";
    if (e.type == fs::EntryType::kFile) con.out << "size: " << e.size << "\n";
  }
  return Status::Ok();
}

Status DoDf(const DeviceOptions& o, bool as_json, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  const fs::FsInfo& info = m->fs->info();
  COFFER_ASSIGN_OR_RETURN(uint32_t used, m->fs->BlocksInUse());
  uint64_t bs = info.block_size, total = uint64_t(info.block_count) * bs;
  uint64_t used_bytes = uint64_t(used) * bs;
  uint64_t free_bytes = total > used_bytes ? total - used_bytes : 0;
  if (as_json) {
    json j{{"block_size", info.block_size},  {"block_count", info.block_count},
           {"blocks_used", used},            {"blocks_free", info.block_count - std::min(used, info.block_count)},
           {"bytes_total", total},           {"bytes_used", used_bytes},
           {"bytes_free", free_bytes}};
    con.out << j.dump(2) << "\n";
  } else {
    con.out << "size:  " << HumanBytes(total) << " (" << info.block_count << " blocks of " << bs << " bytes)\n"
            << "used:  " << HumanBytes(used_bytes) << " (" << used << " blocks, "
            << (info.block_count ? used * 100 / info.block_count : 0) << "%)\n"
            << "free:  " << HumanBytes(free_bytes) << "\n";
  }
  return Status::Ok();
}

Status DoInfo(const DeviceOptions& o, bool as_json, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  const fs::FsInfo& i = m->fs->info();
  const fs::Config& c = m->dev.config;
  if (as_json) {
    json j{{"device", m->dev.description},
           {"disk_version", DiskVersionString(i.disk_version)},
           {"disk_version_raw", uint32_t(i.disk_version)},
           {"block_size", i.block_size},
           {"block_count", i.block_count},
           {"name_max", i.name_max},
           {"file_max", i.file_max},
           {"attr_max", i.attr_max},
           {"read_size", c.read_size},
           {"prog_size", c.prog_size},
           {"cache_size", c.cache_size},
           {"lookahead_size", c.lookahead_size}};
    con.out << j.dump(2) << "\n";
  } else {
    con.out << "device:       " << m->dev.description << "\n"
            << "littlefs:     disk version " << DiskVersionString(i.disk_version) << "\n"
            << "block size:   " << i.block_size << "\n"
            << "block count:  " << i.block_count << "\n"
            << "name max:     " << i.name_max << "\nfile max:     " << i.file_max << "\n"
            << "attr max:     " << i.attr_max << "\n"
            << "read/prog:    " << c.read_size << " / " << c.prog_size << " (cache " << c.cache_size
            << ", lookahead " << c.lookahead_size << ")\n";
  }
  return Status::Ok();
}

// Reads every directory and every byte of every file, and walks every block the filesystem uses.
Status DoCheck(const DeviceOptions& o, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  uint64_t files = 0, dirs = 0, bytes = 0;
  COFFER_RETURN_IF_ERROR(WalkFs(*m->fs, "/", [&](const WalkEntry& w) {
    if (w.info.type == fs::EntryType::kDir) {
      dirs++;
      return Status::Ok();
    }
    files++;
    uint64_t got = 0;
    COFFER_RETURN_IF_ERROR(ReadFsFile(*m->fs, w.path, [&](const uint8_t*, size_t n) {
      got += n;
      return Status::Ok();
    }).WithContext("read " + w.path));
    if (got != w.info.size) {
      return Corrupt(w.path + ": directory says " + std::to_string(w.info.size) + " bytes, file holds " +
                     std::to_string(got));
    }
    bytes += got;
    return Status::Ok();
  }));
  uint32_t count = m->fs->info().block_count;
  std::set<uint32_t> blocks;
  COFFER_RETURN_IF_ERROR(m->fs->Traverse([&](uint32_t b) {
    if (b >= count) return Corrupt("filesystem points at block " + std::to_string(b) + " beyond the block count");
    blocks.insert(b);
    return Status::Ok();
  }));
  con.out << "ok: " << dirs << " directories, " << files << " files, " << bytes << " bytes; " << blocks.size()
          << " of " << count << " blocks in use\n";
  return Status::Ok();
}

}  // namespace

int RunFsCommand(Context& ctx, const DeviceOptions& options, const std::function<Status()>& body) {
  if (Status usage = CheckDeviceOptions(options); !usage.ok()) {
    ReportError(ctx.console, usage, "run 'coffer fs COMMAND --help' for the device options");
    return ctx.exit_code = kExitUsage;
  }
  Status s = body();
  if (s.ok()) return ctx.exit_code = kExitOk;
  return ctx.exit_code = ReportError(ctx.console, s, FsHint(s));
}

CLI::App* AddFsSubcommand(CLI::App& fs, const std::string& name, const std::string& description,
                          const std::string& examples) {
  CLI::App* cmd = fs.add_subcommand(name, description);
  cmd->footer("\nExamples:\n" + examples + "\n" + kExitCodesHelp);
  return cmd;
}

void RegisterFsCommands(CLI::App& app, Context& ctx) {
  CLI::App* fs = app.add_subcommand(
      "fs", "littlefs filesystems on plain images (--image) or sealed volumes (--volume --key)");
  fs->require_subcommand(1);
  fs->footer(
      "\nEvery command takes the device as --image PATH (a plain littlefs image; geometry is read from\n"
      "its superblock) or --volume SPEC --key KEYSPEC (a sealed volume).\n\nExamples:\n"
      "  coffer fs pack ./www --image www.img --block-size 4096 --block-count 256\n"
      "  coffer fs ls --image www.img /\n"
      "  coffer fs cat --volume file:disk.vol --key disk.key /config/app.json\n\n" +
      std::string(kExitCodesHelp));
  auto o = std::make_shared<DeviceOptions>();
  auto json_flag = std::make_shared<bool>(false);

  {
    auto* c = AddFsSubcommand(*fs, "format", "Make a new empty littlefs filesystem on the device",
                              "  coffer fs format --image disk.img --block-size 256 --block-count 16384 --disk-version 2.0\n"
                              "  coffer fs format --volume file:disk.vol --key disk.key");
    AddDeviceOptions(*c, *o, DeviceUse::kFormat);
    c->callback([&ctx, o] { RunFsCommand(ctx, *o, [&] { return DoFormat(*o, ctx.console); }); });
  }
  {
    auto path = std::make_shared<std::string>("/");
    auto* c = AddFsSubcommand(*fs, "ls", "List a directory (or show one file)",
                              "  coffer fs ls --image disk.img /logs\n  coffer fs ls --image disk.img --json");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_option("PATH", *path, "Directory or file inside the filesystem (default /)");
    c->add_flag("--json", *json_flag, "Print a JSON array of {path, name, type, size}");
    c->callback([&ctx, o, path, json_flag] { RunFsCommand(ctx, *o, [&] { return DoLs(*o, *path, *json_flag, ctx.console); }); });
  }
  {
    auto path = std::make_shared<std::string>("/");
    auto* c = AddFsSubcommand(*fs, "tree", "Show a directory and everything below it",
                              "  coffer fs tree --image disk.img\n  coffer fs tree --image disk.img /www --json");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_option("PATH", *path, "Directory inside the filesystem (default /)");
    c->add_flag("--json", *json_flag, "Print a JSON array of every entry {path, name, type, size}");
    c->callback([&ctx, o, path, json_flag] { RunFsCommand(ctx, *o, [&] { return DoTree(*o, *path, *json_flag, ctx.console); }); });
  }
  {
    auto path = std::make_shared<std::string>();
    auto* c = AddFsSubcommand(*fs, "cat", "Write a file's bytes to standard output",
                              "  coffer fs cat --image disk.img /config/app.json\n"
                              "  coffer fs cat --volume file:disk.vol --key disk.key /a.bin > a.bin");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_option("PATH", *path, "File inside the filesystem")->required();
    c->callback([&ctx, o, path] { RunFsCommand(ctx, *o, [&] { return DoCat(*o, *path, ctx.console); }); });
  }
  {
    auto paths = std::make_shared<std::vector<std::string>>();
    auto recursive = std::make_shared<bool>(false), force = std::make_shared<bool>(false);
    auto* c = AddFsSubcommand(*fs, "rm", "Remove files or directories",
                              "  coffer fs rm --image disk.img /old.log\n  coffer fs rm --image disk.img -r /logs");
    AddDeviceOptions(*c, *o, DeviceUse::kReadWrite);
    c->add_option("PATH", *paths, "Files or directories inside the filesystem")->required();
    c->add_flag("-r,--recursive", *recursive, "Remove directories and their contents");
    c->add_flag("-f,--force", *force, "Ignore paths that do not exist");
    c->callback([&ctx, o, paths, recursive, force] {
      RunFsCommand(ctx, *o, [&] { return DoRm(*o, *paths, *recursive, *force, ctx.console); });
    });
  }
  {
    auto paths = std::make_shared<std::vector<std::string>>();
    auto parents = std::make_shared<bool>(false);
    auto* c = AddFsSubcommand(*fs, "mkdir", "Make directories",
                              "  coffer fs mkdir --image disk.img /logs\n  coffer fs mkdir --image disk.img -p /data/2024/01");
    AddDeviceOptions(*c, *o, DeviceUse::kReadWrite);
    c->add_option("PATH", *paths, "Directories to make")->required();
    c->add_flag("-p,--parents", *parents, "Make missing parents; no error if the directory exists");
    c->callback([&ctx, o, paths, parents] { RunFsCommand(ctx, *o, [&] { return DoMkdir(*o, *paths, *parents, ctx.console); }); });
  }
  {
    auto from = std::make_shared<std::string>(), to = std::make_shared<std::string>();
    auto* c = AddFsSubcommand(*fs, "mv", "Rename or move a file or directory (atomic)",
                              "  coffer fs mv --image disk.img /a.txt /b.txt\n  coffer fs mv --image disk.img /a.txt /archive");
    AddDeviceOptions(*c, *o, DeviceUse::kReadWrite);
    c->add_option("FROM", *from, "Existing path")->required();
    c->add_option("TO", *to, "New path (an existing directory: move into it)")->required();
    c->callback([&ctx, o, from, to] { RunFsCommand(ctx, *o, [&] { return DoMv(*o, *from, *to, ctx.console); }); });
  }
  {
    auto path = std::make_shared<std::string>();
    auto* c = AddFsSubcommand(*fs, "stat", "Show the type and size of a path",
                              "  coffer fs stat --image disk.img /config/app.json --json");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_option("PATH", *path, "Path inside the filesystem")->required();
    c->add_flag("--json", *json_flag, "Print {path, name, type, size} as JSON");
    c->callback([&ctx, o, path, json_flag] { RunFsCommand(ctx, *o, [&] { return DoStat(*o, *path, *json_flag, ctx.console); }); });
  }
  {
    auto* c = AddFsSubcommand(*fs, "df", "Show the filesystem's size, used and free space",
                              "  coffer fs df --image disk.img\n  coffer fs df --volume file:disk.vol --key disk.key --json");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_flag("--json", *json_flag, "Print the figures as JSON");
    c->callback([&ctx, o, json_flag] { RunFsCommand(ctx, *o, [&] { return DoDf(*o, *json_flag, ctx.console); }); });
  }
  {
    auto* c = AddFsSubcommand(*fs, "info", "Show the superblock: disk version, geometry and limits",
                              "  coffer fs info --image disk.img\n  coffer fs info --image disk.img --json");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_flag("--json", *json_flag, "Print the superblock and geometry as JSON");
    c->callback([&ctx, o, json_flag] { RunFsCommand(ctx, *o, [&] { return DoInfo(*o, *json_flag, ctx.console); }); });
  }
  {
    auto* c = AddFsSubcommand(*fs, "check",
                              "Read every directory, every file and every block in use; report damage",
                              "  coffer fs check --image disk.img\n  coffer fs check --volume file:disk.vol --key disk.key");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->callback([&ctx, o] { RunFsCommand(ctx, *o, [&] { return DoCheck(*o, ctx.console); }); });
  }
  RegisterFsTransferCommands(*fs, ctx, o);
}

}  // namespace coffer::cli
