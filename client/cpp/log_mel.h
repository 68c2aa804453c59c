// Whisper log-mel features. The `log_mel` model does all of
// whisper.audio.log_mel_spectrogram in the daemon: LogMelRequest builds its
// request from raw 16 kHz PCM and LogMelFeatures reads the answer
// (Client::LogMelSpectrogram does both). FrameAudio and NormalizeLogMel are
// the host halves around the framed `mel` kernel, for clients of that model
// (DESIGN.md, "Kernels").
#ifndef NPUK_CLIENT_CPP_LOG_MEL_H_
#define NPUK_CLIENT_CPP_LOG_MEL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "grpc_service.pb.h"

namespace npuk {

inline constexpr size_t kSampleRate = 16000;
inline constexpr size_t kMelFrameSamples = 400;  // n_fft, 25 ms
inline constexpr size_t kMelHop = 160;           // 10 ms
inline constexpr size_t kMelBins = 80;
inline constexpr size_t kTileDim = 64;  // attention tiles are 64 x 64
// transcribe()'s padding: whisper.audio.N_SAMPLES, one 30 s window.
inline constexpr int64_t kWhisperChunkSamples = 30 * kSampleRate;

// Parameters of the `log_mel` model, as whisper's log_mel_spectrogram takes
// them.
struct LogMelOptions {
  int n_mels = 80;      // 80, or 128 (large-v3, large-v3-turbo)
  int64_t padding = 0;  // trailing zero samples (kWhisperChunkSamples in
                        // transcribe())
};

// Feature frames of `samples` samples plus `padding` zeros: (S + padding) /
// 160, what whisper returns.
size_t LogMelFrames(size_t samples, int64_t padding);

// The `log_mel` request for raw 16 kHz mono PCM: FP32 [S] (full scale 1.0)
// or INT16 [S], with parameters n_mels and padding. INVALID_ARGUMENT, before
// any call, for S = 0, a NaN or infinite sample, n_mels other than 80/128 or
// a negative padding; the message says which and what to do.
absl::StatusOr<inference::ModelInferRequest> LogMelRequest(
    absl::Span<const float> audio, const LogMelOptions& options = {});
absl::StatusOr<inference::ModelInferRequest> LogMelRequest(
    absl::Span<const int16_t> pcm, const LogMelOptions& options = {});
// s16le bytes as they come from a file or ffmpeg; an odd count is refused.
absl::StatusOr<inference::ModelInferRequest> LogMelRequestFromS16le(
    absl::string_view bytes, const LogMelOptions& options = {});

// The `features` output of a log_mel response, FP32 [n_mels, frames]
// mel-major like Whisper; INTERNAL when it is missing or mis-sized.
absl::StatusOr<std::vector<float>> LogMelFeatures(
    const inference::ModelInferResponse& response, int n_mels, size_t frames);

// Adds what to do to a daemon error for `request` (a request over the
// message limit, a daemon without the log_mel model); other errors pass.
absl::Status ExplainLogMelError(const absl::Status& status,
                                const inference::ModelInferRequest& request);

// Full scale 1.0 -> int16: round(clip(x, -1, 32767/32768) * 32768).
int16_t AudioToInt16(float x);

// Frames in the spectrogram of `samples` samples: samples / 160 (torch.stft
// with center=True yields one more, which Whisper drops).
size_t LogMelFrames(size_t samples);

// Cuts 16 kHz mono audio into int16 frames [LogMelFrames(n), 400] as
// torch.stft(center=True, pad_mode="reflect") sees them. INVALID_ARGUMENT when
// the clip is too short to reflect-pad (<= 200 samples).
absl::StatusOr<std::vector<int16_t>> FrameAudio(absl::Span<const float> audio);

// Turns the mel kernel's int8 output [n_frames, 80] (log10 P = q/16 - 4) into
// Whisper's normalised features, mel-major [80, n_frames]: clamp to max - 8,
// then (x + 4) / 4.
std::vector<float> NormalizeLogMel(absl::Span<const int8_t> q, size_t n_frames);

}  // namespace npuk

#endif  // NPUK_CLIENT_CPP_LOG_MEL_H_
