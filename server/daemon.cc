#include "server/daemon.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"
#include "kernels/registry/registry.h"
#include "server/batching/batcher.h"
#include "server/common/status_macros.h"
#include "server/config.h"
#include "server/device/factory.h"
#include "server/device/fault/fault_device.h"
#include "server/health/health_monitor.h"
#include "server/health/health_service.h"
#include "server/health/systemd_notifier.h"
#include "server/health/zero_guard.h"
#include "server/rpc/inference_service.h"
#include "server/rpc/socket_activation.h"
#include "server/telemetry/metrics_http.h"
#include "server/telemetry/model_stats.h"
#include "server/telemetry/prometheus.h"
#include "spdlog/spdlog.h"

namespace npuk {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const char* what) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " file ", path));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const config::Config& c) {
  if (!c.has_tls() || c.tls().cert_file().empty()) {
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options;
  NPUK_ASSIGN_OR_RETURN(const std::string cert,
                        ReadFile(c.tls().cert_file(), "TLS cert"));
  NPUK_ASSIGN_OR_RETURN(const std::string key,
                        ReadFile(c.tls().key_file(), "TLS key"));
  options.pem_key_cert_pairs.push_back({key, cert});
  if (!c.tls().client_ca_file().empty()) {
    NPUK_ASSIGN_OR_RETURN(options.pem_root_certs,
                          ReadFile(c.tls().client_ca_file(), "TLS client CA"));
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

// Refuses to steal a socket a live daemon listens on; removes a stale one.
absl::Status PrepareUnixSocket(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unix socket path ", path, " is longer than ",
        sizeof(sockaddr_un::sun_path) - 1, " bytes; choose a shorter one"));
  }
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create socket directory ", dir, ": ", std::strerror(errno),
        "; pass --listen=unix:PATH in a writable directory"));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat(path,
                     " exists and is not a socket; remove it or choose another "
                     "--listen path"));
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool live =
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  if (live) {
    return absl::AlreadyExistsError(absl::StrCat(
        "another process is serving on ", path,
        "; stop it (systemctl stop npukd) or choose another --listen path"));
  }
  ::unlink(path.c_str());
  return absl::OkStatus();
}

absl::Status SecureUnixSocket(const std::string& path,
                              const config::Config& c) {
  if (!c.socket_group().empty()) {
    const group* g = ::getgrnam(c.socket_group().c_str());
    if (g == nullptr) {
      return absl::NotFoundError(absl::StrCat("socket_group '",
                                              c.socket_group(),
                                              "' does not exist; create it "
                                              "or choose another group"));
    }
    if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot give ", path, " to group ", c.socket_group(),
                       ": ", std::strerror(errno)));
    }
  }
  if (::chmod(path.c_str(), static_cast<mode_t>(c.socket_mode())) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot chmod ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// The golden canary cut to the model's largest run, so that it can be
// submitted however small max_batch_frames is (e.g. 1 for a benchmark).
Canary FitCanary(Canary canary, size_t max_items) {
  if (canary.items <= max_items) return canary;
  for (auto& plane : canary.planes) {
    plane.resize(plane.size() / canary.items * max_items);
  }
  canary.expected.resize(canary.expected.size() / canary.items * max_items);
  canary.items = max_items;
  return canary;
}

// The health monitor answers the rpc layer's readiness questions.
class MonitorReadiness final : public ModelReadiness {
 public:
  explicit MonitorReadiness(const HealthMonitor* monitor) : monitor_(monitor) {}
  bool IsServing(std::string_view model) const override {
    return monitor_->IsServing(model);
  }

 private:
  const HealthMonitor* monitor_;
};

class DaemonImpl final : public Daemon {
 public:
  explicit DaemonImpl(const config::Config& config)
      : config_(config),
        monitor_(HealthMonitorOptions{
            .interval = absl::Milliseconds(config.health_interval_ms())}),
        guard_(&monitor_),
        readiness_(&monitor_) {}
  ~DaemonImpl() override {
    Drain(absl::Seconds(5));
    // Also after a failed start: no canary or observer call may outlive
    // the batchers, services and notifier it points at.
    monitor_.Stop();
  }

  // Start-up, in order; each step needs the ones before it.
  absl::Status Init();

  std::string address() const override { return address_; }
  bool Drain(absl::Duration timeout) override;
  void SetFaultsEnabled(bool enabled) override { faults_.SetArmed(enabled); }

 private:
  struct Model {
    const KernelSpec* spec;
    std::unique_ptr<ModelStats> stats;
    std::unique_ptr<Batcher> batcher;
  };

  // The backend, wrapped in the fault decorator when drills are configured.
  absl::Status OpenDevice();
  // Per enabled model: executors, a batcher, its stats and its canary.
  // Fills models_ and returns what the rpc layer serves.
  absl::StatusOr<std::vector<ServedModel>> PrepareModels();
  // The rpc and health services, systemd, and the start-up canaries (run
  // before any socket opens: no client sees a model SERVING that has not
  // proved itself on this device).
  void StartServices(std::vector<ServedModel> served);
  // The gRPC server on the configured (or systemd-passed) socket; sets
  // address_.
  absl::Status StartServer();
  absl::Status StartMetrics();

  std::string RenderMetrics() const;

  // Members are destroyed in reverse order: the batchers (in models_) go
  // before the guard and the monitor they call, the device after them.
  config::Config config_;
  FaultController faults_;
  std::unique_ptr<Device> device_;
  HealthMonitor monitor_;
  ZeroGuard guard_;
  MonitorReadiness readiness_;
  std::vector<Model> models_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<HealthService> health_service_;
  std::unique_ptr<SystemdNotifier> systemd_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ActivatedSocketAcceptor> acceptor_;
  std::unique_ptr<MetricsHttpServer> metrics_;
  std::string address_;
  std::string unix_path_;
  bool drained_ = false;
};

absl::Status DaemonImpl::Init() {
  NPUK_RETURN_IF_ERROR(OpenDevice());
  NPUK_ASSIGN_OR_RETURN(std::vector<ServedModel> served, PrepareModels());
  StartServices(std::move(served));
  NPUK_RETURN_IF_ERROR(StartServer());
  NPUK_RETURN_IF_ERROR(StartMetrics());
  systemd_->ReadyWhenServing(address_);
  return absl::OkStatus();
}

absl::Status DaemonImpl::OpenDevice() {
  absl::StatusOr<std::unique_ptr<Device>> device = CreateDevice(config_);
  if (!device.ok()) {
    return absl::Status(
        device.status().code(),
        absl::StrCat("backend '", config_.backend(),
                     "' failed to start: ", device.status().message()));
  }
  device_ = *std::move(device);

  std::vector<FaultSpec> faults;
  for (const std::string& text : config_.faults()) {
    NPUK_ASSIGN_OR_RETURN(std::vector<FaultSpec> specs, ParseFaultSpecs(text));
    faults.insert(faults.end(), specs.begin(), specs.end());
  }
  if (!faults.empty()) {
    FaultOptions options;
    if (config_.xrt().run_timeout_ms() > 0) {
      options.run_timeout = absl::Milliseconds(config_.xrt().run_timeout_ms());
    }
    device_ = WithFaults(std::move(device_), faults, &faults_, options);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ServedModel>> DaemonImpl::PrepareModels() {
  std::vector<ServedModel> served;
  for (const KernelSpec* spec : AllKernels()) {
    const config::ModelSettings* settings =
        FindModelSettings(config_, spec->name);
    if (settings == nullptr) continue;
    std::vector<std::unique_ptr<Executor>> executors;
    for (uint32_t i = 0; i < settings->instances(); ++i) {
      absl::StatusOr<std::unique_ptr<Executor>> e =
          device_->CreateExecutor(*spec, settings->max_batch_frames());
      if (!e.ok()) {
        return absl::Status(
            e.status().code(),
            absl::StrCat("cannot prepare model '", spec->name, "' on backend ",
                         config_.backend(), ": ", e.status().message()));
      }
      executors.push_back(*std::move(e));
    }
    Model m{spec, std::make_unique<ModelStats>(spec->name), nullptr};
    BatcherOptions options;
    options.max_batch_items = settings->max_batch_frames();
    options.max_queue_delay =
        absl::Microseconds(settings->max_queue_delay_us());
    options.max_queue_size = settings->max_queue_size();
    m.batcher = std::make_unique<Batcher>(*spec, options, std::move(executors),
                                          &guard_, m.stats.get());
    monitor_.AddModel(m.batcher.get(), FitCanary(GoldenCanary(*spec),
                                                 settings->max_batch_frames()));
    served.push_back({spec, m.batcher.get(), m.stats.get(), *settings});
    models_.push_back(std::move(m));
  }
  if (models_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("every model is disabled in the config; enable one of ",
                     KernelNames()));
  }
  return served;
}

void DaemonImpl::StartServices(std::vector<ServedModel> served) {
  service_ = std::make_unique<InferenceService>(std::move(served),
                                                config_.backend(), &readiness_);
  health_service_ = std::make_unique<HealthService>(monitor_.model_names());
  health_service_->Attach(&monitor_);
  systemd_ = std::make_unique<SystemdNotifier>(&monitor_);
  systemd_->Start();

  if (absl::Status first = monitor_.RunInitialCanaries(); !first.ok()) {
    spdlog::error(
        "start-up canary failed: {}; the model stays NOT_SERVING "
        "until a canary passes",
        std::string(first.message()));
  }
  monitor_.Start();
}

absl::Status DaemonImpl::StartServer() {
  NPUK_ASSIGN_OR_RETURN(const std::optional<int> activated,
                        TakeActivatedUnixSocket());

  std::string listen = config_.listen();
  if (activated.has_value()) {
    listen = absl::StrCat("unix:", UnixSocketPath(*activated));
    spdlog::info("socket-activated: serving the socket systemd passed ({})",
                 listen);
  } else if (absl::StartsWith(listen, "unix:")) {
    unix_path_ = listen.substr(5);
    if (unix_path_.empty() || unix_path_[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen=", listen, ": the unix socket path must be absolute"));
    }
    NPUK_RETURN_IF_ERROR(PrepareUnixSocket(unix_path_));
  }
  NPUK_ASSIGN_OR_RETURN(const std::shared_ptr<grpc::ServerCredentials> creds,
                        Credentials(config_));

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  if (!activated.has_value()) {
    builder.AddListeningPort(listen, creds,
                             unix_path_.empty() ? &bound_port : nullptr);
  }
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(config_.max_message_bytes()));
  builder.SetMaxSendMessageSize(static_cast<int>(config_.max_message_bytes()));
  builder.RegisterService(service_.get());
  builder.RegisterService(health_service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", listen,
        "; check that the address is free and well-formed (unix:/abs/path "
        "or HOST:PORT) and that you may bind it"));
  }
  if (activated.has_value()) {
    acceptor_ = std::make_unique<ActivatedSocketAcceptor>(*activated);
    NPUK_RETURN_IF_ERROR(acceptor_->Start(server_.get()));
    address_ = listen;
  } else if (!unix_path_.empty()) {
    NPUK_RETURN_IF_ERROR(SecureUnixSocket(unix_path_, config_));
    address_ = listen;
  } else {
    const std::string host = listen.substr(0, listen.rfind(':'));
    address_ = absl::StrCat(host, ":", bound_port);
  }
  return absl::OkStatus();
}

absl::Status DaemonImpl::StartMetrics() {
  if (config_.metrics_listen().empty()) return absl::OkStatus();
  NPUK_ASSIGN_OR_RETURN(
      metrics_, MetricsHttpServer::Start(config_.metrics_listen(),
                                         [this] { return RenderMetrics(); }));
  spdlog::info("metrics on http://{}/metrics (port {})",
               config_.metrics_listen(), metrics_->port());
  return absl::OkStatus();
}

std::string DaemonImpl::RenderMetrics() const {
  std::vector<ModelMetricsView> views;
  for (const Model& m : models_) {
    views.push_back({m.stats.get(), m.batcher->pending(),
                     monitor_.IsServing(m.spec->name)});
  }
  return RenderPrometheus(views);
}

bool DaemonImpl::Drain(absl::Duration timeout) {
  if (drained_ || server_ == nullptr) return true;
  drained_ = true;
  const absl::Time deadline = absl::Now() + timeout;
  // A drill's hang or timeout fault must not hold the drain hostage.
  faults_.Clear();
  systemd_->Stopping();
  service_->SetDraining();
  health_service_->SetDraining();
  if (acceptor_ != nullptr) acceptor_->Stop();
  monitor_.Stop();
  // Answer everything accepted; the batchers join their threads.
  absl::Notification batchers_done;
  std::thread drainer([&] {
    for (Model& m : models_) m.batcher->Drain();
    batchers_done.Notify();
  });
  const bool in_time = batchers_done.WaitForNotificationWithDeadline(deadline);
  if (!in_time) {
    spdlog::error(
        "drain timeout: accepted requests are still running after "
        "{}; stopping anyway",
        absl::FormatDuration(timeout));
  }
  // End Watch streams, flush the answers and close connections.
  health_service_->Shutdown();
  // Every accepted request has been answered; what is left is writing the
  // last responses. An idle client connection would otherwise hold Shutdown
  // until the deadline.
  const absl::Time close_by =
      std::clamp(absl::Now() + absl::Seconds(1), absl::Now(), deadline);
  server_->Shutdown(absl::ToChronoTime(close_by));
  drainer.join();
  systemd_->Stop();
  metrics_.reset();
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  return in_time;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(
    const config::Config& config) {
  auto daemon = std::make_unique<DaemonImpl>(config);
  NPUK_RETURN_IF_ERROR(daemon->Init());
  return daemon;
}

}  // namespace npuk
