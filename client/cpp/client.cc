#include "client/cpp/client.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/cpp/log_mel.h"
#include "client/cpp/target.h"
#include "server/common/status_macros.h"

namespace npuk {
namespace {

constexpr size_t kTileBytes = kTileDim * kTileDim;

absl::Duration MicrosParam(const inference::ModelInferResponse& r,
                           const char* name) {
  auto it = r.parameters().find(name);
  if (it == r.parameters().end()) return absl::ZeroDuration();
  return absl::Microseconds(it->second.int64_param());
}

// The single output of a mel/attention response, checked against the size
// the request implies so a truncated answer never reaches the caller.
absl::StatusOr<std::vector<int8_t>> SingleOutput(
    const inference::ModelInferResponse& r, size_t expected_bytes) {
  if (r.raw_output_contents_size() != 1) {
    return absl::InternalError(
        absl::StrCat("daemon returned ", r.raw_output_contents_size(),
                     " raw outputs for model '", r.model_name(),
                     "', expected 1; is the target really npukd?"));
  }
  const std::string& raw = r.raw_output_contents(0);
  if (raw.size() != expected_bytes) {
    return absl::InternalError(absl::StrCat(
        "daemon returned ", raw.size(), " output bytes for model '",
        r.model_name(), "', expected ", expected_bytes));
  }
  std::vector<int8_t> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

absl::StatusOr<MelResult> ToMel(absl::StatusOr<InferResult> r, size_t frames) {
  if (!r.ok()) return r.status();
  auto out = SingleOutput(r->response, frames * kMelBins);
  if (!out.ok()) return out.status();
  return MelResult{*std::move(out), frames, std::move(r->timing)};
}

absl::StatusOr<AttentionResult> ToAttention(absl::StatusOr<InferResult> r,
                                            size_t tiles) {
  if (!r.ok()) return r.status();
  auto out = SingleOutput(r->response, tiles * kTileBytes);
  if (!out.ok()) return out.status();
  return AttentionResult{*std::move(out), tiles, std::move(r->timing)};
}

void AddInput(inference::ModelInferRequest& req, const char* name,
              const char* dtype, std::initializer_list<int64_t> shape,
              const void* data, size_t bytes) {
  auto* in = req.add_inputs();
  in->set_name(name);
  in->set_datatype(dtype);
  for (int64_t d : shape) in->add_shape(d);
  req.add_raw_input_contents()->assign(static_cast<const char*>(data), bytes);
}

}  // namespace

Timing TimingOf(const inference::ModelInferResponse& r) {
  Timing t;
  t.queue = MicrosParam(r, "queue_us");
  t.compute = MicrosParam(r, "compute_us");
  t.server = MicrosParam(r, "server_us");
  if (auto it = r.parameters().find("batch_frames");
      it != r.parameters().end()) {
    t.batch_frames = it->second.int64_param();
  }
  if (auto it = r.parameters().find("backend"); it != r.parameters().end()) {
    t.backend = it->second.string_param();
  }
  return t;
}

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && msg.empty()) {
    msg = "daemon unreachable";
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), msg);
}

void Cancellation::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
}

bool Cancellation::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Cancellation::Attach(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  calls_.insert(ctx);
  return true;
}

void Cancellation::Detach(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  calls_.erase(ctx);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    absl::string_view target,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  auto resolved = ResolveTarget(target);
  if (!resolved.ok()) return resolved.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(*resolved, credentials, args);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const Options& options) {
  auto channel = MakeChannel(options.target, options.credentials);
  if (!channel.ok()) return channel.status();
  auto client = std::make_unique<Client>(*std::move(channel), options.timeout);
  bool shm = false;
  if (options.shared_memory.has_value()) {
    shm = *options.shared_memory;
  } else if (SharedMemoryEnabledByEnv()) {
    auto resolved = ResolveTarget(options.target);
    shm = resolved.ok() && IsLocalTarget(*resolved);
  }
  if (shm) client->EnableSharedMemory();
  return client;
}

void Client::EnableSharedMemory() {
  if (shm_ == nullptr) {
    shm_ = std::make_unique<ShmTransport>(
        inference_.get(),
        timeout_ == absl::InfiniteDuration() ? absl::Seconds(30) : timeout_);
  }
}

Client::Client(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : channel_(std::move(channel)),
      timeout_(timeout),
      inference_(inference::GRPCInferenceService::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

bool Client::Prepare(grpc::ClientContext* ctx, const CallOptions& call) const {
  absl::Time deadline = call.deadline;
  if (deadline == absl::InfiniteFuture() &&
      timeout_ != absl::InfiniteDuration()) {
    deadline = absl::Now() + timeout_;
  }
  if (deadline != absl::InfiniteFuture()) {
    ctx->set_deadline(absl::ToChronoTime(deadline));
  }
  return call.cancellation == nullptr || call.cancellation->Attach(ctx);
}

absl::StatusOr<inference::ModelInferRequest> Client::MelRequest(
    absl::Span<const int16_t> frames) {
  if (frames.empty() || frames.size() % kMelFrameSamples != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mel takes whole frames of ", kMelFrameSamples, " int16 samples; got ",
        frames.size(),
        " samples. Frame audio with FrameAudio() or LogMelSpectrogram()"));
  }
  inference::ModelInferRequest req;
  req.set_model_name("mel");
  const int64_t n = static_cast<int64_t>(frames.size() / kMelFrameSamples);
  AddInput(req, "audio", "INT16", {n, kMelFrameSamples}, frames.data(),
           frames.size() * sizeof(int16_t));
  return req;
}

absl::StatusOr<inference::ModelInferRequest> Client::AttentionRequest(
    absl::Span<const int8_t> q, absl::Span<const int8_t> k,
    absl::Span<const int8_t> v, double score_scale) {
  if (q.empty() || q.size() % kTileBytes != 0 || k.size() != q.size() ||
      v.size() != q.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention takes q, k, v of equal size, whole 64x64 int8 tiles; got ",
        q.size(), ", ", k.size(), ", ", v.size(), " bytes"));
  }
  inference::ModelInferRequest req;
  req.set_model_name("attention");
  const int64_t n = static_cast<int64_t>(q.size() / kTileBytes);
  AddInput(req, "q", "INT8", {n, kTileDim, kTileDim}, q.data(), q.size());
  AddInput(req, "k", "INT8", {n, kTileDim, kTileDim}, k.data(), k.size());
  AddInput(req, "v", "INT8", {n, kTileDim, kTileDim}, v.data(), v.size());
  (*req.mutable_parameters())["score_scale"].set_double_param(score_scale);
  return req;
}

absl::StatusOr<inference::RepositoryIndexResponse> Client::Repository(
    const CallOptions& call) {
  grpc::ClientContext ctx;
  if (!Prepare(&ctx, call)) return absl::CancelledError("call cancelled");
  inference::RepositoryIndexResponse resp;
  grpc::Status s = inference_->RepositoryIndex(
      &ctx, inference::RepositoryIndexRequest(), &resp);
  if (call.cancellation != nullptr) call.cancellation->Detach(&ctx);
  NPUK_RETURN_IF_ERROR(FromGrpc(s));
  return resp;
}

absl::StatusOr<ModelInfo> Client::Describe(absl::string_view model,
                                           const CallOptions& call) {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = described_.find(model); it != described_.end()) {
      return it->second;
    }
  }
  inference::ModelMetadataResponse meta;
  inference::ModelConfigResponse config;
  for (int rpc = 0; rpc < 2; ++rpc) {
    grpc::ClientContext ctx;
    if (!Prepare(&ctx, call)) return absl::CancelledError("call cancelled");
    grpc::Status s;
    if (rpc == 0) {
      inference::ModelMetadataRequest req;
      req.set_name(std::string(model));
      s = inference_->ModelMetadata(&ctx, req, &meta);
    } else {
      inference::ModelConfigRequest req;
      req.set_name(std::string(model));
      s = inference_->ModelConfig(&ctx, req, &config);
    }
    if (call.cancellation != nullptr) call.cancellation->Detach(&ctx);
    NPUK_RETURN_IF_ERROR(FromGrpc(s));
  }
  NPUK_ASSIGN_OR_RETURN(ModelInfo info, ModelInfo::From(meta, config));
  absl::MutexLock lock(&mu_);
  return described_.emplace(std::string(model), std::move(info)).first->second;
}

absl::StatusOr<TensorsResult> Client::Infer(absl::string_view model,
                                            const Tensors& inputs,
                                            const Parameters& params,
                                            const CallOptions& call) {
  NPUK_ASSIGN_OR_RETURN(ModelInfo info, Describe(model, call));
  NPUK_ASSIGN_OR_RETURN(inference::ModelInferRequest req,
                        BuildRequest(info, inputs, params));
  NPUK_ASSIGN_OR_RETURN(InferResult r, Infer(req, call));
  NPUK_ASSIGN_OR_RETURN(Tensors outputs, OutputsOf(r.response));
  return TensorsResult{std::move(outputs), std::move(r.timing)};
}

absl::StatusOr<InferResult> Client::Infer(
    const inference::ModelInferRequest& request, const CallOptions& call) {
  InferResult result;
  const absl::Time start = absl::Now();
  // One context per attempt: the shared-memory path may fall back to a
  // second, plain call.
  auto send = [&](const inference::ModelInferRequest& r,
                  inference::ModelInferResponse* response) {
    grpc::ClientContext ctx;
    if (!Prepare(&ctx, call)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    }
    grpc::Status s = inference_->ModelInfer(&ctx, r, response);
    if (call.cancellation != nullptr) call.cancellation->Detach(&ctx);
    return s;
  };
  const grpc::Status s = shm_ != nullptr
                             ? shm_->Infer(request, &result.response, send)
                             : send(request, &result.response);
  if (!s.ok()) return FromGrpc(s);
  result.timing = TimingOf(result.response);
  result.timing.round_trip = absl::Now() - start;
  return result;
}

// One asynchronous inference: through a shared-memory lease when the
// transport gives one, and plainly (a second attempt, with a new context)
// when the daemon lost the region.
struct Client::AsyncCall {
  Client* client = nullptr;
  CallOptions call;
  std::unique_ptr<grpc::ClientContext> ctx;
  inference::ModelInferRequest request;
  std::unique_ptr<ShmTransport::Lease> lease;
  InferResult result;
  absl::Time start;
  InferCallback done;

  // Starts the (next) attempt; finishes at once when it cannot start.
  void Send() {
    ctx = std::make_unique<grpc::ClientContext>();
    if (!client->Prepare(ctx.get(), call)) {
      if (lease != nullptr) {
        client->shm_->End(*lease, grpc::Status(grpc::StatusCode::CANCELLED, ""),
                          &result.response);
      }
      Finish(absl::CancelledError("call cancelled"));
      return;
    }
    const inference::ModelInferRequest* r =
        lease != nullptr ? &lease->request : &request;
    client->inference_->async()->ModelInfer(
        ctx.get(), r, &result.response,
        [this](grpc::Status s) { Ended(std::move(s)); });
  }

  void Ended(grpc::Status s) {
    if (call.cancellation != nullptr) call.cancellation->Detach(ctx.get());
    if (lease != nullptr) {
      const bool resend = client->shm_->End(*lease, s, &result.response);
      lease.reset();
      if (resend) {
        Send();
        return;
      }
    }
    if (!s.ok()) {
      Finish(FromGrpc(s));
      return;
    }
    result.timing = TimingOf(result.response);
    result.timing.round_trip = absl::Now() - start;
    Finish(std::move(result));
  }

  // Every gRPC object of the call is released before `done` runs, so a
  // caller may destroy the Client as soon as its callback fires.
  void Finish(absl::StatusOr<InferResult> r) {
    InferCallback cb = std::move(done);
    delete this;
    cb(std::move(r));
  }
};

void Client::InferAsync(const inference::ModelInferRequest& request,
                        const CallOptions& call, InferCallback done) {
  auto* st = new AsyncCall;
  st->client = this;
  st->call = call;
  st->request = request;
  st->done = std::move(done);
  if (call.cancellation != nullptr && call.cancellation->cancelled()) {
    st->Finish(absl::CancelledError("call cancelled"));
    return;
  }
  st->start = absl::Now();
  if (shm_ != nullptr) st->lease = shm_->Begin(st->request);
  st->Send();
}

absl::StatusOr<MelResult> Client::Mel(absl::Span<const int16_t> frames,
                                      const CallOptions& call) {
  auto req = MelRequest(frames);
  if (!req.ok()) return req.status();
  return ToMel(Infer(*req, call), frames.size() / kMelFrameSamples);
}

void Client::MelAsync(
    absl::Span<const int16_t> frames, const CallOptions& call,
    absl::AnyInvocable<void(absl::StatusOr<MelResult>)> done) {
  auto req = MelRequest(frames);
  if (!req.ok()) {
    done(req.status());
    return;
  }
  const size_t n = frames.size() / kMelFrameSamples;
  InferAsync(
      *req, call,
      [n, done = std::move(done)](absl::StatusOr<InferResult> r) mutable {
        done(ToMel(std::move(r), n));
      });
}

absl::StatusOr<AttentionResult> Client::Attention(absl::Span<const int8_t> q,
                                                  absl::Span<const int8_t> k,
                                                  absl::Span<const int8_t> v,
                                                  double score_scale,
                                                  const CallOptions& call) {
  auto req = AttentionRequest(q, k, v, score_scale);
  if (!req.ok()) return req.status();
  return ToAttention(Infer(*req, call), q.size() / kTileBytes);
}

void Client::AttentionAsync(
    absl::Span<const int8_t> q, absl::Span<const int8_t> k,
    absl::Span<const int8_t> v, double score_scale, const CallOptions& call,
    absl::AnyInvocable<void(absl::StatusOr<AttentionResult>)> done) {
  auto req = AttentionRequest(q, k, v, score_scale);
  if (!req.ok()) {
    done(req.status());
    return;
  }
  const size_t n = q.size() / kTileBytes;
  InferAsync(
      *req, call,
      [n, done = std::move(done)](absl::StatusOr<InferResult> r) mutable {
        done(ToAttention(std::move(r), n));
      });
}

absl::StatusOr<LogMelResult> Client::LogMelSpectrogram(
    const inference::ModelInferRequest& request, const CallOptions& call) {
  auto n_mels = request.parameters().find("n_mels");
  auto padding = request.parameters().find("padding");
  if (request.model_name() != "log_mel" || request.inputs_size() != 1 ||
      request.inputs(0).shape_size() != 1 ||
      n_mels == request.parameters().end() ||
      padding == request.parameters().end()) {
    return absl::InvalidArgumentError(
        "LogMelSpectrogram(request) takes a request made by LogMelRequest()");
  }
  const int bands = static_cast<int>(n_mels->second.int64_param());
  const size_t frames =
      LogMelFrames(static_cast<size_t>(request.inputs(0).shape(0)),
                   padding->second.int64_param());
  auto r = Infer(request, call);
  if (!r.ok()) return ExplainLogMelError(r.status(), request);
  NPUK_ASSIGN_OR_RETURN(std::vector<float> features,
                        LogMelFeatures(r->response, bands, frames));
  return LogMelResult{std::move(features), frames, bands, std::move(r->timing)};
}

absl::StatusOr<LogMelResult> Client::LogMelSpectrogram(
    absl::Span<const float> audio, const LogMelOptions& options,
    const CallOptions& call) {
  NPUK_ASSIGN_OR_RETURN(const inference::ModelInferRequest req,
                        LogMelRequest(audio, options));
  return LogMelSpectrogram(req, call);
}

absl::StatusOr<LogMelResult> Client::LogMelSpectrogram(
    absl::Span<const int16_t> pcm, const LogMelOptions& options,
    const CallOptions& call) {
  NPUK_ASSIGN_OR_RETURN(const inference::ModelInferRequest req,
                        LogMelRequest(pcm, options));
  return LogMelSpectrogram(req, call);
}

absl::StatusOr<HealthStatus> Client::Health(absl::string_view service,
                                            const CallOptions& call) {
  grpc::ClientContext ctx;
  if (!Prepare(&ctx, call)) return absl::CancelledError("call cancelled");
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(std::string(service));
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = health_->Check(&ctx, req, &resp);
  if (call.cancellation != nullptr) call.cancellation->Detach(&ctx);
  if (!s.ok()) return FromGrpc(s);
  return resp.status();
}

absl::StatusOr<inference::ModelStatisticsResponse> Client::Statistics(
    absl::string_view model, const CallOptions& call) {
  grpc::ClientContext ctx;
  if (!Prepare(&ctx, call)) return absl::CancelledError("call cancelled");
  inference::ModelStatisticsRequest req;
  req.set_name(std::string(model));
  inference::ModelStatisticsResponse resp;
  grpc::Status s = inference_->ModelStatistics(&ctx, req, &resp);
  if (call.cancellation != nullptr) call.cancellation->Detach(&ctx);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

}  // namespace npuk
