// The host side of the log_mel model: OpenAI Whisper's
// log_mel_spectrogram(audio, n_mels, padding) around the windowed mel
// kernels (kernels/mel_pcm, kernels/mel128_pcm). Pure functions, no
// server state; docs/LOG_MEL.md describes the layout, the gain and the
// accuracy.
//
// Whisper pads the audio with `padding` zeros, reflects 200 samples at
// each end (torch.stft center=True), takes 400-sample periodic-Hann
// windows at a 160-sample hop, |X|^2, the mel filterbank, drops the last
// frame, log10 of max(P, 1e-10), clamps to the request's maximum - 8 and
// maps x -> (x + 4) / 4. Here the host builds the reflected, scaled int16
// PCM (BuildPcm*), the kernel turns each window into l = round(256 log10 P)
// int16 values (kernels/common/mel_math.h, LogMelQ8), and Features() does
// the rest.
#ifndef NPUK_SERVER_MODELS_LOG_MEL_MATH_H_
#define NPUK_SERVER_MODELS_LOG_MEL_MATH_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace npuk::logmel {

inline constexpr size_t kHop = 160;              // samples between frames
inline constexpr size_t kWindow = 400;           // samples per frame (n_fft)
inline constexpr size_t kReflect = kWindow / 2;  // reflected at each end

// The gain is 2^g with g in this range: g > 0 lifts quiet audio into the
// int16 range, g < 0 brings float audio beyond full scale (|x| > 1) into it.
inline constexpr int kMinGain = -120;
inline constexpr int kMaxGain = 30;

// Frames Whisper returns for `samples` samples and `padding` zeros.
constexpr size_t Frames(size_t samples, size_t padding) {
  return (samples + padding) / kHop;
}

// Whisper's own limits: the padded signal must be longer than the 200
// reflected samples (torch refuses otherwise) and give at least one frame.
// INVALID_ARGUMENT saying so.
absl::Status CheckLength(size_t samples, size_t padding);

// The largest g in [kMinGain, kMaxGain] with round(peak 2^g) <= 32767 for
// the audio's peak in int16 units (0 for silence): the exponent of the
// power-of-two gain applied before the kernel.
int GainForInt16(absl::Span<const int16_t> audio);
// The same for float audio (full scale 1.0, peak in int16 units = 32768
// max|x|); INVALID_ARGUMENT naming the first sample that is NaN or
// infinite.
absl::StatusOr<int> GainForFloat(absl::Span<const float> audio);

// Samples the kernel reads for `frames` frames of a signal of `length`
// (= samples + padding) samples: the reflected signal, length + 400.
constexpr size_t PcmSamples(size_t length) { return length + 2 * kReflect; }

// Writes PcmSamples(audio.size() + padding) int16 samples to `out`: 200
// reflected samples, the audio times 2^gain (float: x 32768 2^gain rounded
// to nearest, ties to even; saturated to int16, which the gain makes
// unnecessary), `padding` zeros, 200 reflected samples. Frame t is then
// the window out[160 t, 160 t + 400).
// REQUIRES: CheckLength(audio.size(), padding) is OK.
void BuildPcmInt16(absl::Span<const int16_t> audio, size_t padding, int gain,
                   int16_t* out);
void BuildPcmFloat(absl::Span<const float> audio, size_t padding, int gain,
                   int16_t* out);

// The kernel's values, frame-major [frames][bands], each l = round(256
// log10 P') floored at -2560 (P' the energy of the scaled PCM), to
// Whisper's features, band-major [bands][frames]:
//   L = max(l / 256 - 2 gain log10(2), -10)   log10 of max(P, 1e-10)
//   L = max(L, top - 8)                       top: the request's largest L
//   out = (L + 4) / 4
// The 1/256 step puts the clamp level within 1/512 of Whisper's, so no
// value needs recomputing.
void Features(absl::Span<const int16_t> l, size_t bands, size_t frames,
              int gain, float* out);

}  // namespace npuk::logmel

#endif  // NPUK_SERVER_MODELS_LOG_MEL_MATH_H_
