// The AVX2 path of the mel kernel's CPU backend (compiled with -mavx2
// -mfma on x86 only; called after a run-time CPU check). Never compiled
// for the AIE cores: intrinsics live only in *_cpu_avx2.cc files.
//
// Bit-exactness with the kernel entries comes from two rules:
//  - Parts that are exact integer arithmetic (the mel DFT sums, q.k scores,
//    sums of exponentials, p.v sums) may be reordered, folded and vectorised
//    freely: they give the same integers in any order.
//  - Every rounding step (windowing, the 2^-y exponential, probabilities,
//    the final shift) is the formula of kernels/common, applied lane by lane
//    with the same operand widths, or the scalar helper itself.
#include <cstdint>
#include <cstring>

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
constexpr int kHalf = kSamples / 2;           // 200
constexpr int kQuarter = kSamples / 4;        // 100
constexpr int kGroup = 4;  // frames sharing each coefficient load

int32_t CosQ30(int64_t j) { return mel::kCos.v[j % kSamples]; }
// -sin(2 pi j / 400), as in mel::Spectrum.
int32_t NegSinQ30(int64_t j) { return mel::kCos.v[(j + kQuarter) % kSamples]; }

// cos and -sin of 2 pi k n / 400 for k = 0..200, n = 1..99 (+ zero pad).
struct FoldedTables {
  alignas(32) int32_t cos[kBins][kQuarter];
  alignas(32) int32_t neg_sin[kBins][kQuarter];
};

const FoldedTables& Tables() {
  static const FoldedTables* tables = [] {
    auto* t = new FoldedTables();
    for (int k = 0; k < kBins; ++k) {
      for (int n = 1; n <= kQuarter; ++n) {
        t->cos[k][n - 1] = CosQ30(int64_t{k} * n);
        t->neg_sin[k][n - 1] = NegSinQ30(int64_t{k} * n);
      }
    }
    return t;
  }();
  return *tables;
}

// One frame folded by the table symmetries (cos[400-j] = cos[j],
// cos[200-j] = -cos[j], hence -sin likewise); see mel_math.h for why the
// results are exact. With xw the windowed frame,
//   a[n] = xw[n] + xw[400-n], b[n] = xw[n] - xw[400-n]      (n = 1..199)
//   S_re[k] = (xw0 + (-1)^k xw200) 2^30 + a100 cos(100k) + sum_n A[n] cos(kn)
//   S_im[k] = b100 (-sin(100k)) + sum_n B[n] (-sin(kn))
// where for odd k, n runs over 1..99 with A = a[n] - a[200-n] and
// B = b[n] + b[200-n]; for even k the period is 200, so A = a[n] + a[200-n],
// B = b[n] - b[200-n], and a third fold over n <-> 100-n (period 100 when
// k = 0 mod 4, antiperiod when k = 2 mod 4) leaves n = 1..49 plus the n = 50
// term. Stored as int64 lanes for _mm256_mul_epi32, zero padded.
constexpr int kOddTerms = 100;  // n = 1..99 + pad
constexpr int kEvenTerms = 52;  // n = 1..49 + pad

struct FoldedFrame {
  alignas(32) int64_t re_odd[kOddTerms];
  alignas(32) int64_t im_odd[kOddTerms];
  alignas(32) int64_t re_k0[kEvenTerms];  // k = 0 mod 4
  alignas(32) int64_t im_k0[kEvenTerms];
  alignas(32) int64_t re_k2[kEvenTerms];  // k = 2 mod 4
  alignas(32) int64_t im_k2[kEvenTerms];
  int64_t xw0, xw200, a100, b100, re50, im50;
};

void FoldFrame(const int16_t* in, FoldedFrame* f) {
  int32_t xw[kSamples];
  for (int n = 0; n < kSamples; ++n) xw[n] = mel::WindowSample(in[n], n);
  int64_t a[kHalf], b[kHalf];
  for (int n = 1; n < kHalf; ++n) {
    a[n] = int64_t{xw[n]} + xw[kSamples - n];
    b[n] = int64_t{xw[n]} - xw[kSamples - n];
  }
  int64_t re_even[kQuarter], im_even[kQuarter];
  for (int n = 1; n < kQuarter; ++n) {
    f->re_odd[n - 1] = a[n] - a[kHalf - n];
    f->im_odd[n - 1] = b[n] + b[kHalf - n];
    re_even[n] = a[n] + a[kHalf - n];
    im_even[n] = b[n] - b[kHalf - n];
  }
  f->re_odd[kOddTerms - 1] = f->im_odd[kOddTerms - 1] = 0;
  constexpr int kEighth = kQuarter / 2;  // 50
  for (int n = 1; n < kEighth; ++n) {
    const int m = kQuarter - n;
    f->re_k0[n - 1] = re_even[n] + re_even[m];
    f->im_k0[n - 1] = im_even[n] - im_even[m];
    f->re_k2[n - 1] = re_even[n] - re_even[m];
    f->im_k2[n - 1] = im_even[n] + im_even[m];
  }
  for (int n = kEighth - 1; n < kEvenTerms; ++n) {
    f->re_k0[n] = f->im_k0[n] = f->re_k2[n] = f->im_k2[n] = 0;
  }
  f->xw0 = xw[0];
  f->xw200 = xw[kHalf];
  f->a100 = a[kQuarter];
  f->b100 = b[kQuarter];
  f->re50 = re_even[kEighth];
  f->im50 = im_even[kEighth];
}

__m256i Load(const int64_t* p) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
}

int64_t HorizontalSum64(__m256i v) {
  const __m128i s =
      _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// The exact sums of one bin k for G frames. The accumulators are named
// registers: indexing an array of __m256i by frame made the compiler keep
// them on the stack.
// Lane g of the result is the sum of the four 64-bit lanes of vg.
__m256i HorizontalSums4(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i t01 = _mm256_add_epi64(_mm256_unpacklo_epi64(v0, v1),
                                       _mm256_unpackhi_epi64(v0, v1));
  const __m256i t23 = _mm256_add_epi64(_mm256_unpacklo_epi64(v2, v3),
                                       _mm256_unpackhi_epi64(v2, v3));
  return _mm256_add_epi64(_mm256_permute2x128_si256(t01, t23, 0x20),
                          _mm256_permute2x128_si256(t01, t23, 0x31));
}

template <int G>
struct BinSums;

// The folded terms bin k uses and how many.
struct Terms {
  const int64_t* re;
  const int64_t* im;
};

Terms TermsFor(const FoldedFrame& f, int k) {
  switch (k & 3) {
    case 0:
      return {f.re_k0, f.im_k0};
    case 2:
      return {f.re_k2, f.im_k2};
    default:
      return {f.re_odd, f.im_odd};
  }
}

int TermCount(int k) { return (k & 1) != 0 ? kOddTerms : kEvenTerms; }

template <>
struct BinSums<1> {
  static void Run(const FoldedTables& t, const FoldedFrame* f, int k,
                  int64_t* re, int64_t* im) {
    const Terms x = TermsFor(f[0], k);
    const int64_t* xr = x.re;
    const int64_t* xi = x.im;
    const int count = TermCount(k);
    __m256i ar = _mm256_setzero_si256(), ai = _mm256_setzero_si256();
    for (int n = 0; n < count; n += 4) {
      const __m256i c = _mm256_cvtepi32_epi64(
          _mm_load_si128(reinterpret_cast<const __m128i*>(&t.cos[k][n])));
      const __m256i s = _mm256_cvtepi32_epi64(
          _mm_load_si128(reinterpret_cast<const __m128i*>(&t.neg_sin[k][n])));
      ar = _mm256_add_epi64(ar, _mm256_mul_epi32(Load(xr + n), c));
      ai = _mm256_add_epi64(ai, _mm256_mul_epi32(Load(xi + n), s));
    }
    re[0] = HorizontalSum64(ar);
    im[0] = HorizontalSum64(ai);
  }
};

template <>
struct BinSums<4> {
  static void Run(const FoldedTables& t, const FoldedFrame* f, int k,
                  int64_t* re, int64_t* im) {
    const Terms x0 = TermsFor(f[0], k), x1 = TermsFor(f[1], k);
    const Terms x2 = TermsFor(f[2], k), x3 = TermsFor(f[3], k);
    const int64_t *xr0 = x0.re, *xr1 = x1.re, *xr2 = x2.re, *xr3 = x3.re;
    const int64_t *xi0 = x0.im, *xi1 = x1.im, *xi2 = x2.im, *xi3 = x3.im;
    const int count = TermCount(k);
    __m256i r0 = _mm256_setzero_si256(), r1 = r0, r2 = r0, r3 = r0;
    __m256i i0 = r0, i1 = r0, i2 = r0, i3 = r0;
    for (int n = 0; n < count; n += 4) {
      const __m256i c = _mm256_cvtepi32_epi64(
          _mm_load_si128(reinterpret_cast<const __m128i*>(&t.cos[k][n])));
      const __m256i s = _mm256_cvtepi32_epi64(
          _mm_load_si128(reinterpret_cast<const __m128i*>(&t.neg_sin[k][n])));
      r0 = _mm256_add_epi64(r0, _mm256_mul_epi32(Load(xr0 + n), c));
      r1 = _mm256_add_epi64(r1, _mm256_mul_epi32(Load(xr1 + n), c));
      r2 = _mm256_add_epi64(r2, _mm256_mul_epi32(Load(xr2 + n), c));
      r3 = _mm256_add_epi64(r3, _mm256_mul_epi32(Load(xr3 + n), c));
      i0 = _mm256_add_epi64(i0, _mm256_mul_epi32(Load(xi0 + n), s));
      i1 = _mm256_add_epi64(i1, _mm256_mul_epi32(Load(xi1 + n), s));
      i2 = _mm256_add_epi64(i2, _mm256_mul_epi32(Load(xi2 + n), s));
      i3 = _mm256_add_epi64(i3, _mm256_mul_epi32(Load(xi3 + n), s));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(re),
                        HorizontalSums4(r0, r1, r2, r3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(im),
                        HorizontalSums4(i0, i1, i2, i3));
  }
};

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
void LogMel4(const int32_t (*re)[4], const int32_t (*im)[4], Out* out) {
  const mel::FilterbankTableOf<Bands>& fb = mel::kFilterbankOf<Bands>;
  alignas(32) uint64_t power[kBins][4];
  for (int k = 0; k < kBins; ++k) {
    const __m256i r = _mm256_cvtepi32_epi64(
        _mm_load_si128(reinterpret_cast<const __m128i*>(re[k])));
    const __m256i i = _mm256_cvtepi32_epi64(
        _mm_load_si128(reinterpret_cast<const __m128i*>(im[k])));
    _mm256_store_si256(
        reinterpret_cast<__m256i*>(power[k]),
        _mm256_add_epi64(_mm256_mul_epi32(r, r), _mm256_mul_epi32(i, i)));
  }
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
    alignas(32) uint64_t energy[4];
    _mm256_store_si256(
        reinterpret_cast<__m256i*>(energy),
        _mm256_add_epi64(_mm256_slli_epi64(hi, 16), _mm256_srli_epi64(lo, 16)));
    for (int g = 0; g < 4; ++g) {
      out[g * Bands + m] = LogMelOut<Out>(energy[g]);
    }
  }
}

template <int Bands, int G, typename Out>
void MelGroup(const int16_t* in, Out* out) {
  const FoldedTables& t = Tables();
  FoldedFrame frames[G];
  for (int g = 0; g < G; ++g) FoldFrame(in + g * kSamples, &frames[g]);
  // 2X[k] per frame; for G = 4 laid out frame-minor for LogMel4.
  alignas(16) int32_t re2[kBins][4];
  alignas(16) int32_t im2[kBins][4];
  for (int k = 0; k < kBins; ++k) {
    int64_t re[G], im[G];
    BinSums<G>::Run(t, frames, k, re, im);
    const bool odd = (k & 1) != 0;
    const int64_t c100 = CosQ30(int64_t{100} * k);
    const int64_t s100 = NegSinQ30(int64_t{100} * k);
    const int64_t c50 = odd ? 0 : CosQ30(int64_t{50} * k);
    const int64_t s50 = odd ? 0 : NegSinQ30(int64_t{50} * k);
    for (int g = 0; g < G; ++g) {
      const FoldedFrame& f = frames[g];
      const int64_t edge_re =
          (f.xw0 + (odd ? -f.xw200 : f.xw200)) * mel::kOneQ30 + f.a100 * c100 +
          f.re50 * c50;
      const int64_t edge_im = f.b100 * s100 + f.im50 * s50;
      const mel::Bin bin = mel::SpectrumBin(re[g] + edge_re, im[g] + edge_im);
      re2[k][g] = bin.re;
      im2[k][g] = bin.im;
    }
  }
  if constexpr (G == 4) {
    LogMel4<Bands, Out>(re2, im2, out);
  } else {
    for (int g = 0; g < G; ++g) {
      mel::Bin spectrum[kBins];
      for (int k = 0; k < kBins; ++k) spectrum[k] = {re2[k][g], im2[k][g]};
      if constexpr (sizeof(Out) == 1) {
        mel::LogMelFromSpectrum<Bands>(spectrum, out + g * Bands);
      } else {
        mel::LogMelQ8FromSpectrum<Bands>(spectrum, out + g * Bands);
      }
    }
  }
}

template <int Bands, typename Out>
void Frames(const int16_t* in, Out* out, size_t n) {
  size_t i = 0;
  for (; i + kGroup <= n; i += kGroup) {
    MelGroup<Bands, kGroup, Out>(in + i * kSamples, out + i * Bands);
  }
  for (; i < n; ++i) {
    MelGroup<Bands, 1, Out>(in + i * kSamples, out + i * Bands);
  }
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
