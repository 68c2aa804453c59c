// grpc.health.v1.Health (proto/health.proto) backed by the health monitor,
// for Kubernetes gRPC probes, client-side health checking (round_robin with
// healthCheckConfig) and any standard health client.
//
// Services: "" is SERVING while every model is, and so is each of the
// server-wide names given to the constructor (the daemon gives
// "inference.GRPCInferenceService"); each model's name is SERVING while that
// model's canary passes. Any
// other name: Check answers NOT_FOUND, Watch sends SERVICE_UNKNOWN (the gRPC
// health spec). While draining everything is NOT_SERVING.
//
// Usage (daemon):
//   HealthService health(monitor.model_names());
//   health.Attach(&monitor);          // before monitor.RunInitialCanaries()
//   builder.RegisterService(&health); // do not also enable gRPC's default
//                                     // health service
//   ... on SIGTERM: health.SetDraining(); ... drain ...
//   health.Shutdown();                // ends Watch streams, then
//   server->Shutdown(deadline);       // (Shutdown waits for open streams)
// Destroy after the server and after monitor.Stop() (the monitor's observer
// points here) and after the batchers (the zero guard reports through it).
//
// Thread safety: every method may be called from any thread.
#ifndef NPUK_SERVER_HEALTH_HEALTH_SERVICE_H_
#define NPUK_SERVER_HEALTH_HEALTH_SERVICE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "health.grpc.pb.h"
#include "server/health/health_monitor.h"

namespace npuk {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // Every model starts NOT_SERVING. `server_services` answer as "" does.
  explicit HealthService(std::vector<std::string> models,
                         std::vector<std::string> server_services = {});
  ~HealthService() override;

  // Follows `monitor` from now on (not owned; see lifetime above).
  void Attach(HealthMonitor* monitor);
  // A served name whose state is "every one of `kernels` is serving" (a
  // host model such as log_mel; it may share a kernel's name, as the
  // attention model does). Attach keeps it up to date with the kernels.
  // REQUIRES: before Attach.
  void AddGroup(std::string name, std::vector<std::string> kernels);
  // Sets one model's state (Attach does this from the monitor's snapshots).
  void SetServing(std::string_view model, bool serving);
  // Everything NOT_SERVING from now on; watchers are told at once.
  void SetDraining();
  // Sends the final state to every Watch and ends it with OK; later Watch
  // calls end at once. Implies SetDraining().
  void Shutdown();

  // What Check would answer; SERVICE_UNKNOWN for unknown names.
  ServingStatus StatusOf(std::string_view service) const;

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class Watcher;

  ServingStatus StatusLocked(std::string_view service) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pushes the current states to every watcher, in order.
  void Broadcast(bool finish) ABSL_LOCKS_EXCLUDED(mu_);

  // Held while watchers are updated so they see states in order; never
  // held by gRPC reactions.
  absl::Mutex broadcast_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, bool, std::less<>> serving_ ABSL_GUARDED_BY(mu_);
  // AddGroup's, read by the monitor's observer (set before Attach).
  std::map<std::string, std::vector<std::string>> groups_;
  const std::set<std::string, std::less<>> server_services_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::weak_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace npuk

#endif  // NPUK_SERVER_HEALTH_HEALTH_SERVICE_H_
