// The RPCs of Triton's GRPCInferenceService that npukd declares but does not
// serve. Each answers UNIMPLEMENTED with a message naming what is not
// supported and what to use instead, rather than gRPC's empty default.
#include "server/rpc/inference_service.h"

namespace npuk {
namespace {

grpc::ServerUnaryReactor* Unsupported(grpc::CallbackServerContext* ctx,
                                      const char* message) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, message));
  return reactor;
}

constexpr char kRepositoryLoad[] =
    "RepositoryModelLoad is not supported: npukd has no model repository to "
    "load from; its models are the kernels built into it (RepositoryIndex "
    "lists them, all loaded at start-up). To serve or stop serving one, set "
    "`enabled` in its models { } entry of the config file and restart npukd";
constexpr char kRepositoryUnload[] =
    "RepositoryModelUnload is not supported: npukd's models are the kernels "
    "built into it and stay loaded while it runs. To stop serving one, set "
    "`enabled: false` in its models { } entry of the config file and restart "
    "npukd";
constexpr char kCudaShm[] =
    "CUDA shared memory is not supported: npukd runs on an AMD NPU or the "
    "CPU and has no CUDA device. Pass tensors in the request "
    "(raw_input_contents) or through system shared memory "
    "(SystemSharedMemoryRegister)";
constexpr char kTrace[] =
    "TraceSetting is not supported: npukd has no request tracing. Every "
    "response carries its queue and compute time as parameters, "
    "ModelStatistics has the totals and --metrics=HOST:PORT serves them to "
    "Prometheus";
constexpr char kLog[] =
    "LogSettings is not supported: npukd's log level is set at start-up. "
    "Restart it with --log_level=trace|debug|info|warn|error";

}  // namespace

grpc::ServerUnaryReactor* InferenceService::RepositoryModelLoad(
    grpc::CallbackServerContext* ctx,
    const inference::RepositoryModelLoadRequest*,
    inference::RepositoryModelLoadResponse*) {
  return Unsupported(ctx, kRepositoryLoad);
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelUnload(
    grpc::CallbackServerContext* ctx,
    const inference::RepositoryModelUnloadRequest*,
    inference::RepositoryModelUnloadResponse*) {
  return Unsupported(ctx, kRepositoryUnload);
}

grpc::ServerUnaryReactor* InferenceService::CudaSharedMemoryStatus(
    grpc::CallbackServerContext* ctx,
    const inference::CudaSharedMemoryStatusRequest*,
    inference::CudaSharedMemoryStatusResponse*) {
  return Unsupported(ctx, kCudaShm);
}

grpc::ServerUnaryReactor* InferenceService::CudaSharedMemoryRegister(
    grpc::CallbackServerContext* ctx,
    const inference::CudaSharedMemoryRegisterRequest*,
    inference::CudaSharedMemoryRegisterResponse*) {
  return Unsupported(ctx, kCudaShm);
}

grpc::ServerUnaryReactor* InferenceService::CudaSharedMemoryUnregister(
    grpc::CallbackServerContext* ctx,
    const inference::CudaSharedMemoryUnregisterRequest*,
    inference::CudaSharedMemoryUnregisterResponse*) {
  return Unsupported(ctx, kCudaShm);
}

grpc::ServerUnaryReactor* InferenceService::TraceSetting(
    grpc::CallbackServerContext* ctx, const inference::TraceSettingRequest*,
    inference::TraceSettingResponse*) {
  return Unsupported(ctx, kTrace);
}

grpc::ServerUnaryReactor* InferenceService::LogSettings(
    grpc::CallbackServerContext* ctx, const inference::LogSettingsRequest*,
    inference::LogSettingsResponse*) {
  return Unsupported(ctx, kLog);
}

}  // namespace npuk
