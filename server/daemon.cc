#include "server/daemon.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "grpc/grpc.h"
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
#include "server/http/http_server.h"
#include "server/http/rest_service.h"
#include "server/models/attention_model.h"
#include "server/models/log_mel.h"
#include "server/reflection/reflection_v1.h"
#include "server/rpc/inference_service.h"
#include "server/rpc/listener.h"
#include "server/rpc/socket_activation.h"
#include "server/rpc/tls_relay.h"
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

// The golden canary cut to the model's largest run, so that it can be
// submitted however small max_batch_frames is (e.g. 1 for a benchmark).
Canary FitCanary(Canary canary, size_t max_items) {
  if (canary.items <= max_items) return canary;
  for (size_t p = 0; p < canary.planes.size(); ++p) {
    canary.planes[p].resize(canary.kernel->plane_span(p, max_items));
  }
  canary.expected.resize(canary.expected.size() / canary.items * max_items);
  canary.items = max_items;
  return canary;
}

// The health monitor answers the rpc layer's readiness questions.
// A host model (log_mel) is serving while every kernel it runs on is.
class MonitorReadiness final : public ModelReadiness {
 public:
  explicit MonitorReadiness(const HealthMonitor* monitor) : monitor_(monitor) {}
  // REQUIRES: before the service starts (not synchronised).
  void AddHostModel(std::string name, std::vector<std::string> kernels) {
    host_models_.emplace(std::move(name), std::move(kernels));
  }
  bool IsServing(std::string_view model) const override {
    const auto it = host_models_.find(model);
    if (it == host_models_.end()) return monitor_->IsServing(model);
    for (const std::string& k : it->second) {
      if (!monitor_->IsServing(k)) return false;
    }
    return !it->second.empty();
  }

 private:
  const HealthMonitor* monitor_;
  std::map<std::string, std::vector<std::string>, std::less<>> host_models_;
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
  // The listen address (config or systemd), and the single-instance lock
  // for it (listener.h InstanceLock).
  absl::Status TakeListenAddress();
  // The gRPC server on the configured (or systemd-passed) socket. The
  // listening socket is always ours (ConnectionAcceptor); TLS connections
  // go through the TlsRelay to gRPC's TLS listener on a private unix
  // socket. Sets address_.
  absl::Status StartServer();
  absl::Status StartMetrics();
  // The KServe v2 REST API on --http (off when empty).
  absl::Status StartRest();

  std::string RenderMetrics() const;
  // The acceptor's "cannot accept" state and the relay's lost internal
  // listener share the monitor's one accept fault; the relay's (which
  // needs a restart) wins while set.
  void SetAcceptFault(bool from_relay, const std::string& reason);

  // Members are destroyed in reverse order: the batchers (in models_) go
  // before the guard and the monitor they call, the device after them.
  config::Config config_;
  // Held for the daemon's whole life; released last.
  InstanceLock lock_;
  FaultController faults_;
  std::unique_ptr<Device> device_;
  HealthMonitor monitor_;
  ZeroGuard guard_;
  MonitorReadiness readiness_;
  // log_mel (server/models/log_mel.h): its statistics observe the batchers
  // of the internal kernels it runs on, so they outlive models_.
  std::unique_ptr<ModelStats> log_mel_stats_;
  std::unique_ptr<LogMelModel> log_mel_;
  std::vector<Model> models_;
  // The attention model over the tile kernel `attention` and the internal
  // `attention_stream` (server/models/attention_model.h); its statistics are
  // the tile kernel's (in models_), which observe both batchers.
  std::unique_ptr<AttentionModel> attention_;
  // System shared-memory regions clients registered; requests keep the
  // mappings they use alive on their own.
  shm::SharedMemoryRegistry shm_registry_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<HealthService> health_service_;
  std::unique_ptr<ReflectionV1Service> reflection_v1_;
  std::unique_ptr<SystemdNotifier> systemd_;
  std::unique_ptr<grpc::Server> server_;
  // TLS only; the acceptor feeds it, so it is destroyed after the acceptor.
  std::unique_ptr<TlsRelay> relay_;
  std::unique_ptr<ConnectionAcceptor> acceptor_;
  std::unique_ptr<MetricsHttpServer> metrics_;
  std::unique_ptr<RestService> rest_;
  std::unique_ptr<HttpServer> http_;  // serves rest_
  std::optional<int> activated_;      // until StartServer hands it over
  std::string listen_;
  std::string address_;
  std::string unix_path_;
  bool drained_ = false;
  absl::Mutex fault_mu_;
  std::string acceptor_fault_ ABSL_GUARDED_BY(fault_mu_);
  std::string relay_fault_ ABSL_GUARDED_BY(fault_mu_);
};

void DaemonImpl::SetAcceptFault(bool from_relay, const std::string& reason) {
  absl::MutexLock lock(&fault_mu_);
  (from_relay ? relay_fault_ : acceptor_fault_) = reason;
  monitor_.SetAcceptFault(relay_fault_.empty() ? acceptor_fault_
                                               : relay_fault_);
}

absl::Status DaemonImpl::Init() {
  // First: a second daemon for the same address fails before it touches
  // the device.
  NPUK_RETURN_IF_ERROR(TakeListenAddress());
  // Connections cost one fd each (three over TLS: tls_relay.h); systemd's
  // default soft limit (1024) is far below the hard one.
  spdlog::info("file descriptor limit: {}", RaiseFdLimit());
  NPUK_RETURN_IF_ERROR(OpenDevice());
  NPUK_ASSIGN_OR_RETURN(std::vector<ServedModel> served, PrepareModels());
  StartServices(std::move(served));
  NPUK_RETURN_IF_ERROR(StartServer());
  NPUK_RETURN_IF_ERROR(StartMetrics());
  NPUK_RETURN_IF_ERROR(StartRest());
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

// The served model an internal kernel runs for (its statistics are that
// model's): log_mel's PCM kernels, the attention model's stream kernel.
std::string_view ServedBy(std::string_view internal_kernel) {
  return internal_kernel == "attention_stream" ? "attention" : "log_mel";
}

absl::StatusOr<std::vector<ServedModel>> DaemonImpl::PrepareModels() {
  std::vector<ServedModel> served;
  // Kernel models first: an internal kernel's statistics may be theirs.
  std::vector<const KernelSpec*> order;
  for (const KernelSpec* spec : AllKernels()) {
    if (!spec->internal) order.push_back(spec);
  }
  for (const KernelSpec* spec : AllKernels()) {
    if (spec->internal) order.push_back(spec);
  }
  for (const KernelSpec* spec : order) {
    const config::ModelSettings* settings =
        FindModelSettings(config_, spec->name);
    if (settings == nullptr) continue;
    ModelStats* host_stats = nullptr;
    if (spec->internal && ServedBy(spec->name) != "log_mel") {
      for (const Model& m : models_) {
        if (m.spec->name == ServedBy(spec->name)) host_stats = m.stats.get();
      }
      if (host_stats == nullptr) {
        spdlog::warn(
            "kernel {} is not prepared: it serves only model {}, which is "
            "disabled in the config",
            spec->name, ServedBy(spec->name));
        continue;
      }
    }
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
    // An internal kernel (mel_pcm, mel128_pcm) is not a model on the wire:
    // it reports its runs to the host model that serves it (log_mel).
    Model m{spec,
            spec->internal ? nullptr : std::make_unique<ModelStats>(spec->name),
            nullptr};
    if (spec->internal && host_stats == nullptr) {
      if (log_mel_stats_ == nullptr) {
        log_mel_stats_ =
            std::make_unique<ModelStats>(LogMelModel::Descriptor().name);
      }
      host_stats = log_mel_stats_.get();
    }
    BatcherOptions options;
    options.max_batch_items = settings->max_batch_frames();
    options.max_queue_delay =
        absl::Microseconds(settings->max_queue_delay_us());
    options.max_queue_size = settings->max_queue_size();
    m.batcher =
        std::make_unique<Batcher>(*spec, options, std::move(executors), &guard_,
                                  spec->internal ? host_stats : m.stats.get());
    monitor_.AddModel(m.batcher.get(), FitCanary(GoldenCanary(*spec),
                                                 settings->max_batch_frames()));
    if (!spec->internal) {
      served.push_back({spec, m.batcher.get(), m.stats.get(), *settings});
    }
    models_.push_back(std::move(m));
  }
  // log_mel over whichever of mel_pcm / mel128_pcm is enabled.
  Batcher* pcm[2] = {nullptr, nullptr};
  const config::ModelSettings* pcm_settings = nullptr;
  for (const Model& m : models_) {
    const int slot = m.spec->name == "mel_pcm"      ? 0
                     : m.spec->name == "mel128_pcm" ? 1
                                                    : -1;
    if (slot < 0) continue;
    pcm[slot] = m.batcher.get();
    if (pcm_settings == nullptr) {
      pcm_settings = FindModelSettings(config_, m.spec->name);
    }
  }
  if (pcm_settings != nullptr) {
    log_mel_ = std::make_unique<LogMelModel>(
        LogMelOptions{.backend = config_.backend(),
                      .max_message_bytes = config_.max_message_bytes(),
                      .instances = pcm_settings->instances()},
        pcm[0], pcm[1], log_mel_stats_.get());
    readiness_.AddHostModel(LogMelModel::Descriptor().name,
                            log_mel_->kernels());
    served.push_back({&LogMelModel::Descriptor(), nullptr, log_mel_stats_.get(),
                      *pcm_settings, log_mel_.get()});
  }
  // attention over its tile kernel (whose name, settings and statistics
  // it takes) and, when enabled, attention_stream.
  Batcher* tiles = nullptr;
  Batcher* units = nullptr;
  for (const Model& m : models_) {
    if (m.spec->name == "attention") tiles = m.batcher.get();
    if (m.spec->name == "attention_stream") units = m.batcher.get();
  }
  for (ServedModel& s : served) {
    if (tiles == nullptr || s.batcher != tiles) continue;
    attention_ = std::make_unique<AttentionModel>(
        AttentionModelOptions{.backend = config_.backend(),
                              .instances = s.settings.instances()},
        tiles, units, s.stats);
    readiness_.AddHostModel(s.spec->name, attention_->kernels());
    s.host = attention_.get();
  }
  if (models_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("every model is disabled in the config; enable one of ",
                     KernelNames()));
  }
  return served;
}

void DaemonImpl::StartServices(std::vector<ServedModel> served) {
  // ModelStreamInfer flow control; 0 keeps the default, anything above
  // INT64_MAX means no bound.
  auto bytes = [](uint64_t v) {
    return static_cast<int64_t>(
        std::min<uint64_t>(v, std::numeric_limits<int64_t>::max()));
  };
  StreamLimits stream_limits;
  if (config_.stream_max_bytes_in_flight() > 0) {
    stream_limits.per_stream = bytes(config_.stream_max_bytes_in_flight());
  }
  if (config_.streams_max_bytes_in_flight() > 0) {
    stream_limits.per_process = bytes(config_.streams_max_bytes_in_flight());
  }
  service_ = std::make_unique<InferenceService>(
      std::move(served), config_.backend(), &readiness_, stream_limits);
  service_->SetSharedMemory(&shm_registry_);
  // Health answers for the whole server under "" and under the inference
  // service's fully qualified name (what Kubernetes probes and grpc
  // health-checking clients are usually configured with).
  // log_mel has a health service of its own, SERVING while every kernel
  // it runs on is (the internal kernels keep theirs too); attention's is
  // its tile kernel's name, with the same rule (AddGroup below).
  std::vector<std::string> health_names = monitor_.model_names();
  if (log_mel_ != nullptr) {
    health_names.push_back(LogMelModel::Descriptor().name);
  }
  health_service_ = std::make_unique<HealthService>(
      std::move(health_names),
      std::vector<std::string>{
          inference::GRPCInferenceService::service_full_name()});
  // A host model is SERVING while every kernel it runs on is.
  if (log_mel_ != nullptr) {
    health_service_->AddGroup(LogMelModel::Descriptor().name,
                              log_mel_->kernels());
  }
  if (attention_ != nullptr) {
    health_service_->AddGroup(attention_->descriptor().name,
                              attention_->kernels());
  }
  reflection_v1_ =
      std::make_unique<ReflectionV1Service>(std::vector<std::string>{
          inference::GRPCInferenceService::service_full_name(),
          grpc::health::v1::Health::service_full_name()});
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

absl::Status DaemonImpl::TakeListenAddress() {
  NPUK_ASSIGN_OR_RETURN(activated_, TakeActivatedUnixSocket());
  listen_ = config_.listen();
  if (activated_.has_value()) {
    // systemd owns the socket (and so the single instance).
    listen_ = absl::StrCat("unix:", UnixSocketPath(*activated_));
    spdlog::info("socket-activated: serving the socket systemd passed ({})",
                 listen_);
    return absl::OkStatus();
  }
  if (absl::StartsWith(listen_, "unix:")) {
    unix_path_ = listen_.substr(5);
    if (unix_path_.empty() || unix_path_[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen=", listen_.substr(0, 256),
                       ": the unix socket path must be absolute"));
    }
    const std::string dir = unix_path_.substr(0, unix_path_.rfind('/'));
    if (!dir.empty() && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot create socket directory ", dir, ": ", std::strerror(errno),
          "; pass --listen=unix:PATH in a writable directory"));
    }
    NPUK_ASSIGN_OR_RETURN(
        lock_, InstanceLock::Acquire(LockPathFor(listen_, /*runtime_dir=*/"")));
    return absl::OkStatus();
  }
  // TCP: the bind itself is exclusive (no SO_REUSEPORT); the lock in the
  // runtime directory also names the other daemon's pid.
  const std::string socket = DefaultSocketPath();
  const std::string lock_path =
      LockPathFor(listen_, socket.substr(0, socket.rfind('/')));
  if (lock_path.empty()) return absl::OkStatus();
  absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(lock_path);
  if (lock.ok()) {
    lock_ = *std::move(lock);
  } else if (lock.status().code() == absl::StatusCode::kAlreadyExists) {
    return lock.status();
  } else {
    spdlog::warn("{}; relying on the exclusive bind of {} instead",
                 std::string(lock.status().message()), listen_);
  }
  return absl::OkStatus();
}

absl::Status DaemonImpl::StartServer() {
  const bool tls = config_.has_tls() && !config_.tls().cert_file().empty();
  std::vector<int> fds;  // the listening sockets; the acceptor owns them
  int bound_port = 0;
  gid_t gid = static_cast<gid_t>(-1);
  if (!unix_path_.empty()) {
    NPUK_RETURN_IF_ERROR(PrepareUnixSocket(unix_path_));
    if (!config_.socket_group().empty()) {
      const group* g = ::getgrnam(config_.socket_group().c_str());
      if (g == nullptr) {
        return absl::NotFoundError(absl::StrCat(
            "socket_group '", config_.socket_group().substr(0, 256),
            "' does not exist; create it or choose another group"));
      }
      gid = g->gr_gid;
    }
  }
  if (activated_.has_value()) {
    fds.push_back(*activated_);
    activated_.reset();
  } else if (!unix_path_.empty()) {
    NPUK_ASSIGN_OR_RETURN(const int fd,
                          ListenUnix(unix_path_, config_.socket_mode(), gid));
    fds.push_back(fd);
  } else {
    NPUK_ASSIGN_OR_RETURN(TcpListener tcp, ListenTcp(listen_));
    fds = std::move(tcp.fds);
    bound_port = tcp.port;
  }
  auto close_listeners = [&] {
    for (int fd : fds) ::close(fd);
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  };
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      Credentials(config_);
  if (!creds.ok()) {
    close_listeners();
    return creds.status();
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (tls) {
    // gRPC's TLS listeners, on unix sockets only npukd can reach; the relay
    // brings them the connections of the public socket.
    const std::string runtime = DefaultSocketPath();
    absl::StatusOr<std::unique_ptr<TlsRelay>> relay =
        TlsRelay::Create({.parent_dir = runtime.substr(0, runtime.rfind('/')),
                          .on_lost =
                              [this](const std::string& reason) {
                                SetAcceptFault(/*from_relay=*/true, reason);
                              },
                          .name = listen_});
    if (!relay.ok()) {
      close_listeners();
      return relay.status();
    }
    relay_ = *std::move(relay);
    for (const std::string& address : relay_->internal_addresses()) {
      builder.AddListeningPort(address, *creds);
    }
  }
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(config_.max_message_bytes()));
  builder.SetMaxSendMessageSize(static_cast<int>(config_.max_message_bytes()));
  // HTTP/2 flow control is what holds back a client whose stream stopped
  // being read (stream_reactor.h): with BDP probing gRPC grows every
  // stream's window to megabytes, which it buffers unread.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // gRPC decompresses a whole message before its size check: compressed
  // requests only when the operator trusts the clients (config.proto).
  if (!config_.accept_compressed_requests()) {
    builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
    builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  }
  builder.RegisterService(service_.get());
  builder.RegisterService(health_service_.get());
  builder.RegisterService(reflection_v1_.get());  // v1alpha: the plugin
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    close_listeners();
    return absl::UnavailableError(absl::StrCat(
        "cannot start the gRPC server for ", listen_.substr(0, 256),
        tls ? " (its TLS listeners on private unix sockets)" : ""));
  }
  if (relay_ != nullptr) {
    if (absl::Status s = relay_->Start(); !s.ok()) {
      close_listeners();
      return s;
    }
  }
  acceptor_ = std::make_unique<ConnectionAcceptor>(
      std::move(fds),
      AcceptorOptions{.on_state =
                          [this](bool accepting, const std::string& error) {
                            SetAcceptFault(/*from_relay=*/false,
                                           accepting ? "" : error);
                          },
                      .name = listen_});
  NPUK_RETURN_IF_ERROR(relay_ != nullptr ? acceptor_->Start(relay_.get())
                                         : acceptor_->Start(server_.get()));
  if (!unix_path_.empty() || absl::StartsWith(listen_, "unix:")) {
    address_ = listen_;
  } else {
    const std::string host = listen_.substr(0, listen_.rfind(':'));
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

absl::Status DaemonImpl::StartRest() {
  if (config_.http_listen().empty()) return absl::OkStatus();
  rest_ = std::make_unique<RestService>(service_.get(), &shm_registry_);
  HttpServerOptions options;
  options.flag = "--http";
  options.max_body_bytes = config_.max_message_bytes();
  // Request bodies buffered at once across connections: a few full-size
  // requests; more get 503 until some are answered.
  options.max_buffered_bytes = 4 * size_t{config_.max_message_bytes()};
  options.max_connections = 256;
  options.internal_threads = 2;
  options.headers = RestService::Headers();
  RestService* rest = rest_.get();
  NPUK_ASSIGN_OR_RETURN(
      http_,
      HttpServer::Start(config_.http_listen(), std::move(options),
                        [rest](HttpRequest& request, HttpResponder respond) {
                          rest->Handle(request, std::move(respond));
                        }));
  spdlog::info("REST (KServe v2) on http://{}/v2 (port {})",
               config_.http_listen(), http_->port());
  return absl::OkStatus();
}

std::string DaemonImpl::RenderMetrics() const {
  std::vector<ModelMetricsView> views;
  for (const Model& m : models_) {
    // Internal kernels are counted by the model they serve.
    if (m.stats == nullptr) continue;
    const bool host =
        attention_ != nullptr && m.spec == &attention_->descriptor();
    views.push_back({m.stats.get(),
                     host ? attention_->pending() : m.batcher->pending(),
                     readiness_.IsServing(m.spec->name)});
  }
  if (log_mel_ != nullptr) {
    views.push_back({log_mel_stats_.get(), log_mel_->pending(),
                     readiness_.IsServing(LogMelModel::Descriptor().name)});
  }
  return RenderPrometheus(views);
}

// Drain timing (DaemonImpl::Drain): no new call for kDrainQuiet before
// Shutdown (waiting at most kDrainMaxQuietWait); kGoawayGrace for the GOAWAY
// to go out before the held refusals; kReadGrace for clients to read the
// last stream answers before the streams end; kDrainLinger for clients to
// close their connections.
constexpr absl::Duration kDrainQuiet = absl::Milliseconds(100);
constexpr absl::Duration kDrainMaxQuietWait = absl::Seconds(1);
constexpr absl::Duration kGoawayGrace = absl::Milliseconds(50);
constexpr absl::Duration kDrainLinger = absl::Milliseconds(500);
// Between the last stream answer written and the streams' statuses.
constexpr absl::Duration kReadGrace = absl::Milliseconds(200);

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
  // Drain order (server/rpc/drain_gate.h): gRPC 1.51 cancels a call whose
  // headers arrive after Shutdown began and before its GOAWAY is out, so no
  // client may be sending then. Every answer given since draining began
  // was a real one (the refusals are held); wait until the clients that got
  // them have sent their next call, i.e. until none has arrived for a
  // quiet period. It is bounded by the drain deadline (a client that keeps
  // opening calls without waiting for answers would never let it pass).
  const absl::Time now = absl::Now();
  service_->calls().WaitQuiet(
      kDrainQuiet, std::min(std::max(deadline - absl::Milliseconds(250), now),
                            now + kDrainMaxQuietWait));
  // End Watch streams.
  health_service_->Shutdown();
  // Shutdown's own deadline is only a backstop: what remains after the
  // answers below is closed by CancelAllCalls.
  const absl::Time backstop =
      std::max(deadline, absl::Now()) + kDrainLinger + absl::Milliseconds(250);
  absl::Notification shutdown_started, shutdown_done;
  std::thread shutdown([&] {
    shutdown_started.Notify();
    server_->Shutdown(absl::ToChronoTime(backstop));
    shutdown_done.Notify();
  });
  // Shutdown sends GOAWAY on every connection as it starts; the held calls
  // are answered after that, so no client's next call races the shutdown
  // into a CANCELLED: it fails UNAVAILABLE on the client's side.
  shutdown_started.WaitForNotification();
  absl::SleepFor(kGoawayGrace);
  service_->ReleaseDrained();
  if (http_ != nullptr) {
    http_->Stop(std::max(deadline, absl::Now() + absl::Milliseconds(250)));
  }
  // Every held answer and every accepted stream request answered and
  // written; the streams' statuses are held (drain_gate.h): gRPC closes a
  // connection as soon as its last stream ends, and a client that has not
  // read its answers by then loses them. Give the clients a moment to read,
  // then let the statuses go and every call end.
  const absl::Time calls_by =
      std::max(deadline, absl::Now() + absl::Milliseconds(250));
  service_->calls().WaitSettled(calls_by);
  if (service_->calls().held_finishes() > 0) absl::SleepFor(kReadGrace);
  service_->calls().ReleaseFinishes();
  const bool calls_done = service_->calls().WaitIdle(calls_by);
  if (!calls_done) {
    spdlog::error(
        "drain timeout: {} inference call(s) still open (streams whose "
        "clients have not half-closed); they are cancelled",
        service_->calls().open());
  }
  // Clients close their connections once they have read their answers
  // after the GOAWAY; closing them first would lose answers still unread
  // in a client's socket (its next write fails "Broken pipe" and its
  // transport drops everything). Idle clients that keep their connection
  // open are disconnected after the linger.
  const absl::Time linger_end = std::max(
      absl::Now() + absl::Milliseconds(100),
      std::min(absl::Now() + kDrainLinger, deadline + absl::Milliseconds(500)));
  if (!shutdown_done.WaitForNotificationWithDeadline(linger_end)) {
    spdlog::info(
        "drain: every call answered; closing the client connections still "
        "open after {}",
        absl::FormatDuration(kDrainLinger));
    grpc_server_cancel_all_calls(server_->c_server());
  }
  shutdown.join();
  // gRPC has closed every relayed connection: the relay has nothing left.
  if (relay_ != nullptr) relay_->Stop();
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
