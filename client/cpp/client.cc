#include "client/cpp/client.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
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
                                            const AttentionShape& shape) {
  if (!r.ok()) return r.status();
  auto out = SingleOutput(r->response,
                          static_cast<size_t>(shape.n * shape.lq) * kTileDim);
  if (!out.ok()) return out.status();
  return AttentionResult{*std::move(out), static_cast<size_t>(shape.n),
                         std::move(r->timing), shape};
}

AttentionShape TileShape(size_t tiles) {
  return {static_cast<int64_t>(tiles), kTileDim, kTileDim};
}

// A daemon from before sequence attention refuses the new parameters as
// unknown; say what to do about it.
absl::Status ExplainAttentionError(absl::Status s) {
  if (s.code() == absl::StatusCode::kInvalidArgument &&
      (absl::StrContains(s.message(), "no parameter 'output_scale'") ||
       absl::StrContains(s.message(), "no parameter 'causal'"))) {
    return absl::InvalidArgumentError(absl::StrCat(
        s.message(),
        " (this npukd's attention model takes only [N, 64, 64] tiles and "
        "score_scale, from before sequence attention: upgrade npukd, or send "
        "such tiles with output_scale 1 and causal false)"));
  }
  return s;
}

constexpr double kMinScoreScale = 0x1p-16;
constexpr double kMaxScoreScale = 4.0;
constexpr double kMinOutputScale = 0x1p-16;
constexpr double kMaxOutputScale = 0x1p16;
// ChooseOutputScale: rows a head, headroom over the sampled peak, and the
// most q.k scores the estimate computes.
constexpr int64_t kSampleRows = 64;
constexpr double kPeakMargin = 1.1;
constexpr int64_t kSampleScores = int64_t{1} << 22;

// Rounded, sorted, distinct values of `count` points from `from` to `to`,
// evenly (numpy's linspace) or geometrically (geomspace) spaced.
void AddSpaced(double from, double to, int64_t count, bool geometric,
               std::vector<int64_t>& out) {
  for (int64_t i = 0; i < count; ++i) {
    const double t = count == 1 ? 0.0 : static_cast<double>(i) / (count - 1);
    const double x =
        geometric
            ? std::exp(std::log(from) + t * (std::log(to) - std::log(from)))
            : from + t * (to - from);
    out.push_back(
        static_cast<int64_t>(std::nearbyint(i + 1 == count ? to : x)));
  }
}

std::vector<int64_t> Unique(std::vector<int64_t> x) {
  std::sort(x.begin(), x.end());
  x.erase(std::unique(x.begin(), x.end()), x.end());
  return x;
}

// The query rows of the estimate: every row up to `rows`, else `rows`
// evenly spaced; under causal half of them geometrically from row 0.
std::vector<int64_t> SampleRows(int64_t lq, bool causal, int64_t rows) {
  std::vector<int64_t> out;
  if (lq <= rows) {
    for (int64_t i = 0; i < lq; ++i) out.push_back(i);
    return out;
  }
  const int64_t geometric = causal ? rows / 2 : 0;
  AddSpaced(0, static_cast<double>(lq - 1), rows - geometric, false, out);
  if (geometric > 0) {
    std::vector<int64_t> g;
    AddSpaced(1, static_cast<double>(lq), geometric, true, g);
    for (int64_t x : g) out.push_back(x - 1);
  }
  return Unique(std::move(out));
}

absl::Status FiniteOrError(const char* name, absl::Span<const float> x) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) && bad++ == 0) first = i;
  }
  if (bad == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("attention: ", name, " has ", bad,
                   " NaN or infinite values (the first at index ", first,
                   "); attention takes finite values"));
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

QuantizedTensor QuantizePerTensor(absl::Span<const float> x,
                                  std::optional<double> scale) {
  QuantizedTensor q;
  if (scale.has_value()) {
    q.scale = *scale;
  } else {
    float peak = 0;
    for (float f : x) peak = std::max(peak, std::fabs(f));
    q.scale = peak > 0 ? peak / 127.0 : 1.0;
  }
  // float32 division and round-half-even, as numpy does on float32 data.
  const float step = static_cast<float>(q.scale);
  q.values.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float r = std::nearbyint(x[i] / step);
    q.values[i] = static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
  }
  return q;
}

absl::Status CheckAttentionShape(const AttentionShape& shape, size_t q_size,
                                 size_t k_size, size_t v_size, bool causal) {
  auto invalid = [](auto&&... what) {
    return absl::InvalidArgumentError(absl::StrCat("attention: ", what...));
  };
  if (shape.n < 1 || shape.n > std::numeric_limits<int32_t>::max()) {
    return invalid("n (batch x heads) is ", shape.n,
                   "; send at least one head (n >= 1, n < 2^31)");
  }
  for (auto [name, l] :
       {std::pair{"lq", shape.lq}, std::pair{"lk", shape.lk}}) {
    if (l < 1 || l > kAttentionMaxTokens) {
      return invalid(name, " is ", l, " tokens; attention takes 1 to ",
                     kAttentionMaxTokens,
                     " (split longer sequences into windows of at most ",
                     kAttentionMaxTokens, " tokens; skip empty ones)");
    }
  }
  const auto want_q = static_cast<size_t>(shape.n * shape.lq) * kTileDim;
  const auto want_kv = static_cast<size_t>(shape.n * shape.lk) * kTileDim;
  if (q_size != want_q || k_size != want_kv || v_size != want_kv) {
    return invalid("q, k, v have ", q_size, ", ", k_size, ", ", v_size,
                   " values; shape {n = ", shape.n, ", lq = ", shape.lq,
                   ", lk = ", shape.lk, "} needs q [n, lq, 64] = ", want_q,
                   " and k, v [n, lk, 64] = ", want_kv,
                   " each (64 values per head and token)");
  }
  if (causal && shape.lq > shape.lk) {
    return invalid(
        "causal attention needs lq <= lk (query i sees keys j <= "
        "i + lk - lq); got lq = ",
        shape.lq, ", lk = ", shape.lk,
        ": send the whole key/value cache, or causal = false");
  }
  return absl::OkStatus();
}

double ChooseOutputScale(absl::Span<const float> q, absl::Span<const float> k,
                         absl::Span<const float> v, const AttentionShape& shape,
                         bool causal) {
  float v_peak = 0;
  for (float f : v) v_peak = std::max(v_peak, std::fabs(f));
  if (v_peak == 0) return 1.0;  // the result is zero on any grid
  const int64_t n = shape.n, lq = shape.lq, lk = shape.lk;
  int64_t per_head = std::min(lq, kSampleRows);
  std::vector<int64_t> heads;
  if (n * per_head * lk > kSampleScores) {
    per_head = std::max<int64_t>(1, kSampleScores / (n * lk));
  }
  if (n * per_head * lk > kSampleScores) {
    AddSpaced(0, static_cast<double>(n - 1),
              std::max<int64_t>(1, kSampleScores / lk), false, heads);
    heads = Unique(std::move(heads));
  } else {
    for (int64_t h = 0; h < n; ++h) heads.push_back(h);
  }
  const std::vector<int64_t> rows = SampleRows(lq, causal, per_head);
  std::vector<float> scores(lk);
  std::vector<double> mixed(kTileDim);
  double peak = 0;
  for (int64_t h : heads) {
    const float* kh = k.data() + h * lk * kTileDim;
    const float* vh = v.data() + h * lk * kTileDim;
    for (int64_t r : rows) {
      const float* qr = q.data() + (h * lq + r) * kTileDim;
      const int64_t seen = causal ? r + lk - lq + 1 : lk;
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < seen; ++j) {
        float dot = 0;
        for (size_t d = 0; d < kTileDim; ++d) {
          dot += qr[d] * kh[j * kTileDim + d];
        }
        scores[j] = dot * 0.125f;
        top = std::max(top, scores[j]);
      }
      double sum = 0;
      std::fill(mixed.begin(), mixed.end(), 0.0);
      for (int64_t j = 0; j < seen; ++j) {
        const double e = std::exp(static_cast<double>(scores[j] - top));
        sum += e;
        for (size_t d = 0; d < kTileDim; ++d) {
          mixed[d] += e * vh[j * kTileDim + d];
        }
      }
      for (double m : mixed) peak = std::max(peak, std::fabs(m) / sum);
    }
  }
  return std::min(1.0, std::max(kMinOutputScale, kPeakMargin * peak / v_peak));
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
        q.size(), ", ", k.size(), ", ", v.size(),
        " bytes (sequences: pass an AttentionShape)"));
  }
  return AttentionRequest(q, k, v, TileShape(q.size() / kTileBytes),
                          {.score_scale = score_scale});
}

absl::StatusOr<inference::ModelInferRequest> Client::AttentionRequest(
    absl::Span<const int8_t> q, absl::Span<const int8_t> k,
    absl::Span<const int8_t> v, const AttentionShape& shape,
    const AttentionParams& params) {
  NPUK_RETURN_IF_ERROR(
      CheckAttentionShape(shape, q.size(), k.size(), v.size(), params.causal));
  inference::ModelInferRequest req;
  req.set_model_name("attention");
  AddInput(req, "q", "INT8", {shape.n, shape.lq, kTileDim}, q.data(), q.size());
  AddInput(req, "k", "INT8", {shape.n, shape.lk, kTileDim}, k.data(), k.size());
  AddInput(req, "v", "INT8", {shape.n, shape.lk, kTileDim}, v.data(), v.size());
  auto& p = *req.mutable_parameters();
  p["score_scale"].set_double_param(params.score_scale);
  if (params.output_scale != 1.0) {
    p["output_scale"].set_double_param(params.output_scale);
  }
  if (params.causal) p["causal"].set_bool_param(true);
  return req;
}

absl::StatusOr<QuantizedAttention> Client::AttentionRequest(
    absl::Span<const float> q, absl::Span<const float> k,
    absl::Span<const float> v, const AttentionShape& shape,
    const FloatAttentionOptions& options) {
  NPUK_RETURN_IF_ERROR(
      CheckAttentionShape(shape, q.size(), k.size(), v.size(), options.causal));
  NPUK_RETURN_IF_ERROR(FiniteOrError("q", q));
  NPUK_RETURN_IF_ERROR(FiniteOrError("k", k));
  NPUK_RETURN_IF_ERROR(FiniteOrError("v", v));
  AttentionParams params{.causal = options.causal};
  if (options.output_scale.has_value()) {
    params.output_scale = *options.output_scale;
    if (!(params.output_scale >= kMinOutputScale &&
          params.output_scale <= kMaxOutputScale)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attention: output_scale is ", params.output_scale,
          "; npukd takes [2^-16, 2^16] (out = softmax(q k^T s) v / "
          "output_scale); leave it unset to have ChooseOutputScale pick it"));
    }
  } else {
    params.output_scale = ChooseOutputScale(q, k, v, shape, options.causal);
  }
  QuantizedTensor qi = QuantizePerTensor(q), ki = QuantizePerTensor(k);
  const auto nonzero = [](const QuantizedTensor& t) {
    return std::any_of(t.values.begin(), t.values.end(),
                       [](int8_t x) { return x != 0; });
  };
  if (!nonzero(qi) || !nonzero(ki)) {
    params.score_scale = 0.125;  // every score is 0 at any scale
  } else {
    params.score_scale = qi.scale * ki.scale / 8.0;
    if (params.score_scale > kMaxScoreScale) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attention: q and k are too large for int8 scores: score_scale = "
          "s_q s_k / 8 = ",
          params.score_scale, " is over npukd's ", kMaxScoreScale,
          " (softmax of scores that large is a hard maximum): scale the "
          "inputs down, or compute this in float"));
    }
    if (params.score_scale < kMinScoreScale) {
      // Scores this small lose nothing on grids sqrt(ratio) times coarser.
      const double coarser = std::sqrt(kMinScoreScale / params.score_scale);
      qi = QuantizePerTensor(q, qi.scale * coarser);
      ki = QuantizePerTensor(k, ki.scale * coarser);
      params.score_scale = std::max(kMinScoreScale, qi.scale * ki.scale / 8.0);
    }
  }
  const QuantizedTensor vi = QuantizePerTensor(v);
  NPUK_ASSIGN_OR_RETURN(
      inference::ModelInferRequest req,
      AttentionRequest(qi.values, ki.values, vi.values, shape, params));
  return QuantizedAttention{std::move(req), params,
                            vi.scale * params.output_scale};
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
  return ToAttention(Infer(*req, call), TileShape(q.size() / kTileBytes));
}

absl::StatusOr<AttentionResult> Client::Attention(absl::Span<const int8_t> q,
                                                  absl::Span<const int8_t> k,
                                                  absl::Span<const int8_t> v,
                                                  const AttentionShape& shape,
                                                  const AttentionParams& params,
                                                  const CallOptions& call) {
  NPUK_ASSIGN_OR_RETURN(const inference::ModelInferRequest req,
                        AttentionRequest(q, k, v, shape, params));
  auto r = ToAttention(Infer(req, call), shape);
  if (!r.ok()) return ExplainAttentionError(r.status());
  return r;
}

absl::StatusOr<FloatAttentionResult> Client::Attention(
    absl::Span<const float> q, absl::Span<const float> k,
    absl::Span<const float> v, const AttentionShape& shape,
    const FloatAttentionOptions& options, const CallOptions& call) {
  NPUK_ASSIGN_OR_RETURN(QuantizedAttention sent,
                        AttentionRequest(q, k, v, shape, options));
  auto r = ToAttention(Infer(sent.request, call), shape);
  if (!r.ok()) return ExplainAttentionError(r.status());
  FloatAttentionResult result{
      .shape = shape, .params = sent.params, .timing = std::move(r->timing)};
  result.out.resize(r->out.size());
  const auto unit = static_cast<float>(sent.out_unit);
  for (size_t i = 0; i < r->out.size(); ++i) result.out[i] = r->out[i] * unit;
  return result;
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
  const AttentionShape shape = TileShape(q.size() / kTileBytes);
  InferAsync(
      *req, call,
      [shape, done = std::move(done)](absl::StatusOr<InferResult> r) mutable {
        done(ToAttention(std::move(r), shape));
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
