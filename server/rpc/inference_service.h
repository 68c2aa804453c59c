// inference.GRPCInferenceService (KServe v2 / Triton) on the callback API.
// This is the only place absl::Status becomes grpc::Status.
#ifndef NPUK_SERVER_RPC_INFERENCE_SERVICE_H_
#define NPUK_SERVER_RPC_INFERENCE_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "config.pb.h"
#include "grpc_service.grpc.pb.h"
#include "kernels/registry/kernel_spec.h"
#include "server/batching/batcher.h"
#include "server/telemetry/model_stats.h"

namespace npuk {

// What the health layer says about a model; consulted on every request.
class ModelReadiness {
 public:
  virtual ~ModelReadiness() = default;
  virtual bool IsServing(std::string_view model) const = 0;
};

// One model as served: its kernel declaration, its queue, its counters, its
// settings. The service does not own any of them; they outlive the service.
struct ServedModel {
  const KernelSpec* spec;
  Batcher* batcher;
  ModelStats* stats;
  config::ModelSettings settings;  // with defaults filled in
};

grpc::Status ToGrpcStatus(const absl::Status& status);

class InferenceService final
    : public inference::GRPCInferenceService::CallbackService {
 public:
  InferenceService(std::vector<ServedModel> models, std::string backend,
                   const ModelReadiness* readiness);

  // From now on inference calls get UNAVAILABLE; accepted ones finish.
  void SetDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // Validates, queues and answers one inference; `finish` is called exactly
  // once (synchronously when the request is refused). Used by the unary and
  // the streaming RPC. `request` and `response` must stay valid until
  // `finish` runs.
  void StartInfer(const inference::ModelInferRequest* request,
                  inference::ModelInferResponse* response, absl::Time deadline,
                  std::shared_ptr<std::atomic<bool>> cancelled,
                  absl::AnyInvocable<void(absl::Status) &&> finish);

  grpc::ServerUnaryReactor* ServerLive(
      grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
      inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
      inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(
      grpc::CallbackServerContext* ctx,
      const inference::ModelReadyRequest* request,
      inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
      inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* ctx,
      const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelConfig(
      grpc::CallbackServerContext* ctx,
      const inference::ModelConfigRequest* request,
      inference::ModelConfigResponse* response) override;
  grpc::ServerUnaryReactor* ModelStatistics(
      grpc::CallbackServerContext* ctx,
      const inference::ModelStatisticsRequest* request,
      inference::ModelStatisticsResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryIndex(
      grpc::CallbackServerContext* ctx,
      const inference::RepositoryIndexRequest* request,
      inference::RepositoryIndexResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(
      grpc::CallbackServerContext* ctx,
      const inference::ModelInferRequest* request,
      inference::ModelInferResponse* response) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest,
                          inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext* ctx) override;

 private:
  // nullptr plus NOT_FOUND (naming the known models) when unknown.
  const ServedModel* Find(const std::string& name, absl::Status* error) const;
  // Model (and version) lookup for the metadata RPCs.
  const ServedModel* FindVersioned(const std::string& name,
                                   const std::string& version,
                                   absl::Status* error) const;

  const std::vector<ServedModel> models_;
  const std::string backend_;
  const ModelReadiness* const readiness_;
  std::atomic<bool> draining_{false};
};

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_INFERENCE_SERVICE_H_
