#include "client/cpp/log_mel.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace npuk {

int16_t AudioToInt16(float x) {
  const float c = std::clamp(x, -1.0f, 32767.0f / 32768.0f);
  return static_cast<int16_t>(std::lrint(c * 32768.0f));
}

size_t LogMelFrames(size_t samples) { return samples / kMelHop; }

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
