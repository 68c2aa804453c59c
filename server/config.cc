#include "server/config.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "kernels/registry/registry.h"

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
    }
    if (m->max_batch_frames() == 0) {
      m->set_max_batch_frames(spec.default_max_batch);
    }
    if (m->max_batch_frames() > kMaxBatchLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_batch_frames for '", spec.name, "' is ", m->max_batch_frames(),
          "; allowed 1 to ", kMaxBatchLimit));
    }
    if (m->max_queue_size() == 0) m->set_max_queue_size(1024);
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
