// Writes kernels/golden/golden_data.cc: golden inputs for both kernels and
// the outputs the reference kernel entries give for them.
//
//   npuk_make_golden kernels/golden/golden_data.cc
//
// Inputs come from a fixed xorshift generator and fixed signal recipes, so
// a rerun on the same platform rewrites the same file. The committed file
// is the contract: tests/kernels/golden_test.cc checks that the reference
// kernels still reproduce its outputs.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <string>
#include <vector>

#include "kernels/attention/attention_kernel.h"
#include "kernels/common/score_scale.h"
#include "kernels/mel/mel_kernel.h"

namespace {

constexpr int kMelFrames = 8;
constexpr int kAttentionTiles = 4;
constexpr double kSampleRate = 16000.0;

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Gaussian() {
    const double u = 1.0 - Uniform();
    return std::sqrt(-2.0 * std::log(u)) *
           std::cos(2.0 * std::numbers::pi * Uniform());
  }

 private:
  uint64_t state_;
};

int16_t ToInt16(double x) {  // x in full-scale units
  const double s = std::nearbyint(x * 32768.0);
  return static_cast<int16_t>(s > 32767 ? 32767 : (s < -32768 ? -32768 : s));
}

double Tone(double hz, int n) {
  return std::sin(2.0 * std::numbers::pi * hz * n / kSampleRate);
}

std::vector<int16_t> MelInput() {
  Rng rng(0x6d656c31);
  std::vector<int16_t> in;
  for (int frame = 0; frame < kMelFrames; ++frame) {
    for (int n = 0; n < 400; ++n) {
      double x = 0;
      switch (frame) {
        case 0:  // voiced: 120 Hz harmonics shaped by formants 700/1200/2600
          for (int h = 1; h * 120.0 < 7800.0; ++h) {
            const double f = h * 120.0;
            const double gain = 1.0 / (1.0 + std::pow((f - 700) / 150, 2)) +
                                0.5 / (1.0 + std::pow((f - 1200) / 200, 2)) +
                                0.2 / (1.0 + std::pow((f - 2600) / 300, 2));
            x += 0.08 * gain * Tone(f, n + 17 * h);
          }
          x += 0.002 * rng.Gaussian();
          break;
        case 1:  // fricative: noise with a high-pass tilt
          x = 0.05 * rng.Gaussian();
          break;
        case 2:  // two tones
          x = 0.3 * Tone(440.0, n) + 0.05 * Tone(3150.0, n);
          break;
        case 3:  // linear chirp 100 Hz -> 7 kHz over the frame
          x = 0.5 * std::sin(2.0 * std::numbers::pi *
                             (100.0 * n + 0.5 * 6900.0 * n * n / 400.0) /
                             kSampleRate);
          break;
        case 4:  // clipping square wave at 1 kHz
          x = Tone(1000.0, n) >= 0 ? 1.0 : -1.0;
          break;
        case 5:  // white noise, loud
          x = 0.25 * rng.Gaussian();
          break;
        case 6:  // quiet: -60 dBFS tone plus low noise
          x = 0.001 * Tone(250.0, n) + 0.0001 * rng.Gaussian();
          break;
        default:  // impulses every 80 samples over DC
          x = 0.1 + (n % 80 == 3 ? 0.8 : 0.0);
          break;
      }
      if (frame == 1 && n > 0) {
        // First difference tilts the noise spectrum toward high frequencies.
        x = x - 0.9 * (in.back() / 32768.0);
      }
      in.push_back(ToInt16(x));
    }
  }
  return in;
}

struct AttentionData {
  std::vector<int8_t> qkv;
  npuk::ScoreScale scale;
};

AttentionData AttentionInput() {
  Rng rng(0x6174746e);
  const double sigma[kAttentionTiles] = {1.0, 1.5, 2.0, 3.0};
  std::vector<double> x;
  for (int t = 0; t < kAttentionTiles; ++t) {
    for (int i = 0; i < 3 * 4096; ++i) x.push_back(sigma[t] * rng.Gaussian());
  }
  // One scale for all tensors of all tiles, so one score scale serves them.
  double max_abs = 0;
  for (double v : x) max_abs = std::fmax(max_abs, std::fabs(v));
  const double s = max_abs / 127.0;
  AttentionData data;
  for (double v : x) {
    data.qkv.push_back(static_cast<int8_t>(std::nearbyint(v / s)));
  }
  data.scale = npuk::QuantizeScoreScale(s * s / 8.0);
  return data;
}

void WriteBytes(std::FILE* f, const char* name, const uint8_t* bytes,
                size_t size) {
  std::fprintf(f, "alignas(64) const uint8_t %s[%zu] = {", name, size);
  for (size_t i = 0; i < size; ++i) {
    std::fprintf(f, "%s%u,", i % 20 == 0 ? "\n    " : "", bytes[i]);
  }
  std::fprintf(f, "\n};\n\n");
}

bool AllZero(const int8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: %s OUT.cc\n  writes the golden vectors, e.g. to "
                 "kernels/golden/golden_data.cc\n",
                 argv[0]);
    return 2;
  }
  const std::vector<int16_t> mel_in = MelInput();
  std::vector<int8_t> mel_out(kMelFrames * npuk::kMelBands);
  for (int i = 0; i < kMelFrames; ++i) {
    mel_kernel_simple(mel_in.data() + i * npuk::kMelFrameSamples,
                      mel_out.data() + i * npuk::kMelBands);
    if (AllZero(mel_out.data() + i * npuk::kMelBands, npuk::kMelBands)) {
      std::fprintf(stderr,
                   "mel frame %d gives an all-zero output; change "
                   "its recipe\n",
                   i);
      return 1;
    }
  }
  const AttentionData att = AttentionInput();
  std::vector<int8_t> att_out(kAttentionTiles * npuk::kAttentionOutBytes);
  for (int t = 0; t < kAttentionTiles; ++t) {
    attention_64x64(att.qkv.data() + t * npuk::kAttentionInBytes,
                    att_out.data() + t * npuk::kAttentionOutBytes,
                    att.scale.multiplier, att.scale.shift);
    if (AllZero(att_out.data() + t * npuk::kAttentionOutBytes,
                npuk::kAttentionOutBytes)) {
      std::fprintf(stderr, "attention tile %d gives an all-zero output\n", t);
      return 1;
    }
  }

  std::FILE* f = std::fopen(argv[1], "w");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot open %s for writing\n", argv[1]);
    return 1;
  }
  std::fprintf(f,
               "// Generated by kernels/tools/make_golden.cc; do not edit.\n"
               "// Regenerate: npuk_make_golden kernels/golden/"
               "golden_data.cc\n"
               "#include \"kernels/golden/golden_data.h\"\n\n"
               "namespace npuk::golden::data {\n\n");
  std::fprintf(f, "const size_t kMelItems = %d;\n", kMelFrames);
  WriteBytes(f, "kMelInput", reinterpret_cast<const uint8_t*>(mel_in.data()),
             mel_in.size() * 2);
  WriteBytes(f, "kMelOutput", reinterpret_cast<const uint8_t*>(mel_out.data()),
             mel_out.size());
  std::fprintf(f, "const size_t kAttentionItems = %d;\n", kAttentionTiles);
  std::fprintf(f, "const int32_t kAttentionMultiplier = %d;\n",
               att.scale.multiplier);
  std::fprintf(f, "const int32_t kAttentionShift = %d;\n", att.scale.shift);
  WriteBytes(f, "kAttentionInput",
             reinterpret_cast<const uint8_t*>(att.qkv.data()), att.qkv.size());
  WriteBytes(f, "kAttentionOutput",
             reinterpret_cast<const uint8_t*>(att_out.data()), att_out.size());
  std::fprintf(f, "}  // namespace npuk::golden::data\n");
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "writing %s failed\n", argv[1]);
    return 1;
  }
  return 0;
}
