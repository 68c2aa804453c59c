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
#include "kernels/mel/mel_cpu_groups.h"
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

__m256i Splat64(int64_t x) { return _mm256_set1_epi64x(x); }

// The msb of each 64-bit lane (garbage where it is 0). AVX2 has no vector
// lzcnt: the nonzero 32-bit half that holds the msb, x, becomes the double
// 2^52 + x exactly (x ORed into the mantissa of 2^52, minus 2^52), whose
// exponent field is 1023 + msb(x).
__m256i Msb64(__m256i e) {
  const __m256i hi = _mm256_srli_epi64(e, 32);
  const __m256i high_zero = _mm256_cmpeq_epi64(hi, _mm256_setzero_si256());
  const __m256i x = _mm256_blendv_epi8(
      hi, _mm256_and_si256(e, Splat64(0xFFFFFFFF)), high_zero);
  const __m256i two52 = Splat64(0x4330000000000000);
  const __m256d d =
      _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, two52)),
                    _mm256_castsi256_pd(two52));
  const __m256i exponent = _mm256_sub_epi64(
      _mm256_srli_epi64(_mm256_castpd_si256(d), 52), Splat64(1023));
  return _mm256_add_epi64(exponent,
                          _mm256_andnot_si256(high_zero, Splat64(32)));
}

// log2_q24 = (Log2Q30(e) >> 6) - 44 2^24 per lane (mel_math.h; garbage
// where e = 0): Log2Q30 lane by lane, both table entries kLog2[i],
// kLog2[i + 1] in one 64-bit gather.
__m256i Log2Q24(__m256i e) {
  constexpr int kFracBits = 30 - mel::kLog2TableBits;  // 23
  const __m256i msb = Msb64(e);
  // max(x, 0) for the small shift counts: a 32-bit max per half gives the
  // 64-bit one (a negative count's high half is all ones, max'd to 0).
  const __m256i zero = _mm256_setzero_si256();
  const __m256i down =
      _mm256_max_epi32(_mm256_sub_epi64(msb, Splat64(30)), zero);
  const __m256i up = _mm256_max_epi32(_mm256_sub_epi64(Splat64(30), msb), zero);
  const __m256i mantissa = _mm256_sllv_epi64(_mm256_srlv_epi64(e, down), up);
  const __m256i f = _mm256_sub_epi64(mantissa, Splat64(int64_t{1} << 30));
  // & 127: a zero lane's garbage index stays in the table.
  const __m256i index =
      _mm256_and_si256(_mm256_srli_epi64(f, kFracBits), Splat64(127));
  const __m256i frac = _mm256_and_si256(f, Splat64((1 << kFracBits) - 1));
  const __m256i pair = _mm256_i64gather_epi64(
      reinterpret_cast<const long long*>(mel::kLog2.v), index, 4);
  const __m256i lo = _mm256_and_si256(pair, Splat64(0xFFFFFFFF));
  const __m256i hi = _mm256_srli_epi64(pair, 32);
  const __m256i interp = _mm256_srli_epi64(
      _mm256_mul_epu32(_mm256_sub_epi64(hi, lo), frac), kFracBits);
  const __m256i log2 = _mm256_add_epi64(
      _mm256_add_epi64(_mm256_slli_epi64(msb, 30), lo), interp);
  return _mm256_sub_epi64(_mm256_srli_epi64(log2, 6),
                          Splat64(int64_t{mel::kEnergyFracBits} << 24));
}

// The low 32 bits of each 64-bit lane.
__m128i Low32(__m256i x) {
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
      x, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)));
}

// The log stage per lane, as int32: QuantizeLogMel (Out int8_t, the framed
// kernels) or LogMelQ8 (int16_t, mel_pcm / mel128_pcm). Both round-shift a
// product that can be negative, and AVX2 has no 64-bit arithmetic shift:
// a bias of B 2^s keeps the sum positive (log2_q24 >= -44 2^24 bounds the
// product) and is taken off after the logical shift.
template <typename Out>
__m128i LogOut(__m256i log2_q24, __m256i energy) {
  const __m128i is_zero =
      Low32(_mm256_cmpeq_epi64(energy, _mm256_setzero_si256()));
  if constexpr (sizeof(Out) == 1) {
    constexpr int64_t kBias = 256;  // > 16 log10(2) 44 - 64 = 148
    const __m256i v = _mm256_add_epi64(
        _mm256_mul_epi32(log2_q24, _mm256_set1_epi32(static_cast<int32_t>(
                                       mel::kSixteenLog10Of2Q28))),
        Splat64(((64 + kBias) << 52) + (int64_t{1} << 51)));
    __m128i q = _mm_sub_epi32(Low32(_mm256_srli_epi64(v, 52)),
                              _mm_set1_epi32(static_cast<int32_t>(kBias)));
    q = _mm_min_epi32(_mm_max_epi32(q, _mm_set1_epi32(mel::kMinLogMel)),
                      _mm_set1_epi32(127));
    return _mm_blendv_epi8(q, _mm_set1_epi32(mel::kMinLogMel), is_zero);
  } else {
    constexpr int s = 52 - mel::kLogMelQ8Bits;  // 44
    constexpr int64_t kBias = 4096;             // > 256 log10(2) 44 = 3390
    const __m256i v = _mm256_add_epi64(
        _mm256_mul_epi32(log2_q24, _mm256_set1_epi32(static_cast<int32_t>(
                                       mel::kLog10Of2Q28))),
        Splat64((kBias << s) + (int64_t{1} << (s - 1))));
    __m128i l = _mm_sub_epi32(Low32(_mm256_srli_epi64(v, s)),
                              _mm_set1_epi32(static_cast<int32_t>(kBias)));
    l = _mm_max_epi32(l, _mm_set1_epi32(mel::kMinLogMelQ8));
    return _mm_blendv_epi8(l, _mm_set1_epi32(mel::kMinLogMelQ8), is_zero);
  }
}

// Filterbank and log of 4 frames, one frame per 64-bit lane; the same
// integer formulas as mel::LogMelFromSpectrum<Bands> (the power split into
// 32-bit halves, each times the Q20 weight, recombined at Q14) and
// LogMelQ8FromSpectrum<Bands>.
template <int Bands, typename Out>
void LogMel4(const uint64_t (*power)[kGroup], Out* out) {
  const mel::FilterbankTableOf<Bands>& fb = mel::kFilterbankOf<Bands>;
  alignas(16) int32_t bands[Bands][kGroup];
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
    const __m256i energy =
        _mm256_add_epi64(_mm256_slli_epi64(hi, 16), _mm256_srli_epi64(lo, 16));
    _mm_store_si128(reinterpret_cast<__m128i*>(bands[m]),
                    LogOut<Out>(Log2Q24(energy), energy));
  }
  for (int g = 0; g < kGroup; ++g) {
    for (int m = 0; m < Bands; ++m) {
      out[g * Bands + m] = static_cast<Out>(bands[m][g]);
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
  ForEachGroup<kGroup, Bands>(
      in, out, n, [](const int16_t* i, Out* o) { MelGroup<Bands, Out>(i, o); });
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
  ScalarFrames<Bands>(in, out, n);
}

template void LogMelFramesAvx2<mel::kMelBands>(const int16_t*, int8_t*, size_t);
template void LogMelFramesAvx2<mel::kMel128Bands>(const int16_t*, int8_t*,
                                                  size_t);

template <int Bands>
void LogMelQ8FramesAvx2(const int16_t* in, int16_t* out, size_t n) {
  ScalarFrames<Bands>(in, out, n);
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
