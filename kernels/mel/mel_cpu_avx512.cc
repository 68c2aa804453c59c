// The AVX-512 path of the mel kernels' CPU backend (compiled with
// -mavx512f -mavx512cd on x86 only; taken by the entries of mel_cpu.h after
// a run-time check, HasAvx512Mel()). Never compiled for the AIE cores.
//
// Eight frames per register, one per 64-bit lane, through every stage:
//  - the integer FFT of mel_fft.h (the AVX2 path's arithmetic, with the
//    native 64-bit arithmetic shift for its roundings);
//  - power and filterbank, PowerSpectrum's and MelEnergy's formulas;
//  - the log stage, Log2Q30 with QuantizeLogMel or LogMelQ8 lane by lane:
//    the msb from vplzcntq, the mantissa by variable shifts, both table
//    entries kLog2[i] and kLog2[i + 1] in one 64-bit gather, the rest in
//    exact 64-bit lanes.
// Same bytes as the kernel entries: the same roundings in the same order.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/common/mel_fft.h"
#include "kernels/common/mel_math.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/mel/mel_cpu_groups.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512CD__)
#include <immintrin.h>

namespace npuk::cpu {
namespace {

constexpr int kSamples = mel::kFrameSamples;  // 400
constexpr int kBins = mel::kFftBins;          // 201
constexpr int kLanes = 8;

__m512i Splat64(int64_t x) { return _mm512_set1_epi64(x); }

// The FFT's ops (mel_fft.h) on 8 frames: a value is an int32 in the low
// half of each 64-bit lane (_mm512_mul_epi32 reads only that half), an
// accumulator an exact int64.
class Avx512FftOps {
 public:
  struct V {  // a struct: vector types lose attributes as template arguments
    __m512i x;
  };
  using A = __m512i;

  // samples: [400][8] int16; power: [201][8].
  Avx512FftOps(const int16_t* samples, uint64_t* power)
      : samples_(samples), power_(power) {}

  V Sample(int n) const {
    const __m512i x = _mm512_cvtepi16_epi64(_mm_loadu_si128(
        reinterpret_cast<const __m128i*>(samples_ + kLanes * n)));
    return Round(Mul(V{x}, mel::kWindow.w[n]), mel::kWindowShift);
  }
  static V Prep(V v) { return v; }
  static A Mul(V v, int32_t c) {
    return _mm512_mul_epi32(v.x, _mm512_set1_epi32(c));
  }
  static A Mac(A a, V v, int32_t c) { return _mm512_add_epi64(a, Mul(v, c)); }
  static A Lift(V v) { return Mul(v, mel::kOneQ30); }
  static A AddA(A a, A b) { return _mm512_add_epi64(a, b); }
  static A SubA(A a, A b) { return _mm512_sub_epi64(a, b); }
  static V Round(A a, int s) {
    return V{
        _mm512_srai_epi64(_mm512_add_epi64(a, Splat64(int64_t{1} << (s - 1))),
                          static_cast<unsigned>(s))};
  }
  static V Add(V a, V b) { return V{_mm512_add_epi32(a.x, b.x)}; }
  static V Sub(V a, V b) { return V{_mm512_sub_epi32(a.x, b.x)}; }
  void Put(int i, V v) { scratch_[i] = v.x; }
  V Get(int i) const { return V{scratch_[i]}; }
  static void Loop() {}
  void Emit(int k, V re, V im) {
    _mm512_store_si512(power_ + kLanes * k,
                       _mm512_add_epi64(_mm512_mul_epi32(re.x, re.x),
                                        _mm512_mul_epi32(im.x, im.x)));
  }

 private:
  const int16_t* samples_;
  uint64_t* power_;
  __m512i scratch_[kSamples];
};

// Frames [8][400] as [400][8]: per 8 samples, an 8 x 8 transpose by 16-,
// 32- and 64-bit interleaves.
void Interleave8(const int16_t* in, int16_t* out) {
  for (int n = 0; n < kSamples; n += 8) {
    __m128i f[8];
    for (int g = 0; g < 8; ++g) {
      f[g] = _mm_loadu_si128(
          reinterpret_cast<const __m128i*>(in + g * kSamples + n));
    }
    // a[2p] and a[2p + 1]: samples 0-3 and 4-7 of frames 2p, 2p + 1.
    __m128i a[8];
    for (int p = 0; p < 4; ++p) {
      a[2 * p] = _mm_unpacklo_epi16(f[2 * p], f[2 * p + 1]);
      a[2 * p + 1] = _mm_unpackhi_epi16(f[2 * p], f[2 * p + 1]);
    }
    // c[q][s]: samples 2s, 2s + 1 of frames 4q .. 4q + 3.
    __m128i c[2][4];
    for (int q = 0; q < 2; ++q) {
      const __m128i* x = a + 4 * q;
      c[q][0] = _mm_unpacklo_epi32(x[0], x[2]);
      c[q][1] = _mm_unpackhi_epi32(x[0], x[2]);
      c[q][2] = _mm_unpacklo_epi32(x[1], x[3]);
      c[q][3] = _mm_unpackhi_epi32(x[1], x[3]);
    }
    auto* o = reinterpret_cast<__m128i*>(out + kLanes * n);
    for (int s = 0; s < 4; ++s) {
      _mm_storeu_si128(o + 2 * s, _mm_unpacklo_epi64(c[0][s], c[1][s]));
      _mm_storeu_si128(o + 2 * s + 1, _mm_unpackhi_epi64(c[0][s], c[1][s]));
    }
  }
}

template <typename Out>
struct LogStage;

// QuantizeLogMel: q = clamp(round((log2_q24 K + 2^58) / 2^52), -96, 127).
template <>
struct LogStage<int8_t> {
  static __m512i Apply(__m512i log2_q24, __mmask8 zero) {
    const __m512i v = _mm512_add_epi64(
        _mm512_mul_epi32(log2_q24, _mm512_set1_epi32(static_cast<int32_t>(
                                       mel::kSixteenLog10Of2Q28))),
        Splat64((int64_t{64} << 52) + (int64_t{1} << 51)));
    __m512i q = _mm512_srai_epi64(v, 52);
    q = _mm512_min_epi64(_mm512_max_epi64(q, Splat64(mel::kMinLogMel)),
                         Splat64(127));
    return _mm512_mask_mov_epi64(q, zero, Splat64(mel::kMinLogMel));
  }
  static void Store(int8_t* p, __m512i q) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm512_cvtepi64_epi8(q));
  }
};

// LogMelQ8: l = max(round(log2_q24 K / 2^44), -2560).
template <>
struct LogStage<int16_t> {
  static __m512i Apply(__m512i log2_q24, __mmask8 zero) {
    const __m512i v = _mm512_add_epi64(
        _mm512_mul_epi32(log2_q24, _mm512_set1_epi32(static_cast<int32_t>(
                                       mel::kLog10Of2Q28))),
        Splat64(int64_t{1} << (51 - mel::kLogMelQ8Bits)));
    __m512i l = _mm512_srai_epi64(v, 52 - mel::kLogMelQ8Bits);
    l = _mm512_max_epi64(l, Splat64(mel::kMinLogMelQ8));
    return _mm512_mask_mov_epi64(l, zero, Splat64(mel::kMinLogMelQ8));
  }
  static void Store(int16_t* p, __m512i l) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi64_epi16(l));
  }
};

// log2_q24 = (Log2Q30(e) >> 6) - 44 2^24 per lane (garbage where e = 0).
__m512i Log2Q24(__m512i e) {
  constexpr int kFracBits = 30 - mel::kLog2TableBits;  // 23
  const __m512i msb = _mm512_sub_epi64(Splat64(63), _mm512_lzcnt_epi64(e));
  const __m512i down = _mm512_max_epi64(_mm512_sub_epi64(msb, Splat64(30)),
                                        _mm512_setzero_si512());
  const __m512i up = _mm512_max_epi64(_mm512_sub_epi64(Splat64(30), msb),
                                      _mm512_setzero_si512());
  const __m512i mantissa = _mm512_sllv_epi64(_mm512_srlv_epi64(e, down), up);
  const __m512i f = _mm512_sub_epi64(mantissa, Splat64(int64_t{1} << 30));
  // E = 0 has no msb and its lane is replaced later; & 127 keeps its
  // gather inside the table (valid indices are 0..127 already).
  const __m512i index =
      _mm512_and_si512(_mm512_srli_epi64(f, kFracBits), Splat64(127));
  const __m512i frac = _mm512_and_si512(f, Splat64((1 << kFracBits) - 1));
  // kLog2[i] in the low half, kLog2[i + 1] in the high half.
  const __m512i pair = _mm512_i64gather_epi64(index, mel::kLog2.v, 4);
  const __m512i lo = _mm512_and_si512(pair, Splat64(0xFFFFFFFF));
  const __m512i hi = _mm512_srli_epi64(pair, 32);
  const __m512i interp = _mm512_srli_epi64(
      _mm512_mul_epu32(_mm512_sub_epi64(hi, lo), frac), kFracBits);
  const __m512i log2 = _mm512_add_epi64(
      _mm512_add_epi64(_mm512_slli_epi64(msb, 30), lo), interp);
  return _mm512_sub_epi64(_mm512_srli_epi64(log2, 6),
                          Splat64(int64_t{mel::kEnergyFracBits} << 24));
}

// Frames in ([8][400]) to out ([8][Bands]).
template <int Bands, typename Out>
void Group(const int16_t* in, Out* out) {
  alignas(64) int16_t samples[kSamples * kLanes];
  Interleave8(in, samples);
  alignas(64) uint64_t power[kBins][kLanes];
  Avx512FftOps ops(samples, &power[0][0]);
  mel::fft::Run(ops);
  const mel::FilterbankTableOf<Bands>& fb = mel::kFilterbankOf<Bands>;
  alignas(64) Out bands[Bands][kLanes];
  for (int m = 0; m < Bands; ++m) {
    const int first = fb.first[m];
    const int32_t* w = fb.weight + fb.offset[m];
    __m512i hi = _mm512_setzero_si512(), lo = _mm512_setzero_si512();
    for (int i = 0; i < fb.count[m]; ++i) {
      const __m512i p = _mm512_load_si512(power[first + i]);
      const __m512i weight = _mm512_set1_epi64(w[i]);
      hi = _mm512_add_epi64(hi,
                            _mm512_mul_epu32(_mm512_srli_epi64(p, 32), weight));
      lo = _mm512_add_epi64(lo, _mm512_mul_epu32(p, weight));
    }
    const __m512i e =
        _mm512_add_epi64(_mm512_slli_epi64(hi, 16), _mm512_srli_epi64(lo, 16));
    const __mmask8 zero = _mm512_cmpeq_epi64_mask(e, _mm512_setzero_si512());
    LogStage<Out>::Store(bands[m], LogStage<Out>::Apply(Log2Q24(e), zero));
  }
  for (int g = 0; g < kLanes; ++g) {
    for (int m = 0; m < Bands; ++m) out[g * Bands + m] = bands[m][g];
  }
}

template <int Bands, typename Out>
void Frames(const int16_t* in, Out* out, size_t n) {
  ForEachGroup<kLanes, Bands>(
      in, out, n, [](const int16_t* i, Out* o) { Group<Bands, Out>(i, o); });
}

}  // namespace

template <int Bands>
void LogMelFramesAvx512(const int16_t* in, int8_t* out, size_t n) {
  Frames<Bands, int8_t>(in, out, n);
}

template <int Bands>
void LogMelQ8FramesAvx512(const int16_t* in, int16_t* out, size_t n) {
  Frames<Bands, int16_t>(in, out, n);
}

}  // namespace npuk::cpu

#else  // not x86 with AVX-512: HasAvx512Mel() is false, never chosen.

namespace npuk::cpu {

template <int Bands>
void LogMelFramesAvx512(const int16_t* in, int8_t* out, size_t n) {
  ScalarFrames<Bands>(in, out, n);
}

template <int Bands>
void LogMelQ8FramesAvx512(const int16_t* in, int16_t* out, size_t n) {
  ScalarFrames<Bands>(in, out, n);
}

}  // namespace npuk::cpu

#endif

namespace npuk::cpu {
template void LogMelFramesAvx512<mel::kMelBands>(const int16_t*, int8_t*,
                                                 size_t);
template void LogMelFramesAvx512<mel::kMel128Bands>(const int16_t*, int8_t*,
                                                    size_t);
template void LogMelQ8FramesAvx512<mel::kMelBands>(const int16_t*, int16_t*,
                                                   size_t);
template void LogMelQ8FramesAvx512<mel::kMel128Bands>(const int16_t*, int16_t*,
                                                      size_t);
}  // namespace npuk::cpu
