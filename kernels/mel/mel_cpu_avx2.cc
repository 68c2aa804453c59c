// The AVX2 path of the mel kernel's CPU backend (compiled with -mavx2
// -mfma on x86 only; called after a run-time CPU check). Never compiled
// for the AIE cores: intrinsics live only in *_cpu_avx2.cc files.
//
// Bit-exactness with the kernel entries comes from two rules:
//  - Parts that are exact integer arithmetic (q.k scores, sums of
//    exponentials, p.v sums, the filterbank sums) may be reordered and
//    vectorised freely: they give the same integers in any order.
//  - Every rounding step (windowing, the FFT's, the 2^-y exponential,
//    probabilities, the final shift) is the formula of kernels/common,
//    applied lane by lane with the same operand widths, or the scalar
//    helper itself. The mel spectrum is mel_fft.h's template itself, run
//    with 4 frames per register (Avx2FftOps).
#include <cstdint>
#include <cstring>

#include "kernels/common/mel_fft.h"
#include "kernels/common/mel_math.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/mel/mel_kernel.h"

#if defined(__x86_64__) && defined(__AVX2__)
#include <immintrin.h>

namespace npuk::cpu {
namespace {

// ----------------------------------------------------------------- mel ----

constexpr int kSamples = mel::kFrameSamples;  // 400
constexpr int kBins = mel::kFftBins;          // 201
constexpr int kGroup = 4;  // frames per register, one per 64-bit lane

// The integer FFT of mel_fft.h for 4 frames at once. A value is an int32
// in the low half of each 64-bit lane (the high half is don't-care:
// _mm256_mul_epi32 reads only the low half, sign-extended, and every value
// fits int32, so wrapping adds and logical shifts give the right low
// halves); an accumulator is an exact int64 per lane.
class Avx2FftOps {
 public:
  // A struct, not __m256i itself: a vector type loses its attributes as a
  // template argument (of fft::Cx).
  struct V {
    __m256i x;
  };
  using A = __m256i;

  // samples: [400][4] int16, sample n of frame g at samples[4 n + g].
  // power: [201][4], P[k] of frame g at power[4 k + g].
  Avx2FftOps(const int16_t* samples, uint64_t* power)
      : samples_(samples), power_(power) {}

  V Sample(int n) const {
    const __m256i x = _mm256_cvtepi16_epi64(_mm_loadl_epi64(
        reinterpret_cast<const __m128i*>(samples_ + kGroup * n)));
    return Round(Mul(V{x}, mel::kWindow.w[n]), mel::kWindowShift);
  }
  static V Prep(V v) { return v; }
  static A Mul(V v, int32_t c) {
    return _mm256_mul_epi32(v.x, _mm256_set1_epi32(c));
  }
  static A Mac(A a, V v, int32_t c) { return _mm256_add_epi64(a, Mul(v, c)); }
  static A Lift(V v) { return Mul(v, mel::kOneQ30); }
  static A AddA(A a, A b) { return _mm256_add_epi64(a, b); }
  static A SubA(A a, A b) { return _mm256_sub_epi64(a, b); }
  // floor((a + 2^(s-1)) / 2^s). AVX2 has no 64-bit arithmetic shift; the
  // logical one has the right low 32 bits while s <= 32, and beyond that
  // the sum's high half (a logical shift by 32) is shifted arithmetically.
  static V Round(A a, int s) {
    const __m256i t =
        _mm256_add_epi64(a, _mm256_set1_epi64x(int64_t{1} << (s - 1)));
    if (s <= 32) return V{_mm256_srli_epi64(t, s)};
    return V{_mm256_srai_epi32(_mm256_srli_epi64(t, 32), s - 32)};
  }
  static V Add(V a, V b) { return V{_mm256_add_epi32(a.x, b.x)}; }
  static V Sub(V a, V b) { return V{_mm256_sub_epi32(a.x, b.x)}; }
  void Put(int i, V v) { scratch_[i] = v.x; }
  V Get(int i) const { return V{scratch_[i]}; }
  static void Loop() {}
  // P[k] = re^2 + im^2 per lane (PowerSpectrum's formula).
  void Emit(int k, V re, V im) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(power_ + kGroup * k),
                       _mm256_add_epi64(_mm256_mul_epi32(re.x, re.x),
                                        _mm256_mul_epi32(im.x, im.x)));
  }

 private:
  const int16_t* samples_;
  uint64_t* power_;
  __m256i scratch_[kSamples];
};

// Frames g = 0..3 of `in` ([4][400]) as [400][4].
void Interleave4(const int16_t* in, int16_t* out) {
  for (int n = 0; n < kSamples; n += 8) {
    const __m128i f0 =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + n));
    const __m128i f1 =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + kSamples + n));
    const __m128i f2 = _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(in + 2 * kSamples + n));
    const __m128i f3 = _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(in + 3 * kSamples + n));
    const __m128i lo01 = _mm_unpacklo_epi16(f0, f1);
    const __m128i hi01 = _mm_unpackhi_epi16(f0, f1);
    const __m128i lo23 = _mm_unpacklo_epi16(f2, f3);
    const __m128i hi23 = _mm_unpackhi_epi16(f2, f3);
    auto* o = reinterpret_cast<__m128i*>(out + kGroup * n);
    _mm_storeu_si128(o + 0, _mm_unpacklo_epi32(lo01, lo23));
    _mm_storeu_si128(o + 1, _mm_unpackhi_epi32(lo01, lo23));
    _mm_storeu_si128(o + 2, _mm_unpacklo_epi32(hi01, hi23));
    _mm_storeu_si128(o + 3, _mm_unpackhi_epi32(hi01, hi23));
  }
}

// Power, filterbank and log of 4 frames, one frame per 64-bit lane; the
// same integer formulas as mel::LogMelFromSpectrum<Bands> (the power split
// into 32-bit halves, each times the Q20 weight, recombined at Q14).
// Out is int8_t (QuantizeLogMel, the framed kernels) or int16_t (LogMelQ8,
// the windowed kernels mel_pcm / mel128_pcm).
template <typename Out>
Out LogMelOut(uint64_t energy) {
  if constexpr (sizeof(Out) == 1) {
    return mel::QuantizeLogMel(energy);
  } else {
    return mel::LogMelQ8(energy);
  }
}

template <int Bands, typename Out>
void LogMel4(const uint64_t (*power)[kGroup], Out* out) {
  const mel::FilterbankTableOf<Bands>& fb = mel::kFilterbankOf<Bands>;
  for (int m = 0; m < Bands; ++m) {
    const int first = fb.first[m];
    const int count = fb.count[m];
    const int32_t* w = fb.weight + fb.offset[m];
    __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
    for (int i = 0; i < count; ++i) {
      const __m256i p =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(power[first + i]));
      const __m256i weight = _mm256_set1_epi64x(w[i]);
      hi = _mm256_add_epi64(hi,
                            _mm256_mul_epu32(_mm256_srli_epi64(p, 32), weight));
      lo = _mm256_add_epi64(lo, _mm256_mul_epu32(p, weight));
    }
    alignas(32) uint64_t energy[kGroup];
    _mm256_store_si256(
        reinterpret_cast<__m256i*>(energy),
        _mm256_add_epi64(_mm256_slli_epi64(hi, 16), _mm256_srli_epi64(lo, 16)));
    for (int g = 0; g < kGroup; ++g) {
      out[g * Bands + m] = LogMelOut<Out>(energy[g]);
    }
  }
}

// Frames `in` ([4][400]) to out ([4][Bands]).
template <int Bands, typename Out>
void MelGroup(const int16_t* in, Out* out) {
  alignas(32) int16_t samples[kSamples * kGroup];
  Interleave4(in, samples);
  alignas(32) uint64_t power[kBins][kGroup];
  Avx2FftOps ops(samples, &power[0][0]);
  mel::fft::Run(ops);
  LogMel4<Bands, Out>(power, out);
}

template <int Bands, typename Out>
void Frames(const int16_t* in, Out* out, size_t n) {
  size_t i = 0;
  for (; i + kGroup <= n; i += kGroup) {
    MelGroup<Bands, Out>(in + i * kSamples, out + i * Bands);
  }
  if (i == n) return;
  // The last 1-3 frames, padded with silence.
  const size_t rest = n - i;
  int16_t padded[kGroup * kSamples] = {};
  std::memcpy(padded, in + i * kSamples, rest * kSamples * sizeof(int16_t));
  Out padded_out[kGroup * Bands];
  MelGroup<Bands, Out>(padded, padded_out);
  std::memcpy(out + i * Bands, padded_out, rest * Bands * sizeof(Out));
}

}  // namespace

template <int Bands>
void LogMelFramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  Frames<Bands, int8_t>(in, out, n);
}

template <int Bands>
void LogMelQ8FramesAvx2(const int16_t* in, int16_t* out, size_t n) {
  Frames<Bands, int16_t>(in, out, n);
}

template void LogMelFramesAvx2<mel::kMelBands>(const int16_t*, int8_t*, size_t);
template void LogMelFramesAvx2<mel::kMel128Bands>(const int16_t*, int8_t*,
                                                  size_t);
template void LogMelQ8FramesAvx2<mel::kMelBands>(const int16_t*, int16_t*,
                                                 size_t);
template void LogMelQ8FramesAvx2<mel::kMel128Bands>(const int16_t*, int16_t*,
                                                    size_t);

void MelFramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  LogMelFramesAvx2<mel::kMelBands>(in, out, n);
}

}  // namespace npuk::cpu

#else  // not x86 with AVX2: HasAvx2() is false and these are never chosen.

namespace npuk::cpu {

// The scalar formulas the kernel entries run.
template <int Bands>
void LogMelFramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    mel::LogMelFrame<Bands>(in + i * mel::kFrameSamples, out + i * Bands);
  }
}

template void LogMelFramesAvx2<mel::kMelBands>(const int16_t*, int8_t*, size_t);
template void LogMelFramesAvx2<mel::kMel128Bands>(const int16_t*, int8_t*,
                                                  size_t);

template <int Bands>
void LogMelQ8FramesAvx2(const int16_t* in, int16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    mel::LogMelQ8Frame<Bands>(in + i * mel::kFrameSamples, out + i * Bands);
  }
}

template void LogMelQ8FramesAvx2<mel::kMelBands>(const int16_t*, int16_t*,
                                                 size_t);
template void LogMelQ8FramesAvx2<mel::kMel128Bands>(const int16_t*, int16_t*,
                                                    size_t);

void MelFramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  MelFramesPortable(in, out, n);
}

}  // namespace npuk::cpu

#endif
