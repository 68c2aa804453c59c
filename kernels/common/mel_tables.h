// Constant tables of the mel kernels, built at compile time from
// const_math.h: the periodic Hann window, the DFT cosine table, the Slaney mel
// filterbanks Whisper uses (librosa.filters.mel(sr=16000, n_fft=400,
// n_mels=80 or 128), htk=False, norm="slaney") and the log2 table. All Q30
// unless said otherwise. About 6 KB per kernel (the filterbank of a band
// count exists only in the objects that use it), small enough for an AIE2
// core.
#ifndef NPUK_KERNELS_COMMON_MEL_TABLES_H_
#define NPUK_KERNELS_COMMON_MEL_TABLES_H_

#include <cstdint>

#include "kernels/common/const_math.h"

namespace npuk::mel {

inline constexpr int kFrameSamples = 400;               // 25 ms at 16 kHz
inline constexpr int kFftBins = kFrameSamples / 2 + 1;  // 201
inline constexpr int kMelBands = 80;      // the mel kernel (Whisper v1-v3)
inline constexpr int kMel128Bands = 128;  // mel128 (large-v3, large-v3-turbo)
inline constexpr double kSampleRate = 16000.0;

inline constexpr int32_t kOneQ30 = int32_t{1} << 30;

struct WindowTable {
  int32_t w[kFrameSamples];
};

// Periodic Hann: w[n] = 0.5 - 0.5 cos(2 pi n / 400), Q30 (w[200] = 2^30).
constexpr WindowTable MakeWindow() {
  WindowTable t{};
  for (int n = 0; n < kFrameSamples; ++n) {
    t.w[n] = static_cast<int32_t>(
        cmath::Round((0.5 - 0.5 * cmath::CosTurn(n, kFrameSamples)) * kOneQ30));
  }
  return t;
}

// cos(2 pi j / 400), Q30, j = 0..399. Only j in [0, 100] is evaluated; the
// rest follows by exact integer symmetry (cos[400 - j] = cos[j],
// cos[200 - j] = -cos[j]), so every identity the CPU backend's folded DFT
// relies on holds bit for bit. sin(2 pi j / 400) = cos[(j + 300) % 400].
struct CosTable {
  int32_t v[kFrameSamples];
};

constexpr CosTable MakeCosTable() {
  CosTable t{};
  constexpr int kQuarter = kFrameSamples / 4;
  for (int j = 0; j <= kQuarter; ++j) {
    t.v[j] = static_cast<int32_t>(
        cmath::Round(cmath::CosTurn(j, kFrameSamples) * kOneQ30));
  }
  for (int j = kQuarter + 1; j <= 2 * kQuarter; ++j) {
    t.v[j] = -t.v[2 * kQuarter - j];
  }
  for (int j = 2 * kQuarter + 1; j < kFrameSamples; ++j) {
    t.v[j] = t.v[kFrameSamples - j];
  }
  return t;
}

// Slaney mel scale, as librosa.hz_to_mel / mel_to_hz with htk=False.
inline constexpr double kMelFreqStep = 200.0 / 3.0;
inline constexpr double kMelMinLogHz = 1000.0;
inline constexpr double kMelMinLogMel = kMelMinLogHz / kMelFreqStep;  // 15

constexpr double HzToMel(double hz) {
  if (hz < kMelMinLogHz) return hz / kMelFreqStep;
  return kMelMinLogMel +
         cmath::Log(hz / kMelMinLogHz) / (cmath::Log(6.4) / 27.0);
}

constexpr double MelToHz(double mel) {
  if (mel < kMelMinLogMel) return mel * kMelFreqStep;
  return kMelMinLogHz *
         cmath::Exp((cmath::Log(6.4) / 27.0) * (mel - kMelMinLogMel));
}

// Weights in Q20 (the largest Slaney weight is below 0.03 for 80 bands and
// below 0.05 for 128, so they fit in 16 bits), stored sparsely: filter m
// covers bins [first[m], first[m] + count[m]) with weights at
// weight[offset[m] ...]. Adjacent triangles overlap by half, so a bin is in
// at most two filters whatever the band count.
inline constexpr int kFilterWeightBits = 20;
inline constexpr int kMaxFilterWeights = 2 * kFftBins;

template <int Bands>
struct FilterbankTableOf {
  static constexpr int kBands = Bands;
  int16_t first[Bands];
  int16_t count[Bands];
  int16_t offset[Bands];
  int32_t weight[kMaxFilterWeights];
  int total;
};
using FilterbankTable = FilterbankTableOf<kMelBands>;

// Weight of FFT bin k in the triangle over band edges f[0] < f[1] < f[2].
constexpr double SlaneyWeight(const double* f, int k) {
  const double hz = kSampleRate * k / kFrameSamples;
  const double lower = (hz - f[0]) / (f[1] - f[0]);
  const double upper = (f[2] - hz) / (f[2] - f[1]);
  double w = lower < upper ? lower : upper;
  if (w < 0) w = 0;
  return w * 2.0 / (f[2] - f[0]);  // norm="slaney": constant area in Hz
}

// Evaluated once per band edge so that clang's default constexpr step
// budget suffices (Peano builds need no extra flag).
template <int Bands>
constexpr FilterbankTableOf<Bands> MakeFilterbank() {
  // librosa.filters.mel: mel_f = mel_to_hz(linspace(mel(0), mel(8000),
  // Bands + 2)).
  double edges[Bands + 2] = {};
  const double mel_max = HzToMel(kSampleRate / 2);
  for (int i = 0; i < Bands + 2; ++i) {
    edges[i] = MelToHz(mel_max * static_cast<double>(i) /
                       static_cast<double>(Bands + 1));
  }
  FilterbankTableOf<Bands> t{};
  int total = 0;
  for (int m = 0; m < Bands; ++m) {
    int first = -1, last = -1;
    int32_t q[kFftBins] = {};
    for (int k = 0; k < kFftBins; ++k) {
      q[k] = static_cast<int32_t>(
          cmath::Round(SlaneyWeight(edges + m, k) * (1 << kFilterWeightBits)));
      if (q[k] != 0) {
        if (first < 0) first = k;
        last = k;
      }
    }
    if (first < 0) first = last = 0;  // never for these parameters
    t.first[m] = static_cast<int16_t>(first);
    t.count[m] = static_cast<int16_t>(last - first + 1);
    t.offset[m] = static_cast<int16_t>(total);
    for (int k = first; k <= last; ++k) t.weight[total++] = q[k];
  }
  t.total = total;
  return t;
}

// log2(1 + i/128), i = 0..128, Q30.
inline constexpr int kLog2TableBits = 7;

struct Log2Table {
  int32_t v[(1 << kLog2TableBits) + 1];
};

constexpr Log2Table MakeLog2Table() {
  Log2Table t{};
  for (int i = 0; i <= (1 << kLog2TableBits); ++i) {
    t.v[i] = static_cast<int32_t>(cmath::Round(
        cmath::Log(1.0 + i / static_cast<double>(1 << kLog2TableBits)) /
        cmath::kLn2 * kOneQ30));
  }
  return t;
}

inline constexpr WindowTable kWindow = MakeWindow();
inline constexpr CosTable kCos = MakeCosTable();
// A variable template: a band count's table is evaluated and emitted only
// where it is used, so the 80-band AIE object carries no 128-band table.
template <int Bands>
inline constexpr FilterbankTableOf<Bands> kFilterbankOf =
    MakeFilterbank<Bands>();
inline constexpr const FilterbankTable& kFilterbank = kFilterbankOf<kMelBands>;
inline constexpr Log2Table kLog2 = MakeLog2Table();

}  // namespace npuk::mel

#endif  // NPUK_KERNELS_COMMON_MEL_TABLES_H_
