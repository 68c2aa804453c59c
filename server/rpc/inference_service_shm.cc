// Triton's system shared-memory extension on the gRPC edge: register,
// unregister and list regions in the daemon's SharedMemoryRegistry
// (server/shm). Inference reads and writes the regions through
// tensor_mapping.cc.
#include <memory>
#include <utility>

#include "server/rpc/inference_service.h"
#include "server/rpc/tensor_mapping.h"

namespace npuk {
namespace {

grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

absl::Status NotEnabled() {
  return absl::UnimplementedError(
      "system shared memory is not enabled on this npukd; send tensors in "
      "the request (raw_input_contents)");
}

}  // namespace

grpc::ServerUnaryReactor* InferenceService::SystemSharedMemoryStatus(
    grpc::CallbackServerContext* ctx,
    const inference::SystemSharedMemoryStatusRequest* request,
    inference::SystemSharedMemoryStatusResponse* response) {
  if (shm_ == nullptr) return Answer(ctx, NotEnabled());
  absl::StatusOr<std::vector<shm::RegionStatus>> regions =
      shm_->Status(request->name());
  if (!regions.ok()) return Answer(ctx, regions.status());
  for (const shm::RegionStatus& r : *regions) {
    auto& out = (*response->mutable_regions())[r.name];
    out.set_name(r.name);
    out.set_key(r.key);
    out.set_offset(r.offset);
    out.set_byte_size(r.byte_size);
  }
  return Answer(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::SystemSharedMemoryRegister(
    grpc::CallbackServerContext* ctx,
    const inference::SystemSharedMemoryRegisterRequest* request,
    inference::SystemSharedMemoryRegisterResponse*) {
  if (shm_ == nullptr) return Answer(ctx, NotEnabled());
  return Answer(ctx, shm_->Register(request->name(), request->key(),
                                    request->offset(), request->byte_size()));
}

grpc::ServerUnaryReactor* InferenceService::SystemSharedMemoryUnregister(
    grpc::CallbackServerContext* ctx,
    const inference::SystemSharedMemoryUnregisterRequest* request,
    inference::SystemSharedMemoryUnregisterResponse*) {
  if (shm_ == nullptr) return Answer(ctx, NotEnabled());
  return Answer(ctx, shm_->Unregister(request->name()));
}

void InferenceService::StartHostInferWithSharedMemory(
    const ServedModel& model, const inference::ModelInferRequest& request,
    inference::ModelInferResponse* response, absl::Time deadline,
    std::shared_ptr<std::atomic<bool>> cancelled,
    absl::AnyInvocable<void(absl::Status) &&> finish) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<SharedMemoryRewrite>> rewrite =
      RewriteSharedMemory(request, shm_);
  if (!rewrite.ok()) {
    model.stats->RecordFailure(FailureReason::kOther, absl::Now() - start);
    std::move(finish)(rewrite.status());
    return;
  }
  // The rewritten request lives until the model has answered.
  std::shared_ptr<SharedMemoryRewrite> owned = *std::move(rewrite);
  const inference::ModelInferRequest* rewritten = &owned->request;
  model.host->Infer(*rewritten, response, deadline, std::move(cancelled),
                    [owned, response,
                     finish = std::move(finish)](absl::Status status) mutable {
                      if (status.ok()) {
                        status = DeliverSharedMemoryOutputs(*owned, response);
                        if (!status.ok()) response->Clear();
                      }
                      std::move(finish)(std::move(status));
                    });
}

}  // namespace npuk
