// The AVX2 path of the CPU backend (compiled with -mavx2 -mfma on x86 only;
// called after a run-time CPU check).
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

#include "kernels/attention/attention_kernel.h"
#include "kernels/common/mel_math.h"
#include "kernels/common/softmax.h"
#include "kernels/mel/mel_kernel.h"
#include "server/device/cpu/cpu_kernels.h"

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
// same integer formulas as mel::LogMelFromSpectrum (the power split into
// 32-bit halves, each times the Q20 weight, recombined at Q14).
void LogMel4(const int32_t (*re)[4], const int32_t (*im)[4], int8_t* out) {
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
  for (int m = 0; m < mel::kMelBands; ++m) {
    const int first = mel::kFilterbank.first[m];
    const int count = mel::kFilterbank.count[m];
    const int32_t* w = mel::kFilterbank.weight + mel::kFilterbank.offset[m];
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
      out[g * mel::kMelBands + m] = mel::QuantizeLogMel(energy[g]);
    }
  }
}

template <int G>
void MelGroup(const int16_t* in, int8_t* out) {
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
    LogMel4(re2, im2, out);
  } else {
    for (int g = 0; g < G; ++g) {
      mel::Bin spectrum[kBins];
      for (int k = 0; k < kBins; ++k) spectrum[k] = {re2[k][g], im2[k][g]};
      mel::LogMelFromSpectrum(spectrum, out + g * mel::kMelBands);
    }
  }
}

// ----------------------------------------------------------- attention ----

constexpr int kN = static_cast<int>(kAttentionTokens);
constexpr int kD = static_cast<int>(kAttentionDims);

// Sums the 8 int32 lanes of each of v[0..7] into lane i of the result.
__m256i HorizontalSums8(const __m256i* v) {
  const __m256i s01 = _mm256_hadd_epi32(v[0], v[1]);
  const __m256i s23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i s45 = _mm256_hadd_epi32(v[4], v[5]);
  const __m256i s67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i s0123 = _mm256_hadd_epi32(s01, s23);
  const __m256i s4567 = _mm256_hadd_epi32(s45, s67);
  // s0123 = [0 1 2 3 | 0 1 2 3] halves, s4567 likewise.
  const __m256i lo = _mm256_permute2x128_si256(s0123, s4567, 0x20);
  const __m256i hi = _mm256_permute2x128_si256(s0123, s4567, 0x31);
  return _mm256_add_epi32(lo, hi);
}

int32_t HorizontalSum32(__m256i v) {
  __m128i s =
      _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

int32_t HorizontalMax32(__m256i v) {
  __m128i s =
      _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_max_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_max_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// round(2^15 2^(-y/2^20)) capped at 32767, lane by lane; softmax::Exp2NegQ15.
__m256i Exp2NegQ15(__m256i y) {
  const __m256i r15 =
      _mm256_and_si256(_mm256_srli_epi32(y, 5), _mm256_set1_epi32(0x7FFF));
  const __m256i half = _mm256_set1_epi32(1 << 14);
  __m256i p = _mm256_set1_epi32(softmax::kExp2Poly[4]);
  for (int i = 3; i >= 0; --i) {
    p = _mm256_add_epi32(
        _mm256_set1_epi32(softmax::kExp2Poly[i]),
        _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(p, r15), half),
                          15));
  }
  const __m256i n = _mm256_srli_epi32(y, softmax::kExpFracBits);
  const __m256i round = _mm256_sllv_epi32(_mm256_set1_epi32(1), n);
  const __m256i e = _mm256_srlv_epi32(
      _mm256_add_epi32(p, round), _mm256_add_epi32(n, _mm256_set1_epi32(1)));
  return _mm256_min_epi32(e, _mm256_set1_epi32(softmax::kOneQ15));
}

// softmax::Exponent for a < a_cap, and kMaxExponent at and above it; a_cap
// is chosen so that the 64-bit product shifted down still fits 32 bits.
struct VectorExp {
  __m256i multiplier;  // m2 in the low half of each 64-bit lane
  __m256i half;        // 2^(shift-1) in 64-bit lanes
  __m128i shift;
  __m256i a_cap;
  __m256i max_exponent;
};

VectorExp MakeVectorExp(const softmax::ExpParams& p) {
  const uint64_t half = uint64_t{1} << (p.shift - 1);
  const uint64_t target = uint64_t{softmax::kMaxExponent} << p.shift;
  // Smallest a with (a m2 + half) >> shift >= kMaxExponent.
  uint64_t cap = (target - half + p.multiplier - 1) / p.multiplier;
  if (cap > 0x7FFFFFFF) cap = 0x7FFFFFFF;
  return VectorExp{
      _mm256_set1_epi64x(static_cast<int64_t>(p.multiplier)),
      _mm256_set1_epi64x(static_cast<int64_t>(half)),
      _mm_cvtsi32_si128(p.shift), _mm256_set1_epi32(static_cast<int32_t>(cap)),
      _mm256_set1_epi32(static_cast<int32_t>(softmax::kMaxExponent))};
}

__m256i Exponent(__m256i a, const VectorExp& v) {
  a = _mm256_min_epi32(a, v.a_cap);
  const __m256i even = _mm256_srl_epi64(
      _mm256_add_epi64(_mm256_mul_epu32(a, v.multiplier), v.half), v.shift);
  const __m256i odd = _mm256_srl_epi64(
      _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), v.multiplier),
                       v.half),
      v.shift);
  const __m256i y = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  return _mm256_min_epi32(y, v.max_exponent);
}

void AttentionTile(const int8_t* qkv, int8_t* out, ScoreScale scale) {
  const int8_t* q = qkv;
  const int8_t* k = qkv + kN * kD;
  const int8_t* v = qkv + 2 * kN * kD;
  const softmax::ExpParams params =
      softmax::MakeExpParams(scale.multiplier, scale.shift);
  const VectorExp vexp = MakeVectorExp(params);

  // Rows of q and k widened to int16: 4 vectors of 16 per row.
  alignas(32) __m256i q16[kN][4];
  alignas(32) __m256i k16[kN][4];
  for (int r = 0; r < kN; ++r) {
    for (int c = 0; c < 4; ++c) {
      q16[r][c] = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(q + r * kD + 16 * c)));
      k16[r][c] = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(k + r * kD + 16 * c)));
    }
  }
  // v as int16 pairs (v[2j'][c], v[2j'+1][c]) for _mm256_madd_epi16. Per
  // 16 columns, unpacklo holds c = 0-3, 8-11 and unpackhi c = 4-7, 12-15;
  // _mm256_packs_epi32 at the end undoes exactly that interleave.
  alignas(32) __m256i vp[kN / 2][8];
  for (int jp = 0; jp < kN / 2; ++jp) {
    for (int c = 0; c < 4; ++c) {
      const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(v + (2 * jp) * kD + 16 * c)));
      const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(v + (2 * jp + 1) * kD + 16 * c)));
      vp[jp][2 * c] = _mm256_unpacklo_epi16(a, b);
      vp[jp][2 * c + 1] = _mm256_unpackhi_epi16(a, b);
    }
  }

  for (int i = 0; i < kN; ++i) {
    // Scores: 8 vectors of 8 int32, exact.
    __m256i score[kN / 8];
    for (int jb = 0; jb < kN / 8; ++jb) {
      __m256i partial[8];
      for (int jj = 0; jj < 8; ++jj) {
        const int j = 8 * jb + jj;
        __m256i acc = _mm256_madd_epi16(q16[i][0], k16[j][0]);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(q16[i][1], k16[j][1]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(q16[i][2], k16[j][2]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(q16[i][3], k16[j][3]));
        partial[jj] = acc;
      }
      score[jb] = HorizontalSums8(partial);
    }
    __m256i vmax = score[0];
    for (int jb = 1; jb < kN / 8; ++jb)
      vmax = _mm256_max_epi32(vmax, score[jb]);
    const __m256i row_max = _mm256_set1_epi32(HorizontalMax32(vmax));

    __m256i e[kN / 8];
    __m256i esum = _mm256_setzero_si256();
    for (int jb = 0; jb < kN / 8; ++jb) {
      e[jb] = Exp2NegQ15(Exponent(_mm256_sub_epi32(row_max, score[jb]), vexp));
      esum = _mm256_add_epi32(esum, e[jb]);
    }
    const uint32_t reciprocal =
        softmax::Reciprocal(static_cast<uint32_t>(HorizontalSum32(esum)));
    const __m256i vrec = _mm256_set1_epi32(static_cast<int32_t>(reciprocal));
    alignas(32) int32_t p[kN];
    for (int jb = 0; jb < kN / 8; ++jb) {
      __m256i pj =
          _mm256_srli_epi32(_mm256_add_epi32(_mm256_mullo_epi32(e[jb], vrec),
                                             _mm256_set1_epi32(1 << 15)),
                            16);
      pj = _mm256_min_epi32(pj, _mm256_set1_epi32(softmax::kOneQ15));
      _mm256_store_si256(reinterpret_cast<__m256i*>(p + 8 * jb), pj);
    }

    __m256i acc[8];
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_si256();
    for (int jp = 0; jp < kN / 2; ++jp) {
      const __m256i pair = _mm256_set1_epi32(
          static_cast<int32_t>((static_cast<uint32_t>(p[2 * jp]) & 0xFFFF) |
                               (static_cast<uint32_t>(p[2 * jp + 1]) << 16)));
      for (int c = 0; c < 8; ++c) {
        acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(pair, vp[jp][c]));
      }
    }
    const __m256i half = _mm256_set1_epi32(1 << 14);
    __m256i packed16[4];
    for (int c = 0; c < 4; ++c) {
      const __m256i lo =
          _mm256_srai_epi32(_mm256_add_epi32(acc[2 * c], half), 15);
      const __m256i hi =
          _mm256_srai_epi32(_mm256_add_epi32(acc[2 * c + 1], half), 15);
      packed16[c] = _mm256_packs_epi32(lo, hi);  // columns 16c .. 16c+15
    }
    for (int c = 0; c < 2; ++c) {
      // packs_epi16 interleaves 128-bit halves; permute restores order.
      const __m256i bytes = _mm256_permute4x64_epi64(
          _mm256_packs_epi16(packed16[2 * c], packed16[2 * c + 1]), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i * kD + 32 * c),
                          bytes);
    }
  }
}

}  // namespace

void MelFramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  size_t i = 0;
  for (; i + kGroup <= n; i += kGroup) {
    MelGroup<kGroup>(in + i * kSamples, out + i * mel::kMelBands);
  }
  for (; i < n; ++i) {
    MelGroup<1>(in + i * kSamples, out + i * mel::kMelBands);
  }
}

void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales) {
  for (size_t i = 0; i < n; ++i) {
    AttentionTile(qkv + i * kAttentionInBytes, out + i * kAttentionOutBytes,
                  scales[i]);
  }
}

}  // namespace npuk::cpu

#else  // not x86 with AVX2: HasAvx2() is false and these are never chosen.

namespace npuk::cpu {

void MelFramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  MelFramesPortable(in, out, n);
}

void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales) {
  AttentionTilesPortable(qkv, out, n, scales);
}

}  // namespace npuk::cpu

#endif
