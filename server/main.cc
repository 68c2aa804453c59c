// npukd: serves every registered kernel (kernels/registry) over gRPC
// (KServe v2). Process concerns only: flags, the config, signals.
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "kernels/registry/registry.h"
#include "server/common/cli.h"
#include "server/common/status_macros.h"
#include "server/config.h"
#include "server/daemon.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, config, "",
          "Text-format npuk.config.Config file (see deploy/npukd.conf); "
          "flags override its fields");
ABSL_FLAG(std::string, listen, "",
          "unix:/abs/path or HOST:PORT (default: unix socket under the "
          "runtime directory, see README)");
ABSL_FLAG(std::string, backend, "", "cpu (default), npu-sim or xrt");
ABSL_FLAG(std::string, metrics, "",
          "HOST:PORT for Prometheus metrics over HTTP (off by default)");
ABSL_FLAG(std::string, http, "",
          "HOST:PORT for the KServe v2 REST API over HTTP (off by default), "
          "e.g. 127.0.0.1:8000");
ABSL_FLAG(absl::Duration, drain_timeout, absl::ZeroDuration(),
          "On SIGTERM, time given to accepted requests (default 10s)");
ABSL_FLAG(absl::Duration, health_interval, absl::ZeroDuration(),
          "Interval between health canaries, e.g. 1s, 500ms (default 4s, below "
          "the NPU's 5 s autosuspend)");
ABSL_FLAG(std::string, npu_sim_fault, "",
          "npu-sim only: a fault of the simulated NPU, KIND[:RATE] with KIND "
          "one of hang, error, zeros, garbage, cold, slow (e.g. hang:0.05); "
          "goes through the xrt backend's own TIMEOUT/ERROR handling");
ABSL_FLAG(std::vector<std::string>, fault, {},
          "Fault injection for drills: MODEL:KIND[:RATE], KIND one of zeros, "
          "garbage, error, timeout, slow; comma-separated");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate: enables TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require and verify client certificates (mTLS)");
ABSL_FLAG(std::string, socket_mode, "",
          "Octal mode of the unix socket "
          "(default 0660)");
ABSL_FLAG(std::string, socket_group, "", "Group owning the unix socket");
ABSL_FLAG(std::vector<std::string>, max_batch_frames, {},
          "MODEL:N[,MODEL:N]: largest device run and request, in items");
ABSL_FLAG(std::vector<std::string>, max_queue_delay_us, {},
          "N or MODEL:N: longest wait for a batch to fill (default 0)");
ABSL_FLAG(std::vector<std::string>, max_queue_size, {},
          "N or MODEL:N: requests that may wait before RESOURCE_EXHAUSTED");
ABSL_FLAG(int, cpu_threads, 0, "CPU backend worker threads (default: cores)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");

namespace npuk {
namespace {

// The settings entry for `name`, added when the config has none.
config::ModelSettings& SettingsFor(config::Config& c, std::string_view name) {
  for (auto& m : *c.mutable_models()) {
    if (m.name() == name) return m;
  }
  config::ModelSettings* m = c.add_models();
  m->set_name(std::string(name));
  return *m;
}

// Applies "N" (every model) or "MODEL:N" entries to one numeric field.
// Unknown model names are left for FinalizeConfig to refuse.
// `max` is the field's type limit (uint32 fields must not wrap); the real
// ranges are FinalizeConfig's.
absl::Status ApplyPerModel(const std::vector<std::string>& entries,
                           const char* flag, config::Config& c,
                           void (*set)(config::ModelSettings&, uint64_t),
                           uint64_t max = UINT32_MAX) {
  for (const std::string& e : entries) {
    std::vector<std::string> parts = absl::StrSplit(e, ':');
    uint64_t value = 0;
    const std::string& number = parts.back();
    if (parts.size() > 2 || !absl::SimpleAtoi(number, &value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, "=", e, ": expected N or MODEL:N, e.g. ",
          AllKernels().front()->name, ":64 (models: ", KernelNames(), ")"));
    }
    if (value > max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, "=", e.substr(0, 64), ": ", number.substr(0, 32),
          " is out of range (at most ", max, ")"));
    }
    if (parts.size() == 1) {
      for (const KernelSpec* kernel : AllKernels()) {
        set(SettingsFor(c, kernel->name), value);
      }
    } else {
      set(SettingsFor(c, parts[0]), value);
    }
  }
  return absl::OkStatus();
}

// Case-insensitive; errors always reach stderr (the journal), so the
// quietest level is "error".
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string name) {
  for (char& ch : name) ch = static_cast<char>(std::tolower(ch));
  if (name == "warning") name = "warn";
  for (const auto level :
       {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
        spdlog::level::warn, spdlog::level::err}) {
    if (spdlog::level::to_string_view(level) == name) return level;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--log_level=", name.substr(0, 32),
      ": expected trace, debug, info, warn or error (errors are always "
      "logged)"));
}

absl::StatusOr<config::Config> BuildConfig() {
  config::Config c;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    NPUK_ASSIGN_OR_RETURN(c, LoadConfigFile(path));
  }
  if (auto v = absl::GetFlag(FLAGS_listen); !v.empty()) c.set_listen(v);
  if (auto v = absl::GetFlag(FLAGS_backend); !v.empty()) c.set_backend(v);
  if (auto v = absl::GetFlag(FLAGS_metrics); !v.empty()) {
    c.set_metrics_listen(v);
  }
  if (auto v = absl::GetFlag(FLAGS_http); !v.empty()) c.set_http_listen(v);
  // Durations: negative is refused, 0 keeps the config's (or the default),
  // the upper bound is FinalizeConfig's.
  for (const auto& [flag, value, set] :
       {std::tuple{"drain_timeout", absl::GetFlag(FLAGS_drain_timeout),
                   &config::Config::set_drain_timeout_ms},
        std::tuple{"health_interval", absl::GetFlag(FLAGS_health_interval),
                   &config::Config::set_health_interval_ms}}) {
    if (value < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", absl::FormatDuration(value),
                       " is negative; give a duration such as 10s or 500ms"));
    }
    if (value == absl::ZeroDuration()) continue;
    const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(value));
    if (ms > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", absl::FormatDuration(value),
                       " is out of range; allowed 1ms to 1h"));
    }
    (c.*set)(static_cast<uint32_t>(ms));
  }
  for (const std::string& f : absl::GetFlag(FLAGS_fault)) c.add_faults(f);
  if (auto v = absl::GetFlag(FLAGS_npu_sim_fault); !v.empty()) {
    c.mutable_npu_sim()->set_fault(v);
  }
  if (auto v = absl::GetFlag(FLAGS_tls_cert); !v.empty()) {
    c.mutable_tls()->set_cert_file(v);
  }
  if (auto v = absl::GetFlag(FLAGS_tls_key); !v.empty()) {
    c.mutable_tls()->set_key_file(v);
  }
  if (auto v = absl::GetFlag(FLAGS_tls_client_ca); !v.empty()) {
    c.mutable_tls()->set_client_ca_file(v);
  }
  if (auto v = absl::GetFlag(FLAGS_socket_mode); !v.empty()) {
    char* end = nullptr;
    const long mode = std::strtol(v.c_str(), &end, 8);
    if (*end != '\0' || mode <= 0 || mode > 0777) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--socket_mode=", v, ": expected an octal mode such as 0660"));
    }
    c.set_socket_mode(static_cast<uint32_t>(mode));
  }
  if (auto v = absl::GetFlag(FLAGS_socket_group); !v.empty()) {
    c.set_socket_group(v);
  }
  if (int t = absl::GetFlag(FLAGS_cpu_threads); t != 0) {
    if (t < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cpu_threads=", t,
                       " is negative; allowed 1 to 1024 (0 = one per "
                       "core)"));
    }
    c.set_cpu_threads(static_cast<uint32_t>(t));
  }
  NPUK_RETURN_IF_ERROR(
      ApplyPerModel(absl::GetFlag(FLAGS_max_batch_frames), "max_batch_frames",
                    c, [](config::ModelSettings& m, uint64_t v) {
                      m.set_max_batch_frames(static_cast<uint32_t>(v));
                    }));
  NPUK_RETURN_IF_ERROR(ApplyPerModel(absl::GetFlag(FLAGS_max_queue_delay_us),
                                     "max_queue_delay_us", c,
                                     [](config::ModelSettings& m, uint64_t v) {
                                       m.set_max_queue_delay_us(v);
                                     }));
  NPUK_RETURN_IF_ERROR(
      ApplyPerModel(absl::GetFlag(FLAGS_max_queue_size), "max_queue_size", c,
                    [](config::ModelSettings& m, uint64_t v) {
                      m.set_max_queue_size(static_cast<uint32_t>(v));
                    }));
  NPUK_RETURN_IF_ERROR(FinalizeConfig(c));
  return c;
}

int Run() {
  // Signals are taken synchronously by this thread; block them everywhere
  // before any other thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<config::Config> config = BuildConfig();
  if (!config.ok()) {
    spdlog::critical("npukd: {}", std::string(config.status().message()));
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(*config);
  if (!daemon.ok()) {
    spdlog::critical("npukd: {}", std::string(daemon.status().message()));
    return 1;
  }
  spdlog::info("npukd: serving on {} (backend {})", (*daemon)->address(),
               config->backend());

  bool faults_on = true;
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR2) {
      faults_on = !faults_on;
      (*daemon)->SetFaultsEnabled(faults_on);
      spdlog::warn("SIGUSR2: fault injection {}", faults_on ? "on" : "off");
      continue;
    }
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP ignored: restart npukd to apply config changes");
      continue;
    }
    spdlog::info("{}: draining (up to {} ms)",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 config->drain_timeout_ms());
    const bool clean =
        (*daemon)->Drain(absl::Milliseconds(config->drain_timeout_ms()));
    spdlog::info("npukd: stopped{}", clean ? "" : " (drain timed out)");
    return clean ? 0 : 1;
  }
}

}  // namespace
}  // namespace npuk

int main(int argc, char** argv) {
  const std::string usage = absl::StrCat(
      "npukd serves its kernels (", npuk::KernelNames(),
      ") over gRPC (KServe v2 / Triton protocol).\n\n"
      "usage: npukd [--config=FILE] [flags]\n"
      "       npukd --version\n\n"
      "example: npukd --backend=cpu --listen=unix:/tmp/npukd.sock\n"
      "Flags override the config file's fields; hyphens and underscores in "
      "flag\nnames are interchangeable (--drain-timeout, --drain_timeout).\n");
  absl::SetProgramUsageMessage(usage);
  // Accept --drain-timeout as well as --drain_timeout (absl spells flags
  // with underscores; the docs and systemd units often use hyphens).
  std::vector<std::string> normalized(argv, argv + argc);
  for (size_t i = 1; i < normalized.size(); ++i) {
    std::string& a = normalized[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    std::replace(a.begin() + 2, a.begin() + static_cast<long>(end), '-', '_');
  }
  std::vector<char*> args;
  for (std::string& a : normalized) args.push_back(a.data());
  // --help/-h and --version exit 0; unknown flags and bad values exit 2.
  const npuk::cli::Program program{
      .name = "npukd", .usage = usage, .flag_files = {"server/main.cc"}};
  if (std::optional<int> code =
          npuk::cli::HandleEarly(program, static_cast<int>(args.size()),
                                 args.data(), std::cout, std::cerr)) {
    return *code;
  }
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  spdlog::set_default_logger(spdlog::stderr_color_mt("npukd"));
  absl::StatusOr<spdlog::level::level_enum> level =
      npuk::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) {
    spdlog::critical("npukd: {}", std::string(level.status().message()));
    return 2;
  }
  spdlog::set_level(*level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  return npuk::Run();
}
