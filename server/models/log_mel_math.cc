#include "server/models/log_mel_math.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace npuk::logmel {
namespace {

// The largest g in [kMinGain, kMaxGain] with peak 2^g <= 32767 (peak in
// int16 units, > 0): the scaled peak rounds to at most 32767.
int GainForPeak(double peak) {
  if (!(peak > 0)) return 0;
  int g = static_cast<int>(std::floor(std::log2(32767.0 / peak)));
  while (g > kMinGain && std::ldexp(peak, g) > 32767.0) --g;
  while (g < kMaxGain && std::ldexp(peak, g + 1) <= 32767.0) ++g;
  return std::clamp(g, kMinGain, kMaxGain);
}

int16_t Saturate(double v) {
  return static_cast<int16_t>(std::clamp(v, -32768.0, 32767.0));
}

// Index into the padded signal (audio then zeros, `length` samples) of
// position j of the reflected one (kReflect extra at each end).
size_t Reflect(size_t j, size_t length) {
  const auto i = static_cast<int64_t>(j) - static_cast<int64_t>(kReflect);
  const auto n = static_cast<int64_t>(length);
  if (i < 0) return static_cast<size_t>(-i);
  if (i >= n) return static_cast<size_t>(2 * (n - 1) - i);
  return static_cast<size_t>(i);
}

template <typename Sample, typename Scale>
void BuildPcm(absl::Span<const Sample> audio, size_t padding, Scale scale,
              int16_t* out) {
  const size_t length = audio.size() + padding;
  const size_t total = PcmSamples(length);
  // The middle is a straight copy; only the two ends reflect.
  for (size_t j = 0; j < total; ++j) {
    const size_t i = (j < kReflect || j >= kReflect + length)
                         ? Reflect(j, length)
                         : j - kReflect;
    out[j] = i < audio.size() ? scale(audio[i]) : int16_t{0};
  }
}

}  // namespace

absl::Status CheckLength(size_t samples, size_t padding) {
  const size_t length = samples + padding;
  if (length <= kReflect) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio has ", samples, " samples and padding ", padding,
                     ": Whisper's reflect padding needs more than ", kReflect,
                     " samples in all (and one frame is ", kHop,
                     "); send at least 201 samples (audio + padding)"));
  }
  return absl::OkStatus();
}

int GainForInt16(absl::Span<const int16_t> audio) {
  int peak = 0;
  for (int16_t s : audio) peak = std::max(peak, std::abs(int{s}));
  return GainForPeak(peak);
}

absl::StatusOr<int> GainForFloat(absl::Span<const float> audio) {
  float peak = 0;
  for (size_t i = 0; i < audio.size(); ++i) {
    if (!std::isfinite(audio[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "audio sample ", i, " is ", std::isnan(audio[i]) ? "NaN" : "infinite",
          "; FP32 audio must be finite (full scale 1.0)"));
    }
    peak = std::max(peak, std::fabs(audio[i]));
  }
  return GainForPeak(static_cast<double>(peak) * 32768.0);
}

void BuildPcmInt16(absl::Span<const int16_t> audio, size_t padding, int gain,
                   int16_t* out) {
  BuildPcm(
      audio, padding,
      [gain](int16_t s) {
        return Saturate(std::ldexp(static_cast<double>(s), gain));
      },
      out);
}

void BuildPcmFloat(absl::Span<const float> audio, size_t padding, int gain,
                   int16_t* out) {
  BuildPcm(
      audio, padding,
      [gain](float x) {
        // Exact: a power of two times a float, in double.
        return Saturate(
            std::nearbyint(std::ldexp(static_cast<double>(x), 15 + gain)));
      },
      out);
}

void Features(absl::Span<const int16_t> l, size_t bands, size_t frames,
              int gain, float* out) {
  const double correction = 2.0 * gain * std::log10(2.0);
  constexpr double kStep = 1.0 / 256;  // mel::LogMelQ8's Q8
  std::vector<double> log(bands * frames);
  double top = -10.0;
  for (size_t t = 0; t < frames; ++t) {
    for (size_t m = 0; m < bands; ++m) {
      const double v = std::max(l[t * bands + m] * kStep - correction, -10.0);
      log[m * frames + t] = v;
      top = std::max(top, v);
    }
  }
  const double floor = top - 8.0;
  for (size_t i = 0; i < log.size(); ++i) {
    out[i] = static_cast<float>((std::max(log[i], floor) + 4.0) / 4.0);
  }
}

}  // namespace npuk::logmel
