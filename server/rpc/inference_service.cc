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
#include "server/rpc/tensor_mapping.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

constexpr const char* kServerVersion = "0.1.0";

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

FailureReason ReasonOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kResourceExhausted:
      return FailureReason::kRejected;
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
      return FailureReason::kCanceled;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kInternal:
      return FailureReason::kBackend;
    default:
      return FailureReason::kOther;
  }
}

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(d);
}

void SetInt(ModelInferResponse* r, const char* key, int64_t v) {
  (*r->mutable_parameters())[key].set_int64_param(v);
}

// A unary call that finishes at once.
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx,
                                const absl::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

class UnaryInfer final : public grpc::ServerUnaryReactor {
 public:
  UnaryInfer() : cancelled_(std::make_shared<std::atomic<bool>>(false)) {}
  const std::shared_ptr<std::atomic<bool>>& cancelled() const {
    return cancelled_;
  }
  void OnCancel() override { cancelled_->store(true); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

// Bidirectional stream: every request read is started at once; responses
// are written in completion order, one write outstanding at a time. The
// stream finishes when the client half-closed, every request was answered
// and every answer written.
class StreamInfer final
    : public grpc::ServerBidiReactor<ModelInferRequest,
                                     ModelStreamInferResponse> {
 public:
  StreamInfer(InferenceService* service, grpc::CallbackServerContext* ctx)
      : service_(service),
        ctx_(ctx),
        cancelled_(std::make_shared<std::atomic<bool>>(false)) {
    Pending* next;
    {
      absl::MutexLock lock(&mu_);
      next_ = std::make_unique<Pending>();
      next = next_.get();
    }
    StartRead(&next->request);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    Pending* p;
    Pending* next;
    {
      // gRPC orders consecutive OnReadDone calls, but inside its own
      // (uninstrumented) code; taking mu_ makes the hand-over visible to
      // ThreadSanitizer too.
      absl::MutexLock lock(&mu_);
      ++in_flight_;
      p = next_.release();
      next_ = std::make_unique<Pending>();
      next = next_.get();
    }
    StartRead(&next->request);
    service_->StartInfer(
        &p->request, p->response.mutable_infer_response(), DeadlineOf(ctx_),
        cancelled_, [this, p](absl::Status status) {
          if (!status.ok()) {
            p->response.set_error_message(std::string(status.message()));
            p->response.mutable_infer_response()->Clear();
            p->response.mutable_infer_response()->set_id(p->request.id());
            p->response.mutable_infer_response()->set_model_name(
                p->request.model_name());
          }
          absl::MutexLock lock(&mu_);
          --in_flight_;
          if (write_failed_) {  // the client is gone; drop the answer
            delete p;
            MaybeFinishLocked();
            return;
          }
          writes_.emplace_back(p);
          if (!writing_) {
            writing_ = true;
            StartWrite(&writes_.front()->response);
          }
        });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writes_.pop_front();
    if (!ok) write_failed_ = true;
    if (!writes_.empty() && !write_failed_) {
      StartWrite(&writes_.front()->response);
      return;
    }
    writing_ = false;
    if (write_failed_) writes_.clear();
    MaybeFinishLocked();
  }

  void OnCancel() override { cancelled_->store(true); }
  void OnDone() override { delete this; }

 private:
  struct Pending {
    ModelInferRequest request;
    ModelStreamInferResponse response;
  };

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || in_flight_ > 0 || writing_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  InferenceService* const service_;
  grpc::CallbackServerContext* const ctx_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  std::unique_ptr<Pending> next_ ABSL_GUARDED_BY(mu_);  // the read target

  absl::Mutex mu_;
  std::deque<std::unique_ptr<Pending>> writes_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

InferenceService::InferenceService(std::vector<ServedModel> models,
                                   std::string backend,
                                   const ModelReadiness* readiness)
    : models_(std::move(models)),
      backend_(std::move(backend)),
      readiness_(readiness) {}

const ServedModel* InferenceService::Find(const std::string& name,
                                          absl::Status* error) const {
  for (const ServedModel& m : models_) {
    if (name == m.spec->name) return &m;
  }
  std::vector<std::string> names;
  for (const ServedModel& m : models_) names.push_back(m.spec->name);
  *error = absl::NotFoundError(
      absl::StrCat("unknown model '", name,
                   "'; this server serves: ", absl::StrJoin(names, ", ")));
  return nullptr;
}

const ServedModel* InferenceService::FindVersioned(const std::string& name,
                                                   const std::string& version,
                                                   absl::Status* error) const {
  const ServedModel* m = Find(name, error);
  if (m != nullptr && !version.empty() && version != "1") {
    *error = absl::NotFoundError(absl::StrCat(
        "model '", name, "' has no version '", version, "'; it has only 1"));
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
  if (model == nullptr) {
    std::move(finish)(std::move(error));
    return;
  }
  auto fail = [&](absl::Status s) {
    model->stats->RecordFailure(ReasonOf(s), absl::Now() - start);
    std::move(finish)(std::move(s));
  };
  if (draining()) {
    fail(absl::UnavailableError(
        "npukd is shutting down and accepts no new requests; retry on "
        "another replica or after restart"));
    return;
  }
  if (readiness_ != nullptr && !readiness_->IsServing(model->spec->name)) {
    fail(absl::UnavailableError(absl::StrCat(
        "model '", model->spec->name,
        "' is NOT_SERVING: its health canary is failing (see the daemon log "
        "and `npukctl health`); retry later or on another replica")));
    return;
  }
  absl::StatusOr<MappedRequest> mapped =
      MapRequest(*model->spec, *request, model->settings.max_batch_frames());
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
  task->output =
      PrepareResponse(*model->spec, *request, owned->items, response);
  // Shared so that a refused Submit (which destroys the task and its done
  // without calling it) can still answer through the same path.
  auto answer = std::make_shared<absl::AnyInvocable<void(absl::Status) &&>>(
      std::move(finish));
  task->done = [this, model, response, start, owned, answer](
                   absl::Status status, const TaskTiming& t) mutable {
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
      model->stats->RecordFailure(ReasonOf(status), end - start);
    }
    owned.reset();
    std::move (*answer)(std::move(status));
  };
  absl::Status submitted = model->batcher->Submit(std::move(task));
  if (!submitted.ok()) {
    response->Clear();
    model->stats->RecordFailure(ReasonOf(submitted), absl::Now() - start);
    std::move (*answer)(std::move(submitted));
  }
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(
    grpc::CallbackServerContext* ctx, const ModelInferRequest* request,
    ModelInferResponse* response) {
  auto* reactor = new UnaryInfer();
  StartInfer(request, response, DeadlineOf(ctx), reactor->cancelled(),
             [reactor](absl::Status status) {
               reactor->Finish(ToGrpcStatus(status));
             });
  return reactor;
}

grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>*
InferenceService::ModelStreamInfer(grpc::CallbackServerContext* ctx) {
  return new StreamInfer(this, ctx);
}

grpc::ServerUnaryReactor* InferenceService::ServerLive(
    grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  response->set_live(true);
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(
    grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  bool ready = !draining();
  for (const ServedModel& m : models_) {
    if (readiness_ != nullptr && !readiness_->IsServing(m.spec->name)) {
      ready = false;
    }
  }
  response->set_ready(ready);
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(
    grpc::CallbackServerContext* ctx,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request->name(), request->version(), &error);
  if (m == nullptr) return Reply(ctx, error);
  response->set_ready(!draining() && (readiness_ == nullptr ||
                                      readiness_->IsServing(m->spec->name)));
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    grpc::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name("npukd");
  response->set_version(kServerVersion);
  for (const char* e : {"model_configuration", "statistics", "parameters"}) {
    response->add_extensions(e);
  }
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    grpc::CallbackServerContext* ctx,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request->name(), request->version(), &error);
  if (m == nullptr) return Reply(ctx, error);
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
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelConfig(
    grpc::CallbackServerContext* ctx,
    const inference::ModelConfigRequest* request,
    inference::ModelConfigResponse* response) {
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request->name(), request->version(), &error);
  if (m == nullptr) return Reply(ctx, error);
  auto* c = response->mutable_config();
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
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelStatistics(
    grpc::CallbackServerContext* ctx,
    const inference::ModelStatisticsRequest* request,
    inference::ModelStatisticsResponse* response) {
  if (request->name().empty()) {
    for (const ServedModel& m : models_) {
      m.stats->Snapshot(response->add_model_stats());
    }
    return Reply(ctx, absl::OkStatus());
  }
  absl::Status error;
  const ServedModel* m =
      FindVersioned(request->name(), request->version(), &error);
  if (m == nullptr) return Reply(ctx, error);
  m->stats->Snapshot(response->add_model_stats());
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::RepositoryIndex(
    grpc::CallbackServerContext* ctx,
    const inference::RepositoryIndexRequest* request,
    inference::RepositoryIndexResponse* response) {
  for (const ServedModel& m : models_) {
    const bool serving =
        readiness_ == nullptr || readiness_->IsServing(m.spec->name);
    if (request->ready() && !serving) continue;
    auto* idx = response->add_models();
    idx->set_name(m.spec->name);
    idx->set_version("1");
    idx->set_state(serving ? "READY" : "UNAVAILABLE");
    if (!serving) idx->set_reason("health canary failing");
  }
  return Reply(ctx, absl::OkStatus());
}

}  // namespace npuk
