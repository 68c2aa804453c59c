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
#include "server/models/host_model.h"
#include "server/rpc/drain_gate.h"
#include "server/rpc/stream_reactor.h"
#include "server/shm/shm_registry.h"
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
  // A host model (server/models/host_model.h, e.g. log_mel): it answers
  // inference, metadata and config itself; `spec` only names it and
  // `batcher` is null, unless the model leaves some requests to a kernel
  // of the same name (HostModel::TakesRequest false): then `spec`,
  // `batcher` and `stats` serve those as for a kernel model.
  HostModel* host = nullptr;
};

grpc::Status ToGrpcStatus(const absl::Status& status);

// ModelInfer and ModelStreamInfer are registered raw (grpc::ByteBuffer in
// and out, RawModelInfer and RawModelStreamInfer): the service parses their
// requests itself (stream_reactor.h). Every other method is typed.
class InferenceService final
    : public inference::GRPCInferenceService::CallbackService {
 public:
  InferenceService(std::vector<ServedModel> models, std::string backend,
                   const ModelReadiness* readiness,
                   StreamLimits stream_limits = {});

  // From now on inference calls get UNAVAILABLE; accepted ones finish.
  // The UNAVAILABLE answers are held until ReleaseDrained() (drain_gate.h):
  // call that once grpc::Server::Shutdown has started.
  void SetDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  void ReleaseDrained() { drain_gate_.Release(); }
  // The drain's view of the inference calls (drain_gate.h): every reactor
  // reports its start and its end here.
  DrainGate& calls() { return drain_gate_; }

  // Validates, queues and answers one inference; `finish` is called exactly
  // once (synchronously when the request is refused). Used by the unary and
  // the streaming RPC. `request` and `response` must stay valid until
  // `finish` runs.
  void StartInfer(const inference::ModelInferRequest* request,
                  inference::ModelInferResponse* response, absl::Time deadline,
                  std::shared_ptr<std::atomic<bool>> cancelled,
                  absl::AnyInvocable<void(absl::Status) &&> finish);

  // The non-inference RPCs' logic, shared by the gRPC methods below and the
  // REST edge (server/http): each fills `response`, or returns the error
  // the call answers with (NOT_FOUND for an unknown model or version).
  absl::Status GetServerLive(const inference::ServerLiveRequest& request,
                             inference::ServerLiveResponse* response) const;
  absl::Status GetServerReady(const inference::ServerReadyRequest& request,
                              inference::ServerReadyResponse* response) const;
  absl::Status GetModelReady(const inference::ModelReadyRequest& request,
                             inference::ModelReadyResponse* response) const;
  absl::Status GetServerMetadata(
      const inference::ServerMetadataRequest& request,
      inference::ServerMetadataResponse* response) const;
  absl::Status GetModelMetadata(
      const inference::ModelMetadataRequest& request,
      inference::ModelMetadataResponse* response) const;
  absl::Status GetModelConfig(const inference::ModelConfigRequest& request,
                              inference::ModelConfigResponse* response) const;
  absl::Status GetModelStatistics(
      const inference::ModelStatisticsRequest& request,
      inference::ModelStatisticsResponse* response) const;
  absl::Status GetRepositoryIndex(
      const inference::RepositoryIndexRequest& request,
      inference::RepositoryIndexResponse* response) const;

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
  // The handlers of ModelInfer and ModelStreamInfer (raw; the typed
  // overrides are never called): parsed by the reactors in
  // stream_reactor.cc, then StartInfer.
  grpc::ServerUnaryReactor* RawModelInfer(grpc::CallbackServerContext* ctx,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response);
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
  RawModelStreamInfer(grpc::CallbackServerContext* ctx);

  // Bytes all ModelStreamInfer streams hold now (requests being answered,
  // answers not yet written), against StreamLimits::per_process.
  int64_t stream_bytes_in_flight() const { return stream_budget_.used(); }

  // Triton's system shared-memory extension (inference_service_shm.cc).
  // Set before the server starts; without it, tensors naming a region are
  // refused and the three RPCs answer UNIMPLEMENTED. Not owned.
  void SetSharedMemory(shm::SharedMemoryRegistry* registry) { shm_ = registry; }
  shm::SharedMemoryRegistry* shared_memory() const { return shm_; }
  grpc::ServerUnaryReactor* SystemSharedMemoryStatus(
      grpc::CallbackServerContext* ctx,
      const inference::SystemSharedMemoryStatusRequest* request,
      inference::SystemSharedMemoryStatusResponse* response) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryRegister(
      grpc::CallbackServerContext* ctx,
      const inference::SystemSharedMemoryRegisterRequest* request,
      inference::SystemSharedMemoryRegisterResponse* response) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryUnregister(
      grpc::CallbackServerContext* ctx,
      const inference::SystemSharedMemoryUnregisterRequest* request,
      inference::SystemSharedMemoryUnregisterResponse* response) override;

  // Triton RPCs npukd does not serve: UNIMPLEMENTED with what to use
  // instead (inference_service_unsupported.cc).
  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* ctx,
      const inference::RepositoryModelLoadRequest* request,
      inference::RepositoryModelLoadResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* ctx,
      const inference::RepositoryModelUnloadRequest* request,
      inference::RepositoryModelUnloadResponse* response) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryStatus(
      grpc::CallbackServerContext* ctx,
      const inference::CudaSharedMemoryStatusRequest* request,
      inference::CudaSharedMemoryStatusResponse* response) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryRegister(
      grpc::CallbackServerContext* ctx,
      const inference::CudaSharedMemoryRegisterRequest* request,
      inference::CudaSharedMemoryRegisterResponse* response) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryUnregister(
      grpc::CallbackServerContext* ctx,
      const inference::CudaSharedMemoryUnregisterRequest* request,
      inference::CudaSharedMemoryUnregisterResponse* response) override;
  grpc::ServerUnaryReactor* TraceSetting(
      grpc::CallbackServerContext* ctx,
      const inference::TraceSettingRequest* request,
      inference::TraceSettingResponse* response) override;
  grpc::ServerUnaryReactor* LogSettings(
      grpc::CallbackServerContext* ctx,
      const inference::LogSettingsRequest* request,
      inference::LogSettingsResponse* response) override;

 private:
  // nullptr plus NOT_FOUND (naming the known models) when unknown.
  const ServedModel* Find(const std::string& name, absl::Status* error) const;
  // Model (and version) lookup for the metadata RPCs.
  const ServedModel* FindVersioned(const std::string& name,
                                   const std::string& version,
                                   absl::Status* error) const;

  const std::vector<ServedModel> models_;
  const std::string backend_;
  // StartInfer for a host model when tensors are in shared memory.
  void StartHostInferWithSharedMemory(
      const ServedModel& model, const inference::ModelInferRequest& request,
      inference::ModelInferResponse* response, absl::Time deadline,
      std::shared_ptr<std::atomic<bool>> cancelled,
      absl::AnyInvocable<void(absl::Status) &&> finish);

  const ModelReadiness* const readiness_;
  shm::SharedMemoryRegistry* shm_ = nullptr;
  const StreamLimits stream_limits_;
  StreamBudget stream_budget_;
  std::atomic<bool> draining_{false};
  DrainGate drain_gate_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_INFERENCE_SERVICE_H_
