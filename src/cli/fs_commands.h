// Pieces shared between fs_commands.cc (browsing, single-path commands) and fs_transfer.cc (put, get,
// pack, unpack): the subcommand factory and the wrapper that turns a Status into an exit code.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cli/cli.h"
#include "cli/device_options.h"

namespace coffer::cli {

// Checks the device options (a bad choice is a usage error, exit 2), runs body and stores its exit
// status in ctx (reporting the error with a filesystem hint).
int RunFsCommand(Context& ctx, const DeviceOptions& options, const std::function<Status()>& body);
// Adds `coffer fs <name>` with the examples and the exit codes in its --help.
CLI::App* AddFsSubcommand(CLI::App& fs, const std::string& name, const std::string& description,
                          const std::string& examples);
// put, get, pack, unpack (fs_transfer.cc). `options` is the device option storage all fs commands share.
void RegisterFsTransferCommands(CLI::App& fs, Context& ctx, std::shared_ptr<DeviceOptions> options);

}  // namespace coffer::cli
