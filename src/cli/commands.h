// One Register function per command group, each in its own file under src/cli/<group>_commands.cc.
// RegisterAllCommands (commands.cc) calls them all. Groups that hang under a shared parent
// (`coffer serve ...`) receive the parent App.
#pragma once

#include "cli/cli.h"

namespace coffer::cli {

void RegisterAllCommands(CLI::App& app, Context& ctx);

void RegisterKeyCommands(CLI::App& app, Context& ctx);  // key_commands.cc: `coffer key new|...` (keys module)
void RegisterVolumeCommands(CLI::App& app, Context& ctx);  // volume_commands.cc: `coffer volume create|info|verify|add-key|remove-key|erase`
void RegisterFsCommands(CLI::App& app, Context& ctx);  // fs_commands.cc: `coffer fs ...` (littlefs on --image or --volume)
void RegisterServeBlocksCommands(CLI::App& serve, Context& ctx);  // serve_blocks_commands.cc: `coffer serve blocks` (block host); gets the `serve` parent
void RegisterServeKeysCommands(CLI::App& serve, Context& ctx);  // serve_keys_commands.cc: `coffer serve keys` (key server); gets the `serve` parent
void RegisterFleetCommands(CLI::App& app, Context& ctx);  // fleet_commands.cc: `coffer exec|env|pki|certs|unlock`
void RegisterCryptCommands(CLI::App& app, Context& ctx);  // crypt_commands.cc: `coffer crypt ...` (rclone-crypt folders and their mount)
void RegisterMountCommands(CLI::App& app, Context& ctx);  // mount_commands.cc: `coffer mount|umount` (FUSE mount of sealed volumes)
void RegisterFlashCommands(CLI::App& app, Context& ctx);  // flash_commands.cc: `coffer flash ...` (ESP32 flash encryption)
void RegisterObjectCommands(CLI::App& app, Context& ctx);  // object_commands.cc: `coffer objectd` and `coffer object ...`

}  // namespace coffer::cli
