#include "client/cpp/log_mel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace npuk {

int16_t AudioToInt16(float x) {
  const float c = std::clamp(x, -1.0f, 32767.0f / 32768.0f);
  return static_cast<int16_t>(std::lrint(c * 32768.0f));
}

size_t LogMelFrames(size_t samples) { return samples / kMelHop; }

size_t LogMelFrames(size_t samples, int64_t padding) {
  return (samples + static_cast<size_t>(std::max<int64_t>(padding, 0))) /
         kMelHop;
}

namespace {

absl::Status CheckLogMelOptions(const LogMelOptions& o) {
  if (o.n_mels != 80 && o.n_mels != 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n_mels must be 80 or 128 (Whisper's filterbanks; 128 for large-v3); "
        "got ",
        o.n_mels));
  }
  if (o.padding < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "padding must be >= 0 trailing zero samples (", kWhisperChunkSamples,
        " in whisper's transcribe); got ", o.padding));
  }
  return absl::OkStatus();
}

absl::Status CheckNotEmpty(size_t samples) {
  if (samples == 0) {
    return absl::InvalidArgumentError(
        "audio is empty (S = 0 samples); log_mel needs at least one sample "
        "of 16 kHz audio");
  }
  return absl::OkStatus();
}

inference::ModelInferRequest MakeLogMelRequest(const char* datatype,
                                               size_t samples, const void* data,
                                               size_t bytes,
                                               const LogMelOptions& o) {
  inference::ModelInferRequest req;
  req.set_model_name("log_mel");
  auto* in = req.add_inputs();
  in->set_name("audio");
  in->set_datatype(datatype);
  in->add_shape(static_cast<int64_t>(samples));
  req.add_raw_input_contents()->assign(static_cast<const char*>(data), bytes);
  (*req.mutable_parameters())["n_mels"].set_int64_param(o.n_mels);
  (*req.mutable_parameters())["padding"].set_int64_param(o.padding);
  return req;
}

}  // namespace

absl::StatusOr<inference::ModelInferRequest> LogMelRequest(
    absl::Span<const float> audio, const LogMelOptions& options) {
  if (auto s = CheckLogMelOptions(options); !s.ok()) return s;
  if (auto s = CheckNotEmpty(audio.size()); !s.ok()) return s;
  size_t bad = 0;
  size_t first = audio.size();
  for (size_t i = 0; i < audio.size(); ++i) {
    if (!std::isfinite(audio[i])) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad > 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "audio has %d NaN or infinite samples (the first at index %d, %g); "
        "log_mel takes finite samples: replace them (e.g. with 0) first",
        bad, first, audio[first]));
  }
  static_assert(sizeof(float) == 4, "FP32 on the wire");
  return MakeLogMelRequest("FP32", audio.size(), audio.data(),
                           audio.size() * sizeof(float), options);
}

absl::StatusOr<inference::ModelInferRequest> LogMelRequest(
    absl::Span<const int16_t> pcm, const LogMelOptions& options) {
  if (auto s = CheckLogMelOptions(options); !s.ok()) return s;
  if (auto s = CheckNotEmpty(pcm.size()); !s.ok()) return s;
  return MakeLogMelRequest("INT16", pcm.size(), pcm.data(),
                           pcm.size() * sizeof(int16_t), options);
}

absl::StatusOr<inference::ModelInferRequest> LogMelRequestFromS16le(
    absl::string_view bytes, const LogMelOptions& options) {
  if (bytes.size() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw PCM has ", bytes.size(),
        " bytes, an odd count; int16 PCM is 2 bytes a sample (s16le): check "
        "that the buffer is whole"));
  }
  if (auto s = CheckLogMelOptions(options); !s.ok()) return s;
  if (auto s = CheckNotEmpty(bytes.size() / 2); !s.ok()) return s;
  // The wire is little-endian, as s16le is: the bytes go as they are.
  return MakeLogMelRequest("INT16", bytes.size() / 2, bytes.data(),
                           bytes.size(), options);
}

absl::StatusOr<std::vector<float>> LogMelFeatures(
    const inference::ModelInferResponse& response, int n_mels, size_t frames) {
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& o = response.outputs(i);
    if (o.name() != "features") continue;
    const size_t want = static_cast<size_t>(n_mels) * frames * sizeof(float);
    const bool shape_ok = o.shape_size() == 2 && o.shape(0) == n_mels &&
                          o.shape(1) == static_cast<int64_t>(frames);
    if (i >= response.raw_output_contents_size() ||
        response.raw_output_contents(i).size() != want || !shape_ok) {
      return absl::InternalError(absl::StrCat(
          "log_mel returned features of ",
          i < response.raw_output_contents_size()
              ? response.raw_output_contents(i).size()
              : 0,
          " bytes, shape rank ", o.shape_size(), "; expected FP32 [", n_mels,
          ", ", frames, "] (", want, " bytes)"));
    }
    std::vector<float> out(static_cast<size_t>(n_mels) * frames);
    std::memcpy(out.data(), response.raw_output_contents(i).data(), want);
    return out;
  }
  return absl::InternalError(
      "log_mel answered without a `features` output; is the target really "
      "npukd with the log_mel model?");
}

absl::Status ExplainLogMelError(const absl::Status& status,
                                const inference::ModelInferRequest& request) {
  if (status.ok()) return status;
  const size_t bytes = request.raw_input_contents_size() > 0
                           ? request.raw_input_contents(0).size()
                           : 0;
  const int64_t samples =
      request.inputs_size() > 0 && request.inputs(0).shape_size() > 0
          ? request.inputs(0).shape(0)
          : 0;
  // gRPC's own refusal of a message over the limit (the daemon's log_mel
  // already says what to do when the features would not fit).
  if (status.code() == absl::StatusCode::kResourceExhausted &&
      absl::StrContains(absl::AsciiStrToLower(status.message()), "message") &&
      !absl::StartsWith(status.message(), "log_mel:")) {
    return absl::Status(
        status.code(),
        absl::StrFormat(
            "%s (this request carries %.1f MB of %s audio, %.1f s; npukd "
            "takes at most its max_message_bytes per message, 64 MiB by "
            "default: send int16 PCM (half the bytes of float), split the "
            "audio, or raise max_message_bytes in the daemon's config)",
            status.message(), bytes / 1e6,
            request.inputs_size() > 0 ? request.inputs(0).datatype() : "",
            static_cast<double>(samples) / kSampleRate));
  }
  if (status.code() == absl::StatusCode::kNotFound &&
      absl::StrContains(status.message(), "log_mel")) {
    return absl::Status(
        status.code(),
        absl::StrCat(status.message(),
                     " (this npukd has no log_mel model: upgrade it)"));
  }
  return status;
}

absl::StatusOr<std::vector<int16_t>> FrameAudio(absl::Span<const float> audio) {
  constexpr size_t kPad = kMelFrameSamples / 2;
  if (audio.size() <= kPad) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio has ", audio.size(),
                     " samples; the spectrogram needs more than ", kPad,
                     " (12.5 ms at 16 kHz) to reflect-pad like torch.stft"));
  }
  const size_t n = audio.size();
  const size_t frames = LogMelFrames(n);
  std::vector<int16_t> q(n);
  std::transform(audio.begin(), audio.end(), q.begin(), AudioToInt16);
  // Reflect without repeating the edge sample: padded[-1] = x[1].
  auto at = [&](ptrdiff_t i) -> int16_t {
    if (i < 0) return q[static_cast<size_t>(-i)];
    if (i >= static_cast<ptrdiff_t>(n)) {
      return q[2 * (n - 1) - static_cast<size_t>(i)];
    }
    return q[static_cast<size_t>(i)];
  };
  std::vector<int16_t> out(frames * kMelFrameSamples);
  for (size_t f = 0; f < frames; ++f) {
    const ptrdiff_t start =
        static_cast<ptrdiff_t>(f * kMelHop) - static_cast<ptrdiff_t>(kPad);
    int16_t* dst = out.data() + f * kMelFrameSamples;
    if (start >= 0 && start + kMelFrameSamples <= n) {
      std::copy_n(q.data() + start, kMelFrameSamples, dst);
    } else {
      for (size_t s = 0; s < kMelFrameSamples; ++s) {
        dst[s] = at(start + static_cast<ptrdiff_t>(s));
      }
    }
  }
  return out;
}

std::vector<float> NormalizeLogMel(absl::Span<const int8_t> q,
                                   size_t n_frames) {
  std::vector<float> out(kMelBins * n_frames);
  if (n_frames == 0) return out;
  const int8_t qmax = *std::max_element(q.begin(), q.end());
  const float floor = (qmax / 16.0f - 4.0f) - 8.0f;
  for (size_t f = 0; f < n_frames; ++f) {
    for (size_t b = 0; b < kMelBins; ++b) {
      const float log10p = q[f * kMelBins + b] / 16.0f - 4.0f;
      out[b * n_frames + f] = (std::max(log10p, floor) + 4.0f) / 4.0f;
    }
  }
  return out;
}

}  // namespace npuk
