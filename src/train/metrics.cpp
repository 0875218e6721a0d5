#include "grpo/train/metrics.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "grpo/train/tensorboard.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::train {

namespace {
std::FILE* open_or_throw(const std::string& path, const char* mode) {
  std::FILE* f = std::fopen(path.c_str(), mode);
  GRPO_REQUIRE(f, "metrics: cannot open '", path, "': ", std::strerror(errno));
  return f;
}
void write_or_throw(std::FILE* f, const std::string& s, const std::string& path) {
  GRPO_REQUIRE(std::fwrite(s.data(), 1, s.size(), f) == s.size() && std::fflush(f) == 0, "metrics: cannot write '",
               path, "': ", std::strerror(errno));
}
}  // namespace

MetricsLogger::MetricsLogger(const std::string& run_dir, const std::vector<std::string>& report_to,
                             const std::optional<std::string>& resume_metrics)
    : dir_(run_dir) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  GRPO_REQUIRE(!ec, "metrics: cannot create '", run_dir, "': ", ec.message());
  bool tb = false;
  for (const auto& r : report_to) {
    if (r == "jsonl") jsonl_ = true;
    else if (r == "tensorboard") tb = true;
    else throw InputError(grpo::str("logging.report_to: unknown sink '", r, "' (expected jsonl or tensorboard)"));
  }
  if (jsonl_) {
    history_ = resume_metrics.value_or("");
    fs::atomic_write(metrics_path(), history_);
    metrics_ = open_or_throw(metrics_path(), "ab");
  }
  if (tb) tb_ = std::make_unique<TensorBoardWriter>((std::filesystem::path(run_dir) / "tensorboard").string());
  samples_ = open_or_throw(samples_path(), resume_metrics ? "ab" : "wb");
}

MetricsLogger::~MetricsLogger() {
  if (metrics_) std::fclose(metrics_);
  if (samples_) std::fclose(samples_);
}

std::string MetricsLogger::metrics_path() const { return (std::filesystem::path(dir_) / "metrics.jsonl").string(); }
std::string MetricsLogger::samples_path() const { return (std::filesystem::path(dir_) / "samples.jsonl").string(); }

void MetricsLogger::log(int64_t step, const std::map<std::string, double>& metrics) {
  if (jsonl_) {
    nlohmann::ordered_json j;
    j["step"] = step;
    for (const auto& [k, v] : metrics) {
      if (std::isfinite(v)) j[k] = v;
      else j[k] = nullptr;
    }
    const std::string line = j.dump() + "\n";
    write_or_throw(metrics_, line, metrics_path());
    history_ += line;
  }
  if (tb_) {
    tb_->add_scalars(step, metrics);
    tb_->flush();
  }
}

void MetricsLogger::log_samples(int64_t step, const std::vector<nlohmann::json>& samples) {
  std::string out;
  for (const auto& s : samples) {
    nlohmann::ordered_json j;
    j["step"] = step;
    for (const auto& [k, v] : s.items()) j[k] = v;
    out += j.dump() + "\n";
  }
  write_or_throw(samples_, out, samples_path());
}

}  // namespace grpo::train
