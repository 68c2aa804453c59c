#include "server/health/health_service.h"

#include <utility>

#include "fmt/format.h"
#include "fmt/ranges.h"

namespace npuk {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch stream. At most one write is outstanding; while it is, newer
// states just replace `want_` and the latest one is written next, so a slow
// client sees the current state, never a backlog. The reactor is kept alive
// by shared_ptrs (its own until OnDone, and the broadcaster's while it
// updates it), so no service lock is needed around gRPC calls.
class HealthService::Watcher
    : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  static std::shared_ptr<Watcher> Create(std::string service) {
    std::shared_ptr<Watcher> w(new Watcher(std::move(service)));
    w->self_ = w;
    return w;
  }

  const std::string& service() const { return service_; }

  // Makes `status` the state to send; ends the stream after it when
  // `finish`.
  void Update(ServingStatus status, bool finish) {
    {
      absl::MutexLock lock(&mu_);
      want_ = status;
      finish_ |= finish;
    }
    Step();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        broken_ = true;
        finish_ = true;
      }
    }
    Step();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      finish_ = true;
    }
    Step();
  }

  void OnDone() override {
    // Drops the reactor's own reference; a broadcaster may still hold one,
    // and sees finished_ so never touches the finished stream.
    std::shared_ptr<Watcher> keep = std::move(self_);
  }

 private:
  explicit Watcher(std::string service) : service_(std::move(service)) {}

  // Starts the next write, or the finish, outside the lock: gRPC may run a
  // reaction inline.
  void Step() {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    grpc::Status finish_status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;
      if (!broken_ && want_ != sent_) {
        writing_ = true;
        sent_ = want_;
        response_.set_status(want_);
        action = kWrite;
      } else if (finish_) {
        finished_ = true;
        action = kFinish;
        finish_status = broken_ ? grpc::Status::CANCELLED : grpc::Status::OK;
      }
    }
    if (action == kWrite) StartWrite(&response_);
    if (action == kFinish) Finish(finish_status);
  }

  const std::string service_;
  absl::Mutex mu_;
  ServingStatus want_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  // -1: nothing sent yet, so the first state is always written.
  int sent_ ABSL_GUARDED_BY(mu_) = -1;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  HealthCheckResponse response_;  // owned by the write in flight
  std::shared_ptr<Watcher> self_;
};

HealthService::HealthService(std::vector<std::string> models,
                             std::vector<std::string> server_services)
    : server_services_(server_services.begin(), server_services.end()) {
  for (std::string& m : models) serving_.emplace(std::move(m), false);
}

HealthService::~HealthService() = default;

void HealthService::Attach(HealthMonitor* monitor) {
  monitor->AddObserver([this](const HealthSnapshot& snapshot) {
    {
      absl::MutexLock lock(&mu_);
      for (const ModelHealth& m : snapshot.models)
        serving_[m.model] = m.serving;
      for (const auto& [name, kernels] : groups_) {
        size_t up = 0;
        for (const std::string& k : kernels) {
          for (const ModelHealth& m : snapshot.models) {
            if (m.model == k && m.serving) ++up;
          }
        }
        serving_[name] = !kernels.empty() && up == kernels.size();
      }
    }
    Broadcast(false);
  });
}

void HealthService::AddGroup(std::string name,
                             std::vector<std::string> kernels) {
  {
    absl::MutexLock lock(&mu_);
    serving_.emplace(name, false);
  }
  groups_.emplace(std::move(name), std::move(kernels));
}

void HealthService::SetServing(std::string_view model, bool serving) {
  {
    absl::MutexLock lock(&mu_);
    serving_[std::string(model)] = serving;
  }
  Broadcast(false);
}

void HealthService::SetDraining() {
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  Broadcast(false);
}

void HealthService::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    shutdown_ = true;
  }
  Broadcast(true);
}

HealthService::ServingStatus HealthService::StatusOf(
    std::string_view service) const {
  absl::MutexLock lock(&mu_);
  return StatusLocked(service);
}

HealthService::ServingStatus HealthService::StatusLocked(
    std::string_view service) const {
  bool serving;
  if (service.empty() || server_services_.contains(service)) {
    serving = !serving_.empty();
    for (const auto& [name, s] : serving_) serving &= s;
  } else {
    auto it = serving_.find(service);
    if (it == serving_.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
    serving = it->second;
  }
  return serving && !draining_ ? HealthCheckResponse::SERVING
                               : HealthCheckResponse::NOT_SERVING;
}

void HealthService::Broadcast(bool finish) {
  absl::MutexLock order(&broadcast_mu_);
  std::vector<std::pair<std::shared_ptr<Watcher>, ServingStatus>> targets;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::weak_ptr<Watcher>> alive;
    for (std::weak_ptr<Watcher>& weak : watchers_) {
      std::shared_ptr<Watcher> w = weak.lock();
      if (w == nullptr) continue;
      alive.push_back(weak);
      const ServingStatus status = StatusLocked(w->service());
      targets.emplace_back(std::move(w), status);
    }
    watchers_ = std::move(alive);
  }
  for (auto& [w, status] : targets) w->Update(status, finish);
}

grpc::ServerUnaryReactor* HealthService::Check(
    grpc::CallbackServerContext* context, const HealthCheckRequest* request,
    HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ServingStatus status;
  std::vector<std::string> known = {"'' (the whole server)"};
  for (const std::string& name : server_services_) {
    known.push_back("'" + name + "' (the whole server)");
  }
  {
    absl::MutexLock lock(&mu_);
    status = StatusLocked(request->service());
    for (const auto& [name, s] : serving_) known.push_back("'" + name + "'");
  }
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        fmt::format("unknown health service '{}'; this server reports {}",
                    request->service(), fmt::join(known, ", "))));
    return reactor;
  }
  response->set_status(status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext*, const HealthCheckRequest* request) {
  std::shared_ptr<Watcher> watcher = Watcher::Create(request->service());
  absl::MutexLock order(&broadcast_mu_);
  ServingStatus status;
  bool finish;
  {
    absl::MutexLock lock(&mu_);
    watchers_.push_back(watcher);
    status = StatusLocked(request->service());
    finish = shutdown_;
  }
  watcher->Update(status, finish);
  return watcher.get();
}

}  // namespace npuk
