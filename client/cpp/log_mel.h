// The host half of a Whisper log-mel spectrogram: framing before the daemon's
// mel kernel and normalisation after it. Together with one `mel` request they
// reproduce whisper.audio.log_mel_spectrogram (DESIGN.md, "Kernels").
#ifndef NPUK_CLIENT_CPP_LOG_MEL_H_
#define NPUK_CLIENT_CPP_LOG_MEL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace npuk {

inline constexpr size_t kSampleRate = 16000;
inline constexpr size_t kMelFrameSamples = 400;  // n_fft, 25 ms
inline constexpr size_t kMelHop = 160;           // 10 ms
inline constexpr size_t kMelBins = 80;
inline constexpr size_t kTileDim = 64;  // attention tiles are 64 x 64

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
