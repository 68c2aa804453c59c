#include "server/models/attention_model.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/attention/attention_seq_request.h"
#include "kernels/attention_stream/attention_stream_units.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "server/common/reserved_parameters.h"
#include "server/common/status_macros.h"
#include "server/rpc/tensor_mapping.h"

namespace npuk {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

constexpr double kDefaultScoreScale = 0.125;
constexpr int64_t kDims = 64;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("attention: ", what));
}

const ParamDecl& ScoreScaleDecl() {
  static const ParamDecl* const d =
      new ParamDecl{"score_scale", ParamType::kDouble, kDefaultScoreScale, ""};
  return *d;
}
const ParamDecl& OutputScaleDecl() {
  static const ParamDecl* const d =
      new ParamDecl{"output_scale", ParamType::kDouble, 1.0, ""};
  return *d;
}
const ParamDecl& CausalDecl() {
  static const ParamDecl* const d =
      new ParamDecl{"causal", ParamType::kBool, false, ""};
  return *d;
}

// The request's parameters, checked for type (ranges: CheckSeqAttention).
struct Params {
  double score_scale = kDefaultScoreScale;
  double output_scale = 1.0;
  bool causal = false;
  std::optional<absl::Duration> timeout;
};

absl::StatusOr<Params> ReadParams(const ModelInferRequest& request) {
  Params p;
  for (const auto& [name, value] : request.parameters()) {
    if (name == "score_scale" || name == "output_scale" || name == "causal") {
      const ParamDecl& decl = name == "score_scale"    ? ScoreScaleDecl()
                              : name == "output_scale" ? OutputScaleDecl()
                                                       : CausalDecl();
      absl::StatusOr<ParamValue> v = ReadParameter(decl, value);
      if (!v.ok()) return Invalid(v.status().message());
      if (name == "causal") {
        p.causal = std::get<bool>(*v);
      } else {
        (name == "score_scale" ? p.score_scale : p.output_scale) =
            std::get<double>(*v);
      }
    } else if (name == "timeout") {
      if (value.parameter_choice_case() != InferParameter::kInt64Param ||
          value.int64_param() < 0) {
        return Invalid(
            "parameter 'timeout' must be a non-negative int64_param in "
            "microseconds");
      }
      p.timeout = absl::Microseconds(value.int64_param());
    } else if (!IsReservedParameter(name)) {
      return Invalid(absl::StrCat(
          "unknown parameter '", name.substr(0, 64),
          "'; attention takes score_scale, output_scale and causal"));
    }
  }
  return p;
}

// q, k, v: their shapes and bytes (in the request, or converted from typed
// contents into `owned`).
struct Inputs {
  std::vector<int64_t> dims[3];
  const int8_t* data[3] = {nullptr, nullptr, nullptr};
  std::vector<uint8_t> owned[3];
};

absl::StatusOr<Inputs> ReadInputs(const ModelInferRequest& request) {
  static constexpr const char* kNames[3] = {"q", "k", "v"};
  if (request.inputs_size() != 3) {
    return Invalid(absl::StrCat("the request has ", request.inputs_size(),
                                " inputs; attention takes three: q, k, v"));
  }
  NPUK_RETURN_IF_ERROR(CheckRequestedOutputs(request, "attention", "out"));
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != 3) {
    return Invalid(absl::StrCat("the request has ",
                                request.raw_input_contents_size(),
                                " raw_input_contents for 3 inputs"));
  }
  Inputs in;
  bool seen[3] = {false, false, false};
  for (int i = 0; i < 3; ++i) {
    const auto& t = request.inputs(i);
    int slot = -1;
    for (int s = 0; s < 3; ++s) {
      if (t.name() == kNames[s]) slot = s;
    }
    if (slot < 0 || seen[slot]) {
      return Invalid(absl::StrCat(
          slot < 0 ? "unknown input '" : "input given twice: '",
          t.name().substr(0, 64), "'; attention takes q, k and v once each"));
    }
    seen[slot] = true;
    if (t.datatype() != "INT8") {
      return Invalid(absl::StrCat("input '", kNames[slot], "' has datatype '",
                                  t.datatype().substr(0, 16),
                                  "'; it must be INT8 (quantise per tensor "
                                  "with scale max|x|/127)"));
    }
    if (!t.parameters().empty()) {
      return Invalid(absl::StrCat(
          "input '", kNames[slot],
          "' has parameters; attention reads raw_input_contents or contents "
          "(shared memory is resolved before this)"));
    }
    in.dims[slot].assign(t.shape().begin(), t.shape().end());
    if (in.dims[slot].size() != 3 || in.dims[slot][0] < 1 ||
        in.dims[slot][1] < 1 || in.dims[slot][2] != kDims ||
        in.dims[slot][1] > kAttentionMaxSequence ||
        in.dims[slot][0] > INT32_MAX) {
      continue;  // CheckSeqAttention names the problem
    }
    const size_t elements = static_cast<size_t>(in.dims[slot][0]) *
                            static_cast<size_t>(in.dims[slot][1]) * kDims;
    if (raw) {
      if (t.has_contents()) {
        return Invalid(absl::StrCat("input '", kNames[slot],
                                    "' has both raw_input_contents and "
                                    "contents; send one"));
      }
      const std::string& bytes = request.raw_input_contents(i);
      if (bytes.size() != elements) {
        return Invalid(absl::StrCat("raw input '", kNames[slot], "' has ",
                                    bytes.size(), " bytes; its shape needs ",
                                    elements, " (INT8, one byte each)"));
      }
      in.data[slot] = reinterpret_cast<const int8_t*>(bytes.data());
    } else {
      const TensorDecl decl{kNames[slot], DType::kInt8, {}};
      absl::StatusOr<std::vector<uint8_t>> bytes =
          TypedToBytes(decl, t, elements);
      if (!bytes.ok()) return Invalid(bytes.status().message());
      in.owned[slot] = *std::move(bytes);
      in.data[slot] = reinterpret_cast<const int8_t*>(in.owned[slot].data());
    }
  }
  return in;
}

// One run's worth of a request's units and their buffers.
struct Piece {
  size_t index = 0;
  size_t first = 0;  // unit
  size_t units = 0;
  size_t items = 0;  // whole rounds: units and the empty ones padding them
  // The kernel's small planes; the key tiles (kv) are written straight
  // into the run's device argument (InferTask::write_stepped).
  std::vector<uint8_t> q, records;
};

}  // namespace

// Pieces' buffers, reused across pieces and requests. A piece goes back
// when its last holder drops it; at most `keep` wait idle, the others are
// freed.
class AttentionPiecePool
    : public std::enable_shared_from_this<AttentionPiecePool> {
 public:
  explicit AttentionPiecePool(size_t keep) : keep_(keep) {}

  std::shared_ptr<Piece> Take() {
    std::unique_ptr<Piece> piece;
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        piece = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (piece == nullptr) piece = std::make_unique<Piece>();
    return std::shared_ptr<Piece>(
        piece.release(),
        [self = shared_from_this()](Piece* p) { self->Put(p); });
  }

 private:
  void Put(Piece* p) {
    std::unique_ptr<Piece> piece(p);  // freed after the lock, if not kept
    absl::MutexLock lock(&mu_);
    if (idle_.size() < keep_) idle_.push_back(std::move(piece));
  }

  const size_t keep_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Piece>> idle_ ABSL_GUARDED_BY(mu_);
};

namespace {

// One sequence request in flight. Pieces are built (and submitted) in
// request order, a few at a time; each writes its units' rows of the
// output when it comes back, in whatever order. The job answers once: when
// every piece is in, or when one failed and none is still out.
class Job : public std::enable_shared_from_this<Job> {
 public:
  ModelInferResponse* response = nullptr;
  absl::AnyInvocable<void(absl::Status) &&> finish;
  ModelStats* stats = nullptr;
  Batcher* batcher = nullptr;
  std::shared_ptr<AttentionPiecePool> pool;
  std::string backend;
  absl::Time start;
  absl::Time deadline;
  std::shared_ptr<std::atomic<bool>> cancelled;
  size_t window = 1;
  Inputs inputs;
  stream::Problem problem{};
  size_t units = 0;
  size_t pairs = 0;    // the key tiles the units take: the cost
  size_t per_run = 4;  // units per piece, whole rounds
  size_t pieces = 0;

  // Builds and submits pieces until `window` are out. Not under mu.
  void Launch() {
    std::vector<std::shared_ptr<Piece>> batch;
    {
      absl::MutexLock lock(&mu_);
      while (error_.ok() && in_flight_ < window && built_ < pieces) {
        if (cancelled != nullptr && cancelled->load()) {
          error_ = absl::CancelledError("request cancelled by the client");
          break;
        }
        batch.push_back(BuildLocked());
        ++in_flight_;
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      absl::Status s = Submit(batch[i]);
      if (!s.ok()) {
        // This piece and the rest of the batch never call back.
        Finished(batch.size() - i, s, nullptr);
        return;
      }
    }
  }

 private:
  std::shared_ptr<Piece> BuildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::shared_ptr<Piece> piece = pool->Take();
    piece->index = built_++;
    piece->first = piece->index * per_run;
    piece->units = std::min(per_run, units - piece->first);
    piece->items = stream::UnitItems(piece->units);
    piece->q.resize(piece->items * kStreamMatrixBytes);
    piece->records.resize(piece->items * kStreamRecordBytes);
    stream::WriteUnits(problem, piece->first, piece->units, piece->q.data(),
                       piece->records.data(), nullptr);
    return piece;
  }

  absl::Status Submit(const std::shared_ptr<Piece>& piece) {
    auto task = std::make_unique<InferTask>();
    task->items = piece->items;
    task->padding_items = piece->items - piece->units;
    task->inputs = {absl::Span<const uint8_t>(piece->q),
                    absl::Span<const uint8_t>(),
                    absl::Span<const uint8_t>(piece->records)};
    // The key tiles go straight into the device argument: 16 units of a
    // 1500-token request are 3.1 MB, which a buffer here would hold only
    // for the batcher to copy. `problem` points into the request, which
    // lives until the job answers, after its last piece.
    task->write_stepped = [self = shared_from_this(), first = piece->first,
                           units = piece->units](uint8_t* dest) {
      stream::WriteUnits(self->problem, first, units, nullptr, nullptr, dest);
    };
    // No output buffer: Finished copies the units' rows from where the run
    // left them (TaskTiming::output).
    task->output = nullptr;
    task->deadline = deadline;
    task->cancelled = cancelled;
    // Later pieces belong to a request accepted before any drain began.
    task->continuation = piece->index > 0;
    task->done = [self = shared_from_this(), piece](absl::Status status,
                                                    const TaskTiming& t) {
      self->Finished(1, status, &t, piece.get());
    };
    return batcher->Submit(std::move(task));
  }

  // `count` pieces came back (or will never be sent) with `status`.
  void Finished(size_t count, const absl::Status& status, const TaskTiming* t,
                const Piece* piece = nullptr) {
    bool answer = false;
    bool more = false;
    {
      absl::MutexLock lock(&mu_);
      in_flight_ -= count;
      if (t != nullptr) {
        queue_ = std::max(queue_, t->queue);
        compute_ += t->compute;
        batch_items_ = std::max(batch_items_, t->batch_items);
        ++runs_;
      }
      if (!status.ok()) {
        if (error_.ok()) error_ = status;
      } else if (piece != nullptr) {
        const absl::Span<const uint8_t> results =
            t != nullptr ? t->output : absl::Span<const uint8_t>();
        if (results.size() != piece->items * kStreamMatrixBytes) {
          if (error_.ok()) {
            error_ = absl::InternalError(absl::StrCat(
                "attention: a run of attention_stream returned ",
                results.size(), " bytes for ", piece->items,
                " query tiles; this is a bug in npukd, please report it"));
          }
        } else {
          stream::ReadUnits(problem, piece->first, piece->units, results.data(),
                            reinterpret_cast<int8_t*>(out()));
          ++done_;
        }
      }
      if (!answered_ &&
          ((!error_.ok() && in_flight_ == 0) || done_ == pieces)) {
        answered_ = true;
        answer = true;
      }
      more = !answered_ && error_.ok();
    }
    if (answer) Answer();
    if (more) Launch();
  }

  uint8_t* out() {
    return reinterpret_cast<uint8_t*>(
        response->mutable_raw_output_contents(0)->data());
  }

  void Answer() {
    absl::Status status;
    absl::Duration q_time, c_time;
    size_t batch = 0, runs = 0;
    {
      absl::MutexLock lock(&mu_);
      status = error_;
      q_time = queue_;
      c_time = compute_;
      batch = batch_items_;
      runs = runs_;
    }
    const absl::Time end = absl::Now();
    if (status.ok()) {
      auto& params = *response->mutable_parameters();
      params["queue_us"].set_int64_param(absl::ToInt64Microseconds(q_time));
      params["compute_us"].set_int64_param(absl::ToInt64Microseconds(c_time));
      params["server_us"].set_int64_param(
          absl::ToInt64Microseconds(end - start));
      params["batch_frames"].set_int64_param(static_cast<int64_t>(batch));
      params["device_runs"].set_int64_param(static_cast<int64_t>(runs));
      params["tile_pairs"].set_int64_param(static_cast<int64_t>(pairs));
      params["backend"].set_string_param(backend);
      stats->RecordSuccess(0, q_time, c_time, end - start);
    } else {
      response->Clear();
      stats->RecordFailure(FailureReasonOf(status), end - start);
    }
    std::move(finish)(std::move(status));
  }

  absl::Mutex mu_;
  size_t built_ ABSL_GUARDED_BY(mu_) = 0;
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration queue_ ABSL_GUARDED_BY(mu_);    // the longest piece's wait
  absl::Duration compute_ ABSL_GUARDED_BY(mu_);  // sum over the pieces' runs
  size_t batch_items_ ABSL_GUARDED_BY(mu_) = 0;  // the largest run
  size_t runs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

AttentionModel::AttentionModel(AttentionModelOptions options, Batcher* tiles,
                               Batcher* units, ModelStats* stats)
    : options_(std::move(options)),
      tiles_(tiles),
      units_(units),
      stats_(stats),
      pieces_(std::make_shared<AttentionPiecePool>(
          std::max<size_t>(1, options_.pieces_in_flight))) {}

AttentionModel::~AttentionModel() = default;

std::vector<std::string> AttentionModel::kernels() const {
  std::vector<std::string> names = {tiles_->kernel().name};
  if (units_ != nullptr) names.push_back(units_->kernel().name);
  return names;
}

size_t AttentionModel::pending() const {
  return tiles_->pending() + (units_ != nullptr ? units_->pending() : 0);
}

bool AttentionModel::TakesRequest(const ModelInferRequest& request) const {
  if (request.parameters().contains("output_scale") ||
      request.parameters().contains("causal")) {
    return true;
  }
  // Anything but three [N, 64, 64] inputs of one N the tile kernel's runs
  // hold is a sequence request (or an error the model explains).
  if (request.inputs_size() != 3) return true;
  const int64_t n =
      request.inputs(0).shape_size() == 3 ? request.inputs(0).shape(0) : -1;
  for (const auto& in : request.inputs()) {
    if (in.shape_size() != 3 || in.shape(0) != n || in.shape(1) != kDims ||
        in.shape(2) != kDims) {
      return true;
    }
  }
  return n < 1 || static_cast<uint64_t>(n) > tiles_->options().max_batch_items;
}

void AttentionModel::Infer(const ModelInferRequest& request,
                           ModelInferResponse* response, absl::Time deadline,
                           std::shared_ptr<std::atomic<bool>> cancelled,
                           absl::AnyInvocable<void(absl::Status) &&> finish) {
  const absl::Time start = absl::Now();
  auto refuse = [&](absl::Status s) {
    stats_->RecordFailure(FailureReasonOf(s), absl::Now() - start);
    std::move(finish)(std::move(s));
  };
  absl::StatusOr<Params> params = ReadParams(request);
  if (!params.ok()) return refuse(params.status());
  absl::StatusOr<Inputs> inputs = ReadInputs(request);
  if (!inputs.ok()) return refuse(inputs.status());
  absl::StatusOr<SeqAttentionShape> shape = CheckSeqAttention(
      inputs->dims[0], inputs->dims[1], inputs->dims[2], params->score_scale,
      params->output_scale, params->causal);
  if (!shape.ok()) return refuse(shape.status());
  if (units_ == nullptr) {
    return refuse(absl::FailedPreconditionError(absl::StrCat(
        "attention: this server serves only [N, 64, 64] tiles with the "
        "default output_scale and causal=false: kernel attention_stream, "
        "which runs sequences, is disabled in its config; enable it, or send "
        "[N, 64, 64] tiles of at most ",
        tiles_->options().max_batch_items, " per request")));
  }
  if (params->timeout.has_value()) {
    deadline = std::min(deadline, start + *params->timeout);
  }

  auto job = std::make_shared<Job>();
  job->response = response;
  job->finish = std::move(finish);
  job->stats = stats_;
  job->batcher = units_;
  job->pool = pieces_;
  job->backend = options_.backend;
  job->start = start;
  job->deadline = deadline;
  job->cancelled = std::move(cancelled);
  job->window = std::max<size_t>(1, options_.pieces_in_flight);
  job->inputs = *std::move(inputs);
  job->problem = stream::Problem{
      .q = job->inputs.data[0],
      .k = job->inputs.data[1],
      .v = job->inputs.data[2],
      .n = shape->n,
      .lq = shape->lq,
      .lk = shape->lk,
      .causal = shape->causal,
      .score_scale = QuantizeScoreScale(params->score_scale),
      .output_scale = online::QuantizeOutputScale(params->output_scale)};
  job->units = stream::UnitCount(job->problem);
  job->pairs = static_cast<size_t>(shape->n) *
               SeqTilePairs(shape->lq, shape->lk, shape->causal);
  // Whole rounds per piece (a run of the stream kernel is whole rounds).
  const size_t lanes = units_->kernel().step_lanes();
  job->per_run =
      std::max(lanes, units_->options().max_batch_items / lanes * lanes);
  job->pieces = (job->units + job->per_run - 1) / job->per_run;

  response->set_model_name(tiles_->kernel().name);
  response->set_model_version("1");
  response->set_id(request.id());
  auto* out = response->add_outputs();
  out->set_name("out");
  out->set_datatype("INT8");
  out->add_shape(shape->n);
  out->add_shape(shape->lq);
  out->add_shape(kDims);
  response->add_raw_output_contents()->resize(
      static_cast<size_t>(shape->n) * static_cast<size_t>(shape->lq) * kDims);
  job->Launch();
}

void AttentionModel::Metadata(
    inference::ModelMetadataResponse* response) const {
  response->set_name(tiles_->kernel().name);
  response->add_versions(std::string(1, '1'));
  response->set_platform(absl::StrCat("npukd_", options_.backend));
  for (const char* name : {"q", "k", "v"}) {
    auto* in = response->add_inputs();
    in->set_name(name);
    in->set_datatype("INT8");
    in->add_shape(-1);  // N = batch x heads
    in->add_shape(-1);  // Lq for q, Lk for k and v
    in->add_shape(kDims);
  }
  auto* out = response->add_outputs();
  out->set_name("out");
  out->set_datatype("INT8");
  out->add_shape(-1);
  out->add_shape(-1);
  out->add_shape(kDims);
}

void AttentionModel::Config(inference::ModelConfig* c) const {
  c->set_name(tiles_->kernel().name);
  c->set_platform(absl::StrCat("npukd_", options_.backend));
  c->set_backend(options_.backend);
  c->set_max_batch_size(0);  // N is the first of the explicit dims
  for (const char* name : {"q", "k", "v"}) {
    auto* i = c->add_input();
    i->set_name(name);
    i->set_data_type(inference::TYPE_INT8);
    i->add_dims(-1);
    i->add_dims(-1);
    i->add_dims(kDims);
  }
  auto* o = c->add_output();
  o->set_name("out");
  o->set_data_type(inference::TYPE_INT8);
  o->add_dims(-1);
  o->add_dims(-1);
  o->add_dims(kDims);
  auto* g = c->add_instance_group();
  g->set_count(static_cast<int32_t>(options_.instances));
  g->set_kind(options_.backend == "cpu"
                  ? inference::ModelInstanceGroup::KIND_CPU
                  : inference::ModelInstanceGroup::KIND_MODEL);
  auto* b = c->mutable_dynamic_batching();
  b->set_max_queue_delay_microseconds(static_cast<uint64_t>(
      absl::ToInt64Microseconds(tiles_->options().max_queue_delay)));
  b->mutable_default_queue_policy()->set_max_queue_size(
      static_cast<uint32_t>(tiles_->options().max_queue_size));
  auto& params = *c->mutable_parameters();
  params["score_scale"].set_string_value(
      "request parameter (double), default 0.125, in [2^-16, 4]: the scale "
      "of q.k before the softmax; for float Q, K quantised with scales s_q, "
      "s_k send s_q*s_k/8");
  params["output_scale"].set_string_value(
      "request parameter (double), default 1.0, in [2^-16, 2^16]: out = "
      "softmax(q k^T score_scale) v / output_scale; for V quantised with "
      "scale s_v and a float result of peak P send P / (127 s_v)");
  params["causal"].set_string_value(
      "request parameter (bool), default false: query i sees keys j <= i + "
      "Lk - Lq (a decoder with a key/value cache); needs Lq <= Lk");
  params["unit"].set_string_value(
      "runs and statistics count query tiles (64 queries of one head against "
      "every key tile they see, on one core); a [N, 64, 64] request is N; "
      "the response's tile_pairs is the (query tile, key tile) pairs taken");
  std::string kernels =
      absl::StrCat(tiles_->kernel().name, " (",
                   tiles_->options().max_batch_items, " tiles per run)");
  if (units_ != nullptr) {
    absl::StrAppend(&kernels, ", ", units_->kernel().name, " (",
                    units_->options().max_batch_items, " query tiles per run)");
  }
  params["kernels"].set_string_value(kernels);
}

}  // namespace npuk
