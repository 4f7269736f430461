#include "cli/flash_util.h"

#include "coffer/base/file_util.h"

namespace coffer::cli {

int FlashReportError(Console& console, const Status& status, std::string_view hint) {
  int code = ReportError(console, status, hint);
  if (status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kNotFound) return kExitUsage;
  return code;
}

ProgressBar::ProgressBar(Console& console, std::string label)
    : console_(console), label_(std::move(label)), enabled_(console.err_is_tty) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  int percent = int(done * 100 / total);
  if (percent == last_percent_) return;
  last_percent_ = percent;
  int filled = percent * 30 / 100;
  console_.err << "\r" << label_ << " [" << std::string(size_t(filled), '#') << std::string(size_t(30 - filled), ' ')
               << "] " << percent << "% (" << (done >> 10) << "/" << (total >> 10) << " KiB)" << std::flush;
  drawn_ = true;
}

flash::ProgressFn ProgressBar::Fn() {
  return [this](uint64_t done, uint64_t total) { Update(done, total); };
}

void ProgressBar::Finish() {
  if (drawn_) console_.err << "\n" << std::flush;
  drawn_ = false;
}

Result<SecretBytes> ReadFlashKeyFile(const std::string& path) {
  auto r = ReadSecretFile(path);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
    return NotFound("key file " + path + ": No such file or directory");
  }
  if (!r.ok() && r.status().code() == StatusCode::kInvalidArgument) {
    return InvalidArgument("key file " + r.status().message());
  }
  return r;
}

}  // namespace coffer::cli
