// The log_mel host math (log_mel_math.h), and the whole pipeline (host
// pre-processing, the mel_pcm / mel128_pcm reference kernels, host
// post-processing) against a double-precision implementation of Whisper's
// log_mel_spectrogram written here from its definition (reflect pad,
// periodic Hann 400, DFT, |X|^2, Slaney filterbank, log10, max - 8,
// (x + 4) / 4). The comparison with whisper's own audio.py is
// tests/whisper (logmel-client).
#include "server/models/log_mel_math.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/registry/registry.h"

namespace npuk::logmel {
namespace {

TEST(LogMelMath, LengthFollowsWhisper) {
  EXPECT_FALSE(CheckLength(0, 0).ok());
  EXPECT_FALSE(CheckLength(200, 0).ok());  // torch: pad must be < length
  EXPECT_FALSE(CheckLength(100, 100).ok());
  EXPECT_TRUE(CheckLength(201, 0).ok());
  EXPECT_TRUE(CheckLength(0, 480000).ok());  // transcribe()'s padded form
  EXPECT_EQ(Frames(201, 0), 1u);
  EXPECT_EQ(Frames(0, 480000), 3000u);
  EXPECT_EQ(Frames(16000, 480000), 3100u);
}

TEST(LogMelMath, GainUsesTheInt16Range) {
  EXPECT_EQ(GainForInt16(std::vector<int16_t>(10, 0)), 0);
  EXPECT_EQ(GainForInt16(std::vector<int16_t>{32767}), 0);
  EXPECT_EQ(GainForInt16(std::vector<int16_t>{-32768}), -1);
  EXPECT_EQ(GainForInt16(std::vector<int16_t>{16384}), 0);
  EXPECT_EQ(GainForInt16(std::vector<int16_t>{16383}), 1);
  EXPECT_EQ(GainForInt16(std::vector<int16_t>{-1, 1}), 14);
  EXPECT_EQ(*GainForFloat(std::vector<float>{0.f, 0.f}), 0);
  EXPECT_EQ(*GainForFloat(std::vector<float>{1.0f}), -1);
  EXPECT_EQ(*GainForFloat(std::vector<float>{0.5f}), 0);
  EXPECT_EQ(*GainForFloat(std::vector<float>{0.01f}), 6);  // 327.68 -> x64
  EXPECT_EQ(*GainForFloat(std::vector<float>{1e-30f}), kMaxGain);
  EXPECT_EQ(*GainForFloat(std::vector<float>{3000.f}), -12);
}

TEST(LogMelMath, NonFiniteFloatIsRefused) {
  std::vector<float> a(10, 0.1f);
  a[7] = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<int> g = GainForFloat(a);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("sample 7 is NaN"), std::string::npos);
  a[7] = -std::numeric_limits<float>::infinity();
  g = GainForFloat(a);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("infinite"), std::string::npos);
}

TEST(LogMelMath, PcmIsReflectedScaledAndPadded) {
  std::vector<int16_t> audio(300);
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = int16_t(i + 1);
  const size_t padding = 50;
  std::vector<int16_t> pcm(PcmSamples(audio.size() + padding));
  BuildPcmInt16(audio, padding, 2, pcm.data());
  ASSERT_EQ(pcm.size(), 750u);
  // torch reflect: p[200 - k] = x[k], p[200 + i] = x[i],
  // p[200 + L - 1 + k] = x[L - 1 - k], x = audio then zeros (L = 350).
  for (size_t k = 1; k <= 200; ++k) EXPECT_EQ(pcm[200 - k], 4 * audio[k]);
  for (size_t i = 0; i < 300; ++i) EXPECT_EQ(pcm[200 + i], 4 * audio[i]);
  for (size_t i = 300; i < 350; ++i) EXPECT_EQ(pcm[200 + i], 0);
  for (size_t k = 1; k <= 200; ++k) {
    const size_t i = 349 - k;
    EXPECT_EQ(pcm[549 + k], i < 300 ? 4 * audio[i] : 0) << k;
  }
  std::vector<float> f(audio.size());
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(audio[i]) / 32768.f;
  std::vector<int16_t> from_float(pcm.size());
  BuildPcmFloat(f, padding, 2, from_float.data());
  EXPECT_EQ(from_float, pcm);
  // Rounding to nearest, ties to even: 0.5 and 1.5 int16 steps.
  std::vector<float> ties(201, 0.f);
  ties[0] = 0.5f / 32768.f;
  ties[1] = 1.5f / 32768.f;
  ties[2] = -2.5f / 32768.f;
  std::vector<int16_t> t(PcmSamples(201));
  BuildPcmFloat(ties, 0, 0, t.data());
  EXPECT_EQ(t[200], 0);
  EXPECT_EQ(t[201], 2);
  EXPECT_EQ(t[202], -2);
}

TEST(LogMelMath, FeaturesFollowWhisper) {
  // Silence: every value at the floor gives Whisper's silence, whatever
  // gain.
  const size_t bands = 80, frames = 3;
  std::vector<int16_t> l(bands * frames, -2560);
  std::vector<float> out(l.size());
  for (int gain : {0, 14, 30}) {
    Features(l, bands, frames, gain, out.data());
    for (float v : out) EXPECT_FLOAT_EQ(v, -1.5f);
  }
  // Frame-major in, band-major out; max - 8 clamp; gain correction.
  for (size_t t = 0; t < frames; ++t) {
    for (size_t m = 0; m < bands; ++m) {
      l[t * bands + m] = static_cast<int16_t>(40 * (int(m) - 60) + int(t));
    }
  }
  const int gain = 3;
  const double c = 6 * std::log10(2.0);
  const double top = (40 * 19 + 2) / 256.0 - c;
  Features(l, bands, frames, gain, out.data());
  int clamped = 0;
  for (size_t m = 0; m < bands; ++m) {
    for (size_t t = 0; t < frames; ++t) {
      double v = std::max(l[t * bands + m] / 256.0 - c, -10.0);
      clamped += v < top - 8;
      v = std::max(v, top - 8);
      EXPECT_NEAR(out[m * frames + t], (v + 4) / 4, 1e-6) << m << " " << t;
    }
  }
  EXPECT_GT(clamped, 0);
}

// --- Whisper's algorithm in double precision, for the float check -------

double HzToMel(double f) {  // Slaney (librosa htk=False)
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0;
  const double min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return f < min_log_hz ? f / f_sp
                        : min_log_mel + std::log(f / min_log_hz) / logstep;
}

double MelToHz(double m) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0;
  const double min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return m < min_log_mel ? m * f_sp
                         : min_log_hz * std::exp(logstep * (m - min_log_mel));
}

// librosa.filters.mel(sr=16000, n_fft=400, n_mels, norm="slaney"):
// [bands][201].
std::vector<std::vector<double>> Filterbank(int bands) {
  std::vector<double> hz(bands + 2);
  const double lo = HzToMel(0), hi = HzToMel(8000);
  for (int i = 0; i < bands + 2; ++i) {
    hz[i] = MelToHz(lo + (hi - lo) * i / (bands + 1));
  }
  std::vector<std::vector<double>> w(bands, std::vector<double>(201));
  for (int m = 0; m < bands; ++m) {
    for (int k = 0; k <= 200; ++k) {
      const double f = 16000.0 * k / 400;
      const double lower = (f - hz[m]) / (hz[m + 1] - hz[m]);
      const double upper = (hz[m + 2] - f) / (hz[m + 2] - hz[m + 1]);
      w[m][k] =
          std::max(0.0, std::min(lower, upper)) * 2.0 / (hz[m + 2] - hz[m]);
    }
  }
  return w;
}

// [bands][frames] in Whisper's normalised units.
std::vector<double> WhisperReference(const std::vector<double>& audio,
                                     size_t padding, int bands) {
  std::vector<double> x = audio;
  x.resize(audio.size() + padding, 0.0);
  const auto n = static_cast<int64_t>(x.size());
  std::vector<double> p(x.size() + 400);
  for (int64_t j = 0; j < static_cast<int64_t>(p.size()); ++j) {
    int64_t i = j - 200;
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    p[static_cast<size_t>(j)] = x[static_cast<size_t>(i)];
  }
  const size_t frames = x.size() / 160;
  const auto w = Filterbank(bands);
  std::vector<double> cosk(400), sink(400), hann(400);
  for (int i = 0; i < 400; ++i) {
    cosk[i] = std::cos(2 * std::numbers::pi * i / 400);
    sink[i] = std::sin(2 * std::numbers::pi * i / 400);
    hann[i] = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / 400);
  }
  std::vector<double> out(static_cast<size_t>(bands) * frames);
  double top = -1e300;
  std::vector<double> power(201);
  for (size_t t = 0; t < frames; ++t) {
    for (int k = 0; k <= 200; ++k) {
      double re = 0, im = 0;
      for (int i = 0; i < 400; ++i) {
        const double v = p[t * 160 + i] * hann[i];
        re += v * cosk[(k * i) % 400];
        im -= v * sink[(k * i) % 400];
      }
      power[k] = re * re + im * im;
    }
    for (int m = 0; m < bands; ++m) {
      double e = 0;
      for (int k = 0; k <= 200; ++k) e += w[m][k] * power[k];
      const double l = std::log10(std::max(e, 1e-10));
      out[m * frames + t] = l;
      top = std::max(top, l);
    }
  }
  for (double& v : out) v = (std::max(v, top - 8) + 4) / 4;
  return out;
}

// Our pipeline on float audio: host pre-processing, the kernel's reference
// over the windows, host post-processing.
std::vector<float> Pipeline(const std::vector<float>& audio, size_t padding,
                            int bands) {
  const KernelSpec* k = FindKernel(bands == 80 ? "mel_pcm" : "mel128_pcm");
  EXPECT_NE(k, nullptr);
  const int gain = *GainForFloat(audio);
  std::vector<int16_t> pcm(PcmSamples(audio.size() + padding));
  BuildPcmFloat(audio, padding, gain, pcm.data());
  const size_t frames = Frames(audio.size(), padding);
  std::vector<int16_t> l(frames * bands);
  const uint8_t* in[] = {reinterpret_cast<const uint8_t*>(pcm.data())};
  k->reference(in, reinterpret_cast<uint8_t*>(l.data()), frames);
  std::vector<float> out(l.size());
  Features(l, bands, frames, gain, out.data());
  return out;
}

struct Signal {
  const char* name;
  std::vector<float> audio;
  size_t padding = 0;
};

std::vector<Signal> Signals() {
  std::mt19937 rng(11);
  std::normal_distribution<double> g(0.0, 1.0);
  const double kPi = std::numbers::pi;
  auto make = [&](const char* name, size_t n, auto f, size_t padding = 0) {
    Signal s{name, std::vector<float>(n), padding};
    for (size_t i = 0; i < n; ++i) s.audio[i] = static_cast<float>(f(i));
    return s;
  };
  auto voiced = [&](size_t i, double scale) {
    // 120-180 Hz gliding harmonics with formants, plus breath noise.
    const double t = i / 16000.0;
    const double f0 = 120 + 60 * std::sin(2 * kPi * 1.3 * t);
    double x = 0;
    for (int h = 1; h * f0 < 7500; ++h) {
      const double f = h * f0;
      const double amp = 1 / (1 + std::pow((f - 700) / 150, 2)) +
                         0.5 / (1 + std::pow((f - 1200) / 200, 2)) +
                         0.2 / (1 + std::pow((f - 2600) / 300, 2));
      x += 0.1 * amp *
           std::sin(2 * kPi *
                    (120 * h * t -
                     60 * h * std::cos(2 * kPi * 1.3 * t) / (2 * kPi * 1.3)));
    }
    return scale * (x + 0.003 * g(rng));
  };
  std::vector<Signal> s;
  s.push_back(make("speech", 16000, [&](size_t i) { return voiced(i, 1.0); }));
  s.push_back(
      make("speech_-40dBFS", 16000, [&](size_t i) { return voiced(i, 0.01); }));
  s.push_back(make("clipped", 8000, [&](size_t i) {
    return std::clamp(voiced(i, 8.0), -1.0, 1.0);
  }));
  s.push_back(make("tones", 8000, [&](size_t i) {
    return 0.3 * std::sin(2 * kPi * 440 * i / 16000.0) +
           0.05 * std::sin(2 * kPi * 3150 * i / 16000.0);
  }));
  s.push_back(make("low_noise", 8000, [&](size_t) { return 1e-4 * g(rng); }));
  s.push_back(make("leading_silence", 12000,
                   [&](size_t i) { return i < 6000 ? 0.0 : voiced(i, 0.5); }));
  s.push_back(make(
      "padded", 4000, [&](size_t i) { return voiced(i, 0.3); }, 16000));
  s.push_back(make("silence", 3200, [](size_t) { return 0.0; }));
  return s;
}

TEST(LogMelMath, PipelineMeetsTheBoundsAgainstDoubleWhisper) {
  for (int bands : {80, 128}) {
    for (const Signal& s : Signals()) {
      std::vector<double> audio(s.audio.begin(), s.audio.end());
      const std::vector<double> want =
          WhisperReference(audio, s.padding, bands);
      const std::vector<float> got = Pipeline(s.audio, s.padding, bands);
      ASSERT_EQ(got.size(), want.size()) << s.name;
      double max_d = 0, sum_d = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double d = std::fabs(got[i] - want[i]);
        max_d = std::max(max_d, d);
        sum_d += d;
      }
      const double mean_d = sum_d / got.size();
      EXPECT_LE(max_d, 0.02) << s.name << " bands " << bands;
      EXPECT_LE(mean_d, 0.006) << s.name << " bands " << bands;
      std::printf("%-16s %3d bands: max |d| %.4f mean %.5f\n", s.name, bands,
                  max_d, mean_d);
    }
  }
}

}  // namespace
}  // namespace npuk::logmel
