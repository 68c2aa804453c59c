#include "server/models/log_mel.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "kernels/registry/registry.h"
#include "server/common/reserved_parameters.h"
#include "server/common/status_macros.h"
#include "server/models/log_mel_math.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

constexpr size_t kDefaultBands = 80;
// Room left in a response for everything but the features' bytes.
constexpr size_t kResponseOverhead = 64 * 1024;

// Triton's reserved request parameters (accepted; only "timeout" acts).
absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("log_mel: ", what));
}

// The request's audio and parameters, checked.
struct Parsed {
  bool fp32 = false;
  std::vector<int16_t> i16;
  std::vector<float> f32;
  size_t samples = 0;
  size_t bands = kDefaultBands;
  size_t padding = 0;
  std::optional<absl::Duration> timeout;
};

absl::Status ParseParameters(const ModelInferRequest& request, Parsed* p) {
  for (const auto& [name, value] : request.parameters()) {
    const bool is_int =
        value.parameter_choice_case() == inference::InferParameter::kInt64Param;
    if (name == "n_mels") {
      if (!is_int ||
          (value.int64_param() != 80 && value.int64_param() != 128)) {
        return Invalid(absl::StrCat(
            "parameter 'n_mels' must be an int64_param of 80 or 128 (the "
            "band counts Whisper models use)",
            is_int ? absl::StrCat(", not ", value.int64_param()) : ""));
      }
      p->bands = static_cast<size_t>(value.int64_param());
    } else if (name == "padding") {
      if (!is_int || value.int64_param() < 0) {
        return Invalid(
            "parameter 'padding' must be a non-negative int64_param: the "
            "zero samples Whisper appends to the audio");
      }
      p->padding = static_cast<size_t>(value.int64_param());
    } else if (name == "timeout") {
      if (!is_int || value.int64_param() < 0) {
        return Invalid(
            "parameter 'timeout' must be a non-negative int64_param in "
            "microseconds");
      }
      p->timeout = absl::Microseconds(value.int64_param());
    } else if (!IsReservedParameter(name)) {
      return Invalid(absl::StrCat(
          "unknown parameter '", name.substr(0, 64),
          "'; log_mel takes n_mels (80 or 128) and padding (samples)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseAudio(const ModelInferRequest& request, Parsed* p) {
  if (request.inputs_size() != 1 || request.inputs(0).name() != "audio") {
    return Invalid(absl::StrCat(
        "the request must have exactly one input, 'audio'; it has ",
        request.inputs_size(),
        request.inputs_size() > 0
            ? absl::StrCat(" (first '", request.inputs(0).name().substr(0, 64),
                           "')")
            : ""));
  }
  NPUK_RETURN_IF_ERROR(CheckRequestedOutputs(request, "log_mel", "features"));
  const auto& in = request.inputs(0);
  if (!in.parameters().empty()) {
    return Invalid(
        "input parameters (such as shared memory) are not supported by "
        "log_mel; send the audio in raw_input_contents or contents");
  }
  if (in.datatype() == "FP32") {
    p->fp32 = true;
  } else if (in.datatype() != "INT16") {
    return Invalid(absl::StrCat("input 'audio' has datatype '",
                                in.datatype().substr(0, 16),
                                "'; it must be FP32 (full scale 1.0) or "
                                "INT16 (16 kHz mono PCM)"));
  }
  if (in.shape_size() != 1 || in.shape(0) < 0) {
    return Invalid(
        "input 'audio' must have shape [S]: one dimension, the number of "
        "16 kHz mono samples");
  }
  p->samples = static_cast<size_t>(in.shape(0));
  const size_t elem = p->fp32 ? 4 : 2;
  const bool typed = in.has_contents();
  if (request.raw_input_contents_size() > 0) {
    if (typed) {
      return Invalid(
          "input 'audio' has both raw_input_contents and contents; send one");
    }
    if (request.raw_input_contents_size() != 1) {
      return Invalid(absl::StrCat("the request has ",
                                  request.raw_input_contents_size(),
                                  " raw_input_contents for one input"));
    }
    const std::string& raw = request.raw_input_contents(0);
    if (!p->fp32 && raw.size() % 2 != 0) {
      return Invalid(absl::StrCat(
          "raw 'audio' has ", raw.size(),
          " bytes, an odd count: INT16 audio is 2 bytes per sample"));
    }
    if (raw.size() != p->samples * elem) {
      return Invalid(absl::StrCat("raw 'audio' has ", raw.size(),
                                  " bytes but shape [", p->samples, "] of ",
                                  in.datatype(), " needs ", p->samples * elem));
    }
    if (p->fp32) {
      p->f32.resize(p->samples);
      std::memcpy(p->f32.data(), raw.data(), raw.size());
    } else {
      p->i16.resize(p->samples);
      std::memcpy(p->i16.data(), raw.data(), raw.size());
    }
    return absl::OkStatus();
  }
  const auto& c = in.contents();
  if (p->fp32) {
    if (static_cast<size_t>(c.fp32_contents_size()) != p->samples ||
        c.int_contents_size() > 0) {
      return Invalid(absl::StrCat("typed FP32 'audio' needs ", p->samples,
                                  " values in contents.fp32_contents, has ",
                                  c.fp32_contents_size()));
    }
    p->f32.assign(c.fp32_contents().begin(), c.fp32_contents().end());
  } else {
    if (static_cast<size_t>(c.int_contents_size()) != p->samples ||
        c.fp32_contents_size() > 0) {
      return Invalid(absl::StrCat("typed INT16 'audio' needs ", p->samples,
                                  " values in contents.int_contents, has ",
                                  c.int_contents_size()));
    }
    p->i16.reserve(p->samples);
    for (int i = 0; i < c.int_contents_size(); ++i) {
      const int32_t v = c.int_contents(i);
      if (v < -32768 || v > 32767) {
        return Invalid(absl::StrCat("contents.int_contents[", i, "] = ", v,
                                    " is outside INT16 [-32768, 32767]"));
      }
      p->i16.push_back(static_cast<int16_t>(v));
    }
  }
  return absl::OkStatus();
}

// One request in flight: its reflected PCM, the kernel's values and the
// pieces still out. Shared by the pieces' done callbacks; the last one to
// finish answers.
struct Job {
  const ModelInferRequest* request = nullptr;
  ModelInferResponse* response = nullptr;
  absl::AnyInvocable<void(absl::Status) &&> finish;
  ModelStats* stats = nullptr;
  std::string backend;
  absl::Time start;
  size_t bands = 0;
  size_t frames = 0;
  int gain = 0;
  std::vector<int16_t> pcm;
  std::vector<int16_t> l;  // the kernel's Q8 log10 P, [frames][bands]

  absl::Mutex mu;
  size_t outstanding ABSL_GUARDED_BY(mu) = 0;
  absl::Status error ABSL_GUARDED_BY(mu);
  absl::Duration queue ABSL_GUARDED_BY(mu);     // the longest piece's wait
  absl::Duration compute ABSL_GUARDED_BY(mu);   // sum over the pieces' runs
  size_t batch_frames ABSL_GUARDED_BY(mu) = 0;  // the largest run

  // Records `count` pieces as finished with `status`; true for the caller
  // that finished the last one (it must then call Answer()).
  bool Done(size_t count, const absl::Status& status, const TaskTiming* t) {
    absl::MutexLock lock(&mu);
    if (!status.ok() && error.ok()) error = status;
    if (t != nullptr) {
      queue = std::max(queue, t->queue);
      compute += t->compute;
      batch_frames = std::max(batch_frames, t->batch_items);
    }
    outstanding -= count;
    return outstanding == 0;
  }

  void Answer(size_t pieces) {
    absl::Status status;
    absl::Duration q_time, c_time;
    size_t batch = 0;
    {
      absl::MutexLock lock(&mu);
      status = error;
      q_time = queue;
      c_time = compute;
      batch = batch_frames;
    }
    const absl::Time end = absl::Now();
    if (status.ok()) {
      auto* out = response->add_outputs();
      out->set_name("features");
      out->set_datatype("FP32");
      out->add_shape(static_cast<int64_t>(bands));
      out->add_shape(static_cast<int64_t>(frames));
      std::string* bytes = response->add_raw_output_contents();
      bytes->resize(bands * frames * sizeof(float));
      std::vector<float> features(bands * frames);
      logmel::Features(l, bands, frames, gain, features.data());
      std::memcpy(bytes->data(), features.data(), bytes->size());
      auto& params = *response->mutable_parameters();
      params["queue_us"].set_int64_param(absl::ToInt64Microseconds(q_time));
      params["compute_us"].set_int64_param(absl::ToInt64Microseconds(c_time));
      params["server_us"].set_int64_param(
          absl::ToInt64Microseconds(end - start));
      params["batch_frames"].set_int64_param(static_cast<int64_t>(batch));
      params["device_runs"].set_int64_param(static_cast<int64_t>(pieces));
      params["gain_log2"].set_int64_param(gain);
      params["backend"].set_string_param(backend);
      stats->RecordSuccess(0, q_time, c_time, end - start);
    } else {
      response->Clear();
      stats->RecordFailure(FailureReasonOf(status), end - start);
    }
    std::move(finish)(std::move(status));
  }
};

}  // namespace

const KernelSpec& LogMelModel::Descriptor() {
  static const KernelSpec* const kSpec = new KernelSpec{
      .name = "log_mel",
      .summary =
          "Whisper's log_mel_spectrogram: FP32 or INT16 audio [S] (16 kHz "
          "mono) -> FP32 features [n_mels, (S + padding) / 160]",
      .unit = "frame",
      .units = "frames",
      .inputs = {{"audio", DType::kFp32, {}}},
      .output = {"features", DType::kFp32, {-1, -1}},
  };
  return *kSpec;
}

LogMelModel::LogMelModel(LogMelOptions options, Batcher* mel80, Batcher* mel128,
                         ModelStats* stats)
    : options_(std::move(options)),
      mel80_(mel80),
      mel128_(mel128),
      stats_(stats) {}

std::vector<std::string> LogMelModel::kernels() const {
  std::vector<std::string> names;
  for (Batcher* b : {mel80_, mel128_}) {
    if (b != nullptr) names.push_back(b->kernel().name);
  }
  return names;
}

size_t LogMelModel::pending() const {
  size_t n = 0;
  for (Batcher* b : {mel80_, mel128_}) {
    if (b != nullptr) n += b->pending();
  }
  return n;
}

void LogMelModel::Infer(const ModelInferRequest& request,
                        ModelInferResponse* response, absl::Time deadline,
                        std::shared_ptr<std::atomic<bool>> cancelled,
                        absl::AnyInvocable<void(absl::Status) &&> finish) {
  const absl::Time start = absl::Now();
  auto refuse = [&](absl::Status s) {
    stats_->RecordFailure(FailureReasonOf(s), absl::Now() - start);
    std::move(finish)(std::move(s));
  };
  Parsed p;
  if (absl::Status s = ParseParameters(request, &p); !s.ok()) {
    return refuse(std::move(s));
  }
  if (absl::Status s = ParseAudio(request, &p); !s.ok()) {
    return refuse(std::move(s));
  }
  Batcher* batcher = p.bands == 128 ? mel128_ : mel80_;
  if (batcher == nullptr) {
    return refuse(absl::FailedPreconditionError(absl::StrCat(
        "log_mel: n_mels=", p.bands, " needs kernel ",
        p.bands == 128 ? "mel128_pcm" : "mel_pcm",
        ", which is disabled in this server's config; enable it or ask for "
        "the other band count")));
  }
  if (absl::Status s = logmel::CheckLength(p.samples, p.padding); !s.ok()) {
    return refuse(Invalid(s.message()));
  }
  const size_t frames = logmel::Frames(p.samples, p.padding);
  const size_t out_bytes = frames * p.bands * sizeof(float);
  if (out_bytes + kResponseOverhead > options_.max_message_bytes) {
    return refuse(absl::ResourceExhaustedError(absl::StrCat(
        "log_mel: ", frames, " frames of ", p.bands, " bands are ", out_bytes,
        " bytes of features, over this server's message limit of ",
        options_.max_message_bytes, " bytes; send at most ",
        (options_.max_message_bytes - kResponseOverhead) /
            (p.bands * sizeof(float)) * logmel::kHop,
        " samples (audio + padding) per request")));
  }
  int gain = 0;
  if (p.fp32) {
    absl::StatusOr<int> g = logmel::GainForFloat(p.f32);
    if (!g.ok()) return refuse(Invalid(g.status().message()));
    gain = *g;
  } else {
    gain = logmel::GainForInt16(p.i16);
  }
  if (p.timeout.has_value()) deadline = std::min(deadline, start + *p.timeout);

  auto job = std::make_shared<Job>();
  job->request = &request;
  job->response = response;
  job->finish = std::move(finish);
  job->stats = stats_;
  job->backend = options_.backend;
  job->start = start;
  job->bands = p.bands;
  job->frames = frames;
  job->gain = gain;
  job->pcm.resize(logmel::PcmSamples(p.samples + p.padding));
  if (p.fp32) {
    logmel::BuildPcmFloat(p.f32, p.padding, gain, job->pcm.data());
  } else {
    logmel::BuildPcmInt16(p.i16, p.padding, gain, job->pcm.data());
  }
  job->l.resize(frames * p.bands);
  response->set_model_name(Descriptor().name);
  response->set_model_version("1");
  response->set_id(request.id());

  // Pieces of at most one run; each reads its frames' windows, so it
  // carries 240 samples of the next piece's PCM as its halo.
  const size_t per_run = batcher->options().max_batch_items;
  const size_t pieces = (frames + per_run - 1) / per_run;
  {
    absl::MutexLock lock(&job->mu);
    job->outstanding = pieces;
  }
  const KernelSpec& kernel = batcher->kernel();
  for (size_t c = 0; c < pieces; ++c) {
    const size_t first = c * per_run;
    const size_t count = std::min(per_run, frames - first);
    auto task = std::make_unique<InferTask>();
    task->items = count;
    task->inputs = {absl::Span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(job->pcm.data() +
                                         first * logmel::kHop),
        kernel.plane_span(0, count))};
    task->output = reinterpret_cast<uint8_t*>(job->l.data() + first * p.bands);
    task->deadline = deadline;
    task->cancelled = cancelled;
    task->done = [job, pieces](absl::Status status, const TaskTiming& t) {
      if (job->Done(1, status, &t)) job->Answer(pieces);
    };
    absl::Status submitted = batcher->Submit(std::move(task));
    if (!submitted.ok()) {
      // This piece and the ones not yet submitted will never call back.
      if (job->Done(pieces - c, submitted, nullptr)) job->Answer(pieces);
      return;
    }
  }
}

void LogMelModel::Metadata(inference::ModelMetadataResponse* response) const {
  response->set_name(Descriptor().name);
  // (std::string(1, '1'): GCC 12 reports a false -Wrestrict on the
  // literal's inlined copy here.)
  response->add_versions(std::string(1, '1'));
  response->set_platform(absl::StrCat("npukd_", options_.backend));
  auto* in = response->add_inputs();
  in->set_name("audio");
  in->set_datatype("FP32");  // INT16 is accepted too (ModelConfig says)
  in->add_shape(-1);
  auto* out = response->add_outputs();
  out->set_name("features");
  out->set_datatype("FP32");
  out->add_shape(-1);  // n_mels
  out->add_shape(-1);  // frames
}

void LogMelModel::Config(inference::ModelConfig* c) const {
  c->set_name(Descriptor().name);
  c->set_platform(absl::StrCat("npukd_", options_.backend));
  c->set_backend(options_.backend);
  c->set_max_batch_size(0);  // no implicit batch dimension: audio is [S]
  auto* i = c->add_input();
  i->set_name("audio");
  i->set_data_type(inference::TYPE_FP32);
  i->add_dims(-1);
  auto* o = c->add_output();
  o->set_name("features");
  o->set_data_type(inference::TYPE_FP32);
  o->add_dims(-1);
  o->add_dims(-1);
  auto* g = c->add_instance_group();
  g->set_count(static_cast<int32_t>(options_.instances));
  g->set_kind(options_.backend == "cpu"
                  ? inference::ModelInstanceGroup::KIND_CPU
                  : inference::ModelInstanceGroup::KIND_MODEL);
  Batcher* any = mel80_ != nullptr ? mel80_ : mel128_;
  if (any != nullptr) {
    auto* b = c->mutable_dynamic_batching();
    b->set_max_queue_delay_microseconds(static_cast<uint64_t>(
        absl::ToInt64Microseconds(any->options().max_queue_delay)));
    b->mutable_default_queue_policy()->set_max_queue_size(
        static_cast<uint32_t>(any->options().max_queue_size));
  }
  auto& params = *c->mutable_parameters();
  params["audio"].set_string_value(
      "FP32 [S] (full scale 1.0) or INT16 [S]: 16 kHz mono PCM");
  params["n_mels"].set_string_value(
      "request parameter (int64), default 80; 80 or 128 mel bands");
  params["padding"].set_string_value(
      "request parameter (int64), default 0; zero samples appended to the "
      "audio, as whisper.audio.log_mel_spectrogram's padding");
  std::string kernels;
  for (Batcher* b : {mel80_, mel128_}) {
    if (b == nullptr) continue;
    absl::StrAppend(&kernels, kernels.empty() ? "" : ", ", b->kernel().name,
                    " (", b->kernel().output.item_elements(), " bands, ",
                    b->options().max_batch_items, " frames per run)");
  }
  params["kernels"].set_string_value(kernels);
}

}  // namespace npuk
