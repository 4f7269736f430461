#include "coffer/keyserver/witness.h"

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "coffer/base/file_util.h"
#include "coffer/pki/pki.h"

namespace coffer::keyserver {

Status ValidateHexId(const std::string& what, const std::string& hex) {
  if (hex.empty() || hex.size() > 128) return InvalidArgument(what + " must be 1..128 hex digits");
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return InvalidArgument(what + " must be lower-case hex");
  }
  return Status::Ok();
}

std::string WitnessStore::PathFor(const std::string& device, const std::string& volume_hex) const {
  return dir_ + "/" + device + "/" + volume_hex + ".json";
}

Result<WitnessRecord> WitnessStore::Latest(const std::string& device, const std::string& volume_hex) {
  COFFER_RETURN_IF_ERROR(pki::ValidateDeviceId(device));
  COFFER_RETURN_IF_ERROR(ValidateHexId("volume id", volume_hex));
  std::lock_guard<std::mutex> l(mu_);
  auto data = ReadFileBytes(PathFor(device, volume_hex));
  if (!data.ok()) {
    if (data.status().code() == StatusCode::kNotFound) return NotFound("no witness report for volume " + volume_hex);
    return data.status();
  }
  auto j = nlohmann::json::parse(data->begin(), data->end(), nullptr, false);
  if (j.is_discarded() || j.value("format", "") != "coffer-witness" || j.value("version", 0) != 1 ||
      !j.contains("counter") || !j["counter"].is_number_unsigned() || !j.contains("root") || !j["root"].is_string()) {
    return Corrupt("witness record for volume " + volume_hex + " is damaged");
  }
  return WitnessRecord{j["counter"].get<uint64_t>(), j["root"].get<std::string>()};
}

Status WitnessStore::Forget(const std::string& device, const std::string& volume_hex) {
  COFFER_RETURN_IF_ERROR(pki::ValidateDeviceId(device));
  COFFER_RETURN_IF_ERROR(ValidateHexId("volume id", volume_hex));
  std::lock_guard<std::mutex> l(mu_);
  std::string p = PathFor(device, volume_hex);
  if (::unlink(p.c_str()) != 0) return ErrnoStatus("forget " + volume_hex, errno);
  return SyncParentDirectory(p);
}

Result<WitnessRecord> WitnessStore::Report(const std::string& device, const std::string& volume_hex, uint64_t counter,
                                           const std::string& root_hex) {
  COFFER_RETURN_IF_ERROR(ValidateHexId("root hash", root_hex));
  auto latest = Latest(device, volume_hex);
  if (!latest.ok() && latest.status().code() != StatusCode::kNotFound) return latest.status();
  std::lock_guard<std::mutex> l(mu_);
  // Re-read under the lock is unnecessary: Latest's read and this write race only with another report for
  // the same volume, and the comparison below is repeated against the file we are about to replace.
  auto again = ReadFileBytes(PathFor(device, volume_hex));
  if (again.ok()) {
    auto j = nlohmann::json::parse(again->begin(), again->end(), nullptr, false);
    if (!j.is_discarded() && j.contains("counter") && j["counter"].is_number_unsigned()) {
      latest = WitnessRecord{j["counter"].get<uint64_t>(), j.value("root", "")};
    }
  }
  if (latest.ok()) {
    if (counter < latest->counter) {
      return DataLoss("volume " + volume_hex + " rolled back: counter " + std::to_string(counter) +
                      " is older than the newest seen, " + std::to_string(latest->counter));
    }
    if (counter == latest->counter) {
      if (root_hex != latest->root_hex) {
        return DataLoss("volume " + volume_hex + " forked: counter " + std::to_string(counter) +
                        " was seen with a different root hash");
      }
      return *latest;
    }
  }
  std::string ddir = dir_ + "/" + device;
  ::mkdir(dir_.c_str(), 0700);
  if (::mkdir(ddir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + ddir, errno);
  nlohmann::json j = {{"format", "coffer-witness"}, {"version", 1}, {"counter", counter}, {"root", root_hex}};
  COFFER_RETURN_IF_ERROR(WriteFileAtomic(PathFor(device, volume_hex), AsBytes(j.dump())));
  return WitnessRecord{counter, root_hex};
}

}  // namespace coffer::keyserver
