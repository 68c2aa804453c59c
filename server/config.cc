#include "server/config.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "kernels/registry/registry.h"
#include "server/common/status_macros.h"

namespace npuk {
namespace {

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectErrors(std::string path) : path_(std::move(path)) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty()) {
      first_ =
          absl::StrCat(path_, ":", line + 1, ":", column + 1, ": ", message);
    }
  }
  const std::string& first() const { return first_; }

 private:
  std::string path_;
  std::string first_;
};

// Executors per model when the config does not say: the CPU backend's runs
// already use every core; on the NPU backends one executor fills while the
// other runs.
uint32_t DefaultInstances(std::string_view backend) {
  return backend == "cpu" ? 1 : 2;
}

constexpr uint32_t kMaxBatchLimit = 65536;
// gRPC takes message sizes as int.
constexpr uint64_t kMaxMessageBytes = 2147483647;
constexpr uint32_t kMinMessageBytes = 4096;
constexpr uint32_t kMaxCpuThreads = 1024;
constexpr uint32_t kMaxQueueSize = 1 << 20;
constexpr uint32_t kMaxDurationMs = 3600 * 1000;  // one hour

// At most 64 bytes of an operator-supplied value in an error.
std::string Bounded(const std::string& s) {
  if (s.size() <= 64) return std::string(s);
  return absl::StrCat(s.substr(0, 64), "...");
}

// "unix:/abs/path" or HOST:PORT with PORT 0 to 65535; `field` names it.
absl::Status ValidateAddress(const std::string& address, const char* field,
                             bool allow_unix) {
  if (allow_unix && absl::StartsWith(address, "unix:")) {
    if (address.size() < 7 || address[5] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " '", Bounded(address),
                       "': the unix socket path must be absolute "
                       "(unix:/run/npukd/npukd.sock)"));
    }
    return absl::OkStatus();
  }
  const size_t colon = address.rfind(':');
  const std::string example =
      allow_unix ? "unix:/abs/path or HOST:PORT, e.g. 127.0.0.1:8001"
                 : "HOST:PORT, e.g. 127.0.0.1:9090";
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " '", Bounded(address),
                     "' is not an address; expected ", example));
  }
  const std::string port = address.substr(colon + 1);
  uint64_t value = 0;
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(port, &value) || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " '", Bounded(address), "': port '", Bounded(port),
                     "' is out of range; allowed 0 to 65535 (", example, ")"));
  }
  return absl::OkStatus();
}

absl::Status InRange(uint64_t value, uint64_t lo, uint64_t hi,
                     const std::string& what, const std::string& unit = "") {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " is ", value, unit, "; allowed ", lo, unit, " to ", hi, unit));
}

}  // namespace

absl::StatusOr<config::Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read config file ", path,
        "; check the path given to --config (deploy/npukd.conf is an "
        "example)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  config::Config config;
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors(path);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text.str(), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", errors.first(),
                     " (the format is protobuf text of npuk.config.Config, see "
                     "proto/config.proto)"));
  }
  return config;
}

std::string DefaultSocketPath() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  if (std::string s = env("NPUK_SOCKET"); !s.empty()) return s;
  if (std::string d = env("RUNTIME_DIRECTORY"); !d.empty()) {
    // systemd may list several directories separated by ':'.
    return absl::StrCat(d.substr(0, d.find(':')), "/npukd.sock");
  }
  if (std::string d = env("XDG_RUNTIME_DIR"); !d.empty()) {
    return absl::StrCat(d, "/npukd.sock");
  }
  if (::geteuid() == 0) return "/run/npukd/npukd.sock";
  return absl::StrCat("/tmp/npukd-", ::geteuid(), ".sock");
}

absl::Status FinalizeConfig(config::Config& c) {
  if (c.backend().empty()) c.set_backend("cpu");
  if (c.listen().empty())
    c.set_listen(absl::StrCat("unix:", DefaultSocketPath()));
  if (c.drain_timeout_ms() == 0) c.set_drain_timeout_ms(10000);
  // Below amdxdna's 5000 ms autosuspend delay, so canaries keep the NPU
  // resumed instead of racing the suspend (docs/XRT_RUNTIME.md).
  if (c.health_interval_ms() == 0) c.set_health_interval_ms(4000);
  if (c.socket_mode() == 0) c.set_socket_mode(0660);
  if (c.socket_mode() > 0777) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket_mode ", c.socket_mode(),
                     " is not a permission mode (0 to "
                     "0777, e.g. 0660)"));
  }
  if (c.max_message_bytes() == 0) c.set_max_message_bytes(64 << 20);
  if (absl::Status s = ValidateAddress(c.listen(), "listen", true); !s.ok()) {
    return s;
  }
  if (!c.metrics_listen().empty()) {
    if (absl::Status s =
            ValidateAddress(c.metrics_listen(), "metrics_listen", false);
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [value, lo, hi, what, unit] : std::vector<
           std::tuple<uint64_t, uint64_t, uint64_t, const char*, const char*>>{
           {c.drain_timeout_ms(), 1, kMaxDurationMs, "drain_timeout_ms", " ms"},
           {c.health_interval_ms(), 1, kMaxDurationMs, "health_interval_ms",
            " ms"},
           {c.max_message_bytes(), kMinMessageBytes, kMaxMessageBytes,
            "max_message_bytes (gRPC takes an int)", " bytes"},
           {c.cpu_threads() == 0 ? 1 : c.cpu_threads(), 1, kMaxCpuThreads,
            "cpu_threads (0 = one per core)", ""},
       }) {
    NPUK_RETURN_IF_ERROR(InRange(value, lo, hi, what, unit));
  }
  if (c.has_tls() &&
      (c.tls().cert_file().empty() != c.tls().key_file().empty())) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate and a key (tls_cert and tls_key)");
  }
  if (c.has_tls() && !c.tls().client_ca_file().empty() &&
      c.tls().cert_file().empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS (tls_client_ca) also needs tls_cert and tls_key");
  }

  // Every known model gets settings; unknown names are errors.
  for (const auto& m : c.models()) {
    if (FindKernel(m.name()) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("config names unknown model '", m.name(),
                       "'; known models: ", KernelNames()));
    }
  }
  for (const KernelSpec* kernel : AllKernels()) {
    const KernelSpec& spec = *kernel;
    config::ModelSettings* m = nullptr;
    for (auto& existing : *c.mutable_models()) {
      if (existing.name() == spec.name) {
        if (m != nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("model '", spec.name,
                           "' is configured twice; merge the "
                           "entries"));
        }
        m = &existing;
      }
    }
    if (m == nullptr) {
      m = c.add_models();
      m->set_name(spec.name);
      if (spec.npu_opt_in && c.backend() != "cpu") m->set_enabled(false);
    }
    if (m->max_batch_frames() == 0) {
      m->set_max_batch_frames(spec.default_max_batch);
    }
    if (m->max_batch_frames() > kMaxBatchLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_batch_frames for '", spec.name, "' is ", m->max_batch_frames(),
          "; allowed 1 to ", kMaxBatchLimit));
    }
    if (m->max_batch_frames() % spec.step_lanes() != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_batch_frames for '", spec.name, "' is ", m->max_batch_frames(),
          "; it must be a multiple of ", spec.step_lanes(),
          " (its runs are "
          "whole rounds of ",
          spec.step_lanes(), " ", spec.units, ", one per NPU core)"));
    }
    if (m->max_queue_size() == 0) m->set_max_queue_size(1024);
    NPUK_RETURN_IF_ERROR(
        InRange(m->max_queue_size(), 1, kMaxQueueSize,
                absl::StrCat("max_queue_size for '", spec.name, "'")));
    if (m->instances() == 0) m->set_instances(DefaultInstances(c.backend()));
    if (m->instances() > 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("instances for '", spec.name, "' is ", m->instances(),
                       "; allowed 1 to 16"));
    }
    if (m->max_queue_delay_us() > 1000000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_queue_delay_us for '", spec.name, "' is ",
          m->max_queue_delay_us(), "; allowed 0 to 1000000 (1 s)"));
    }
    if (!m->has_enabled()) m->set_enabled(true);
  }
  return absl::OkStatus();
}

const config::ModelSettings* FindModelSettings(const config::Config& config,
                                               std::string_view name) {
  for (const auto& m : config.models()) {
    if (m.name() == name && m.enabled()) return &m;
  }
  return nullptr;
}

}  // namespace npuk
