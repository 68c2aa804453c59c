#include "server/rpc/inference_service.h"

#include <chrono>
#include <deque>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "npuk_version.h"
#include "server/common/quote.h"
#include "server/rpc/tensor_mapping.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

constexpr const char* kServerVersion = kVersion;  // npuk_version.h

// Triton's ModelConfig data type for a wire dtype.
inference::DataType ConfigDataType(DType t) {
  switch (t) {
    case DType::kInt8:
      return inference::TYPE_INT8;
    case DType::kInt16:
      return inference::TYPE_INT16;
    case DType::kInt32:
      return inference::TYPE_INT32;
    case DType::kFp32:
      return inference::TYPE_FP32;
  }
  return inference::TYPE_INVALID;
}

// "request parameter (double), default 0.125; <doc>" for ModelConfig.
std::string DescribeParameter(const ParamDecl& p) {
  const char* type = p.type == ParamType::kDouble  ? "double"
                     : p.type == ParamType::kInt64 ? "int64"
                                                   : "bool";
  const std::string value = std::visit(
      [](auto v) -> std::string {
        if constexpr (std::is_same_v<decltype(v), bool>) {
          return v ? "true" : "false";
        } else {
          return absl::StrCat(v);
        }
      },
      p.default_value);
  return absl::StrCat("request parameter (", type, "), default ", value, "; ",
                      p.doc);
}

void SetInt(ModelInferResponse* r, const char* key, int64_t v) {
  (*r->mutable_parameters())[key].set_int64_param(v);
}

// The index gRPC's generated service gives `method`: its position in the
// proto's service declaration.
int MethodIndex(const char* method) {
  const google::protobuf::MethodDescriptor* m =
      inference::ModelInferRequest::descriptor()
          ->file()
          ->FindServiceByName("GRPCInferenceService")
          ->FindMethodByName(method);
  return m->index();
}

// A unary call that finishes at once.
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx,
                                const absl::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

InferenceService::InferenceService(std::vector<ServedModel> models,
                                   std::string backend,
                                   const ModelReadiness* readiness,
                                   StreamLimits stream_limits)
    : models_(std::move(models)),
      backend_(std::move(backend)),
      readiness_(readiness),
      stream_limits_(stream_limits),
      stream_budget_(stream_limits.per_process) {
  // The generated WithRawCallbackMethod_ModelStreamInfer cannot be stacked
  // on CallbackService (its reactor type clashes with the typed one), so
  // both methods are re-registered raw here, by their index in the service.
  MarkMethodRawCallback(
      MethodIndex("ModelInfer"),
      new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer,
                                               grpc::ByteBuffer>(
          [this](grpc::CallbackServerContext* ctx,
                 const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
            return RawModelInfer(ctx, request, response);
          }));
  MarkMethodRawCallback(
      MethodIndex("ModelStreamInfer"),
      new grpc::internal::CallbackBidiHandler<grpc::ByteBuffer,
                                              grpc::ByteBuffer>(
          [this](grpc::CallbackServerContext* ctx) {
            return RawModelStreamInfer(ctx);
          }));
}

const ServedModel* InferenceService::Find(const std::string& name,
                                          absl::Status* error) const {
  for (const ServedModel& m : models_) {
    if (name == m.spec->name) return &m;
  }
  std::vector<std::string> names;
  for (const ServedModel& m : models_) names.push_back(m.spec->name);
  *error = absl::NotFoundError(
      absl::StrCat("unknown model ", QuoteBounded(name),
                   "; this server serves: ", absl::StrJoin(names, ", ")));
  return nullptr;
}

const ServedModel* InferenceService::FindVersioned(const std::string& name,
                                                   const std::string& version,
                                                   absl::Status* error) const {
  const ServedModel* m = Find(name, error);
  if (m != nullptr && !version.empty() && version != "1") {
    *error = absl::NotFoundError(
        absl::StrCat("model '", m->spec->name, "' has no version ",
                     QuoteBounded(version), "; it has only 1"));
    return nullptr;
  }
  return m;
}

void InferenceService::StartInfer(
    const ModelInferRequest* request, ModelInferResponse* response,
    absl::Time deadline, std::shared_ptr<std::atomic<bool>> cancelled,
    absl::AnyInvocable<void(absl::Status) &&> finish) {
  const absl::Time start = absl::Now();
  absl::Status error;
  const ServedModel* model = Find(request->model_name(), &error);
  if (draining()) {
    // Answered once the server has sent GOAWAY (drain_gate.h): never
    // CANCELLED by the shutdown. An unknown model is refused the same way:
    // any answer before the GOAWAY would let the client's next call race
    // the shutdown.
    drain_gate_.Hold([model, start, finish = std::move(finish)]() mutable {
      absl::Status s = absl::UnavailableError(
          "npukd is shutting down and accepts no new requests; retry on "
          "another replica or after restart");
      if (model != nullptr) {
        model->stats->RecordFailure(FailureReasonOf(s), absl::Now() - start);
      }
      std::move(finish)(std::move(s));
    });
    return;
  }
  if (model == nullptr) {
    std::move(finish)(std::move(error));
    return;
  }
  auto fail = [&](absl::Status s) {
    model->stats->RecordFailure(FailureReasonOf(s), absl::Now() - start);
    std::move(finish)(std::move(s));
  };
  if (readiness_ != nullptr && !readiness_->IsServing(model->spec->name)) {
    fail(absl::UnavailableError(absl::StrCat(
        "model '", model->spec->name,
        "' is NOT_SERVING: its health canary is failing (see the daemon log "
        "and `npukctl health`); retry later or on another replica")));
    return;
  }
  if (model->host != nullptr && model->host->TakesRequest(*request)) {
    if (UsesSharedMemory(*request)) {  // inference_service_shm.cc
      StartHostInferWithSharedMemory(*model, *request, response, deadline,
                                     std::move(cancelled), std::move(finish));
      return;
    }
    model->host->Infer(*request, response, deadline, std::move(cancelled),
                       std::move(finish));
    return;
  }
  absl::StatusOr<MappedRequest> mapped = MapRequest(
      *model->spec, *request, model->settings.max_batch_frames(), shm_);
  if (!mapped.ok()) {
    fail(mapped.status());
    return;
  }
  if (mapped->queue_timeout.has_value()) {
    deadline = std::min(deadline, start + *mapped->queue_timeout);
  }
  // The planes' typed-contents and parameter buffers must live until the
  // run copied them; moving the MappedRequest keeps its spans valid.
  auto owned = std::make_shared<MappedRequest>(*std::move(mapped));
  auto task = std::make_unique<InferTask>();
  task->items = owned->items;
  task->inputs = owned->planes;
  task->deadline = deadline;
  task->cancelled = std::move(cancelled);
  task->output = PrepareResponse(*model->spec, *request, owned->items, response,
                                 owned.get());
  // Shared so that a refused Submit (which destroys the task and its done
  // without calling it) can still answer through the same path.
  auto answer = std::make_shared<absl::AnyInvocable<void(absl::Status) &&>>(
      std::move(finish));
  task->done = [this, model, response, start, owned, answer](
                   absl::Status status, const TaskTiming& t) mutable {
    if (status.ok()) status = WriteSharedMemoryOutput(*model->spec, *owned);
    const absl::Time end = absl::Now();
    if (status.ok()) {
      SetInt(response, "queue_us", absl::ToInt64Microseconds(t.queue));
      SetInt(response, "compute_us", absl::ToInt64Microseconds(t.compute));
      SetInt(response, "server_us", absl::ToInt64Microseconds(end - start));
      SetInt(response, "batch_frames", static_cast<int64_t>(t.batch_items));
      (*response->mutable_parameters())["backend"].set_string_param(backend_);
      model->stats->RecordSuccess(0, t.queue, t.compute, end - start);
    } else {
      response->Clear();
      model->stats->RecordFailure(FailureReasonOf(status), end - start);
    }
    owned.reset();
    std::move (*answer)(std::move(status));
  };
  absl::Status submitted = model->batcher->Submit(std::move(task));
  if (!submitted.ok()) {
    response->Clear();
    model->stats->RecordFailure(FailureReasonOf(submitted),
                                absl::Now() - start);
    std::move (*answer)(std::move(submitted));
  }
}

grpc::ServerUnaryReactor* InferenceService::RawModelInfer(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return StartUnaryInfer(this, ctx, request, response);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
InferenceService::RawModelStreamInfer(grpc::CallbackServerContext* ctx) {
  return StartStreamInfer(this, ctx, &stream_budget_,
                          stream_limits_.per_stream);
}

// The non-inference RPCs: the logic is shared with the REST edge
// (server/http); the gRPC methods only answer with it.

absl::Status InferenceService::GetServerLive(
    const inference::ServerLiveRequest&,
    inference::ServerLiveResponse* response) const {
  response->set_live(true);
  return absl::OkStatus();
}

absl::Status InferenceService::GetServerReady(
    const inference::ServerReadyRequest&,
    inference::ServerReadyResponse* response) const {
  bool ready = !draining();
  for (const ServedModel& m : models_) {
    if (readiness_ != nullptr && !readiness_->IsServing(m.spec->name)) {
      ready = false;
    }
  }
  response->set_ready(ready);
  return absl::OkStatus();
}

absl::Status InferenceService::GetModelReady(
    const inference::ModelReadyRequest& request,
    inference::ModelReadyResponse* response) const {
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request.name(), request.version(), &error);
  if (m == nullptr) return error;
  response->set_ready(!draining() && (readiness_ == nullptr ||
                                      readiness_->IsServing(m->spec->name)));
  return absl::OkStatus();
}

absl::Status InferenceService::GetServerMetadata(
    const inference::ServerMetadataRequest&,
    inference::ServerMetadataResponse* response) const {
  response->set_name("npukd");
  response->set_version(kServerVersion);
  for (const char* e : {"model_configuration", "statistics", "parameters"}) {
    response->add_extensions(e);
  }
  if (shm_ != nullptr) response->add_extensions("system_shared_memory");
  return absl::OkStatus();
}

absl::Status InferenceService::GetModelMetadata(
    const inference::ModelMetadataRequest& request,
    inference::ModelMetadataResponse* response) const {
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request.name(), request.version(), &error);
  if (m == nullptr) return error;
  if (m->host != nullptr) {
    m->host->Metadata(response);
    return absl::OkStatus();
  }
  response->set_name(m->spec->name);
  response->add_versions("1");
  response->set_platform(absl::StrCat("npukd_", backend_));
  auto add = [](auto* t, const TensorDecl& decl) {
    t->set_name(decl.name);
    t->set_datatype(DTypeName(decl.dtype));
    t->add_shape(-1);
    for (int64_t d : decl.item_dims) t->add_shape(d);
  };
  for (const TensorDecl& in : m->spec->inputs) add(response->add_inputs(), in);
  add(response->add_outputs(), m->spec->output);
  return absl::OkStatus();
}

absl::Status InferenceService::GetModelConfig(
    const inference::ModelConfigRequest& request,
    inference::ModelConfigResponse* response) const {
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request.name(), request.version(), &error);
  if (m == nullptr) return error;
  auto* c = response->mutable_config();
  if (m->host != nullptr) {
    m->host->Config(c);
    return absl::OkStatus();
  }
  c->set_name(m->spec->name);
  c->set_platform(absl::StrCat("npukd_", backend_));
  c->set_backend(backend_);
  // Triton semantics: max_batch_size > 0 adds the implicit leading N, and
  // dims are the per-item dims.
  c->set_max_batch_size(static_cast<int32_t>(m->settings.max_batch_frames()));
  for (const TensorDecl& in : m->spec->inputs) {
    auto* i = c->add_input();
    i->set_name(in.name);
    i->set_data_type(ConfigDataType(in.dtype));
    for (int64_t d : in.item_dims) i->add_dims(d);
  }
  auto* o = c->add_output();
  o->set_name(m->spec->output.name);
  o->set_data_type(ConfigDataType(m->spec->output.dtype));
  for (int64_t d : m->spec->output.item_dims) o->add_dims(d);
  auto* g = c->add_instance_group();
  g->set_count(static_cast<int32_t>(m->settings.instances()));
  g->set_kind(backend_ == "cpu" ? inference::ModelInstanceGroup::KIND_CPU
                                : inference::ModelInstanceGroup::KIND_MODEL);
  auto* b = c->mutable_dynamic_batching();
  b->set_max_queue_delay_microseconds(m->settings.max_queue_delay_us());
  b->mutable_default_queue_policy()->set_max_queue_size(
      m->settings.max_queue_size());
  for (const ParamDecl& p : m->spec->params) {
    (*c->mutable_parameters())[p.name].set_string_value(DescribeParameter(p));
  }
  return absl::OkStatus();
}

absl::Status InferenceService::GetModelStatistics(
    const inference::ModelStatisticsRequest& request,
    inference::ModelStatisticsResponse* response) const {
  if (request.name().empty()) {
    for (const ServedModel& m : models_) {
      m.stats->Snapshot(response->add_model_stats());
    }
    return absl::OkStatus();
  }
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request.name(), request.version(), &error);
  if (m == nullptr) return error;
  m->stats->Snapshot(response->add_model_stats());
  return absl::OkStatus();
}

absl::Status InferenceService::GetRepositoryIndex(
    const inference::RepositoryIndexRequest& request,
    inference::RepositoryIndexResponse* response) const {
  for (const ServedModel& m : models_) {
    const bool serving =
        readiness_ == nullptr || readiness_->IsServing(m.spec->name);
    if (request.ready() && !serving) continue;
    auto* idx = response->add_models();
    idx->set_name(m.spec->name);
    idx->set_version("1");
    idx->set_state(serving ? "READY" : "UNAVAILABLE");
    if (!serving) idx->set_reason("health canary failing");
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* InferenceService::ServerLive(
    grpc::CallbackServerContext* ctx,
    const inference::ServerLiveRequest* request,
    inference::ServerLiveResponse* response) {
  return Reply(ctx, GetServerLive(*request, response));
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(
    grpc::CallbackServerContext* ctx,
    const inference::ServerReadyRequest* request,
    inference::ServerReadyResponse* response) {
  return Reply(ctx, GetServerReady(*request, response));
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(
    grpc::CallbackServerContext* ctx,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  return Reply(ctx, GetModelReady(*request, response));
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    grpc::CallbackServerContext* ctx,
    const inference::ServerMetadataRequest* request,
    inference::ServerMetadataResponse* response) {
  return Reply(ctx, GetServerMetadata(*request, response));
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    grpc::CallbackServerContext* ctx,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  return Reply(ctx, GetModelMetadata(*request, response));
}

grpc::ServerUnaryReactor* InferenceService::ModelConfig(
    grpc::CallbackServerContext* ctx,
    const inference::ModelConfigRequest* request,
    inference::ModelConfigResponse* response) {
  return Reply(ctx, GetModelConfig(*request, response));
}

grpc::ServerUnaryReactor* InferenceService::ModelStatistics(
    grpc::CallbackServerContext* ctx,
    const inference::ModelStatisticsRequest* request,
    inference::ModelStatisticsResponse* response) {
  return Reply(ctx, GetModelStatistics(*request, response));
}

grpc::ServerUnaryReactor* InferenceService::RepositoryIndex(
    grpc::CallbackServerContext* ctx,
    const inference::RepositoryIndexRequest* request,
    inference::RepositoryIndexResponse* response) {
  return Reply(ctx, GetRepositoryIndex(*request, response));
}

}  // namespace npuk
