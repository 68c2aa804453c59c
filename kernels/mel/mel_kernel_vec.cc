// The vectorised mel kernel (mel_kernel_vec.h): 16 frames per call, one
// per lane, every product on int16 operands into acc64 lanes.
//
// Stages (the formulas of kernels/common/mel_math.h and mel_fft.h):
//  window  xw = round(x w / 2^22): w = wh 2^16 + wl (16-bit digits), so
//          x w = ups(x wh, 16) + x wl, then srs(22, round half up).
//  FFT     mel_fft.h's integer FFT on 32-bit lanes. A value v times a Q30
//          constant c: v = vh 2^16 + vl and c = ch 2^16 + cl (int16
//          digits, split once per value), HH = sum vh ch, CR = sum vh cl +
//          vl ch, LL = sum vl cl (4 VMAC per product), so the exact sum is
//          HH 2^32 + CR 2^16 + LL and round(sum / 2^s) = srs(CR + ups(HH,
//          16) + floor(LL / 2^16), s - 16, round half up) for s >= 17. The
//          bins 2X[k] are stored in place in the FFT's scratch.
//  power   2X = rh 2^16 + rl: P = H 2^32 + C 2^17 + L with H = rh^2 + ih^2,
//          C = rh rl + ih il, L = rl^2 + il^2; H, C and L - 2^30 are split
//          into int16 digits again.
//  mel     E = floor(sum_k P_k W_k / 2^16) (what MelEnergy's split sums
//          give), from six digit-times-weight accumulators, bands taken as
//          soon as their last bin is ready (a ring of the last kRing bins).
//  log     QuantizeLogMel's (or LogMelQ8's) formula in lanes: E
//          normalised by a select chain of uniform shifts, the log2 table
//          lookup as a gather on the scalar unit (one lane at a time: the
//          largest cost in the cycle model), the interpolation and the
//          log10 scaling as 16-bit digit products.
#include "kernels/mel/mel_kernel_vec.h"

#include <type_traits>

#include "kernels/common/fixed_point.h"
#include "kernels/common/mel_fft.h"
#include "kernels/common/mel_math.h"
#include "kernels/common/mel_tables.h"
#include "kernels/vec/vec.h"

namespace npuk::mel {
namespace {

namespace v = ::npuk::vec;
constexpr int G = kMelVecLanes;
using V16 = v::Vec<int16_t, G>;
using V32 = v::Vec<int32_t, G>;
using A64 = v::Acc<64, G>;

// Regions for the cycle model (kernels/vec/cycle_model.h).
enum Region {
  kFft = 0,
  kPowerRegion = 1,
  kMelBandsRegion = 2,
  kLog = 3,
  kGather = 4,
};

// A Q30 constant as int16 digits: c = hi 2^16 + lo, lo in [-2^15, 2^15).
struct Digits {
  int16_t hi;
  int16_t lo;
};

constexpr Digits SplitConst(int32_t c) {
  const int32_t hi = (c + (1 << 15)) >> 16;
  return Digits{static_cast<int16_t>(hi),
                static_cast<int16_t>(c - hi * (1 << 16))};
}

struct DigitTable {
  Digits d[kFrameSamples];
};

constexpr DigitTable MakeWindowDigits() {
  DigitTable t{};
  for (int n = 0; n < kFrameSamples; ++n) t.d[n] = SplitConst(kWindow.w[n]);
  return t;
}

constexpr DigitTable kWindowDigits = MakeWindowDigits();

// Per band: the weights as int16 digits and their sum (for the L - 2^30
// offset), and the ring size the bands need. A weight above 32767 (the
// 128-band Slaney filterbank reaches 43,706 in Q20) is split into
// weight + extra, both int16, and its products are accumulated twice;
// extra is 0 for every other weight (all of the 80-band filterbank's).
template <int Bands>
struct BandTable {
  int16_t weight[kMaxFilterWeights];
  int16_t extra[kMaxFilterWeights];
  int32_t weight_sum[Bands];
  int ring;  // >= the widest band
  bool ordered;
  bool weights_fit;
};

template <int Bands>
constexpr BandTable<Bands> MakeBandTable() {
  const FilterbankTableOf<Bands>& fb = kFilterbankOf<Bands>;
  BandTable<Bands> t{};
  t.ordered = true;
  t.weights_fit = true;
  int widest = 1;
  for (int i = 0; i < fb.total; ++i) {
    if (fb.weight[i] < 0 || fb.weight[i] > 2 * 32767) t.weights_fit = false;
    const int32_t w = fb.weight[i] > 32767 ? 32767 : fb.weight[i];
    t.weight[i] = static_cast<int16_t>(w);
    t.extra[i] = static_cast<int16_t>(fb.weight[i] - w);
  }
  for (int m = 0; m < Bands; ++m) {
    int32_t sum = 0;
    for (int i = 0; i < fb.count[m]; ++i) sum += fb.weight[fb.offset[m] + i];
    t.weight_sum[m] = sum;
    if (fb.count[m] > widest) widest = fb.count[m];
    if (m > 0 && fb.first[m] + fb.count[m] < fb.first[m - 1] + fb.count[m - 1])
      t.ordered = false;
  }
  t.ring = 1;
  while (t.ring < widest) t.ring *= 2;
  return t;
}

template <int Bands>
inline constexpr BandTable<Bands> kBandTable = MakeBandTable<Bands>();

// t = hi 2^16 + lo, both int16 lanes. REQUIRES |t| < 2^31 - 2^15 and
// round(t / 2^16) within int16.
inline void SplitAcc(const A64& t, V16* hi, V16* lo) {
  *hi = v::Srs<int16_t>(t, 16, v::Round::kPosInf);
  *lo = v::Srs<int16_t>(v::SubAcc(t, v::Ups<64>(*hi, 16)), 0, v::Round::kFloor);
}

inline void Split32(const V32& t, V16* hi, V16* lo) {
  SplitAcc(v::Ups<64>(t, 0), hi, lo);
}

// xw[n] for the 16 lanes.
inline V32 Window(const int16_t* in_t, int n) {
  const V16 x = v::Load<G>(in_t + G * n);
  const Digits w = kWindowDigits.d[n];
  v::ScalarMem(1);  // both digits in one 32-bit word
  const V32 high =
      v::Srs<int32_t>(v::Mul<64>(x, w.hi), 0, v::Round::kFloor);  // exact
  const A64 acc = v::Mac(v::Ups<64>(high, 16), x, w.lo);
  return v::Srs<int32_t>(acc, kWindowShift, v::Round::kPosInf);
}

// The vector face of mel_fft.h's FFT (see the top of this file).
class VecFftOps {
 public:
  using V = V32;
  struct M {
    V16 hi;
    V16 lo;
  };
  struct A {
    A64 hh;
    A64 cr;
    A64 ll;
  };

  explicit VecFftOps(const int16_t* in_t) : in_t_(in_t) {}

  V Sample(int n) const { return Window(in_t_, n); }
  static M Prep(const V& v) {
    M m;
    Split32(v, &m.hi, &m.lo);
    return m;
  }
  static A Mul(const M& m, int32_t c) {
    const Digits d = Constant(c);
    return A{v::Mul<64>(m.hi, d.hi), v::Mac(v::Mul<64>(m.hi, d.lo), m.lo, d.hi),
             v::Mul<64>(m.lo, d.lo)};
  }
  static A Mac(const A& a, const M& m, int32_t c) {
    const Digits d = Constant(c);
    return A{v::Mac(a.hh, m.hi, d.hi),
             v::Mac(v::Mac(a.cr, m.hi, d.lo), m.lo, d.hi),
             v::Mac(a.ll, m.lo, d.lo)};
  }
  // v 2^30 = (v 2^14) 2^16: CR alone.
  static A Lift(const V& v) { return A{A64{}, v::Ups<64>(v, 14), A64{}}; }
  static A AddA(const A& a, const A& b) {
    return A{v::AddAcc(a.hh, b.hh), v::AddAcc(a.cr, b.cr),
             v::AddAcc(a.ll, b.ll)};
  }
  static A SubA(const A& a, const A& b) {
    return A{v::SubAcc(a.hh, b.hh), v::SubAcc(a.cr, b.cr),
             v::SubAcc(a.ll, b.ll)};
  }
  // |HH| < 2^31 (at most four products of digits below 2^14.7 and 2^14)
  // and |LL| < 2^33, so both srs to int32 are exact.
  static V Round(const A& a, int s) {
    const V32 hh = v::Srs<int32_t>(a.hh, 0, v::Round::kFloor);
    const V32 ll = v::Srs<int32_t>(a.ll, 16, v::Round::kFloor);
    const A64 t =
        v::AddAcc(v::AddAcc(a.cr, v::Ups<64>(hh, 16)), v::Ups<64>(ll, 0));
    return v::Srs<int32_t>(t, s - 16, v::Round::kPosInf);
  }
  static V Add(const V& a, const V& b) { return v::Add(a, b); }
  static V Sub(const V& a, const V& b) { return v::Sub(a, b); }
  void Put(int i, const V& x) { v::Store(scratch_[i], x); }
  V Get(int i) const { return v::Load<G>(scratch_[i]); }
  static void Loop() { v::LoopEntry(); }
  // 2X[k] in place: bin k's re and im in the two words of BinSlot(k).
  void Emit(int k, const V& re, const V& im) {
    Put(2 * fft::BinSlot(k), re);
    Put(2 * fft::BinSlot(k) + 1, im);
  }

 private:
  // Both digits of a constant: one 32-bit word from a table.
  static Digits Constant(int32_t c) {
    v::ScalarMem(1);
    return SplitConst(c);
  }

  const int16_t* in_t_;
  int32_t scratch_[2 * (fft::kPoints + 1)][G];  // 402 values
};

// The power of one bin as six int16 digit planes:
//   P = H 2^32 + C 2^17 + (L' + 2^30), H = h1 2^16 + h0, C = c1 2^16 + c0,
//   L' = l1 2^16 + l0; stored as h1, h0, 2 c1, c0, l1, l0.
struct PowerDigits {
  int16_t plane[6][G];
};

void Power(const V32& re, const V32& im, PowerDigits* out) {
  V16 rh, rl, ih, il;
  Split32(re, &rh, &rl);
  Split32(im, &ih, &il);
  const A64 h = v::Mac(v::Mul<64>(rh, rh), ih, ih);
  const A64 c = v::Mac(v::Mul<64>(rh, rl), ih, il);
  const A64 l = v::SubAcc(v::Mac(v::Mul<64>(rl, rl), il, il),
                          v::Ups<64>(v::Broadcast<G>(int32_t{1} << 30), 0));
  V16 h1, h0, c1, c0, l1, l0;
  SplitAcc(h, &h1, &h0);
  SplitAcc(c, &c1, &c0);
  SplitAcc(l, &l1, &l0);
  v::Store(out->plane[0], h1);
  v::Store(out->plane[1], h0);
  v::Store(out->plane[2], v::Add(c1, c1));
  v::Store(out->plane[3], c0);
  v::Store(out->plane[4], l1);
  v::Store(out->plane[5], l0);
}

// E = hi 2^31 + lo per lane, lo in [0, 2^31).
struct EnergyLimbs {
  int32_t hi[G];
  int32_t lo[G];
};

template <int Bands>
void BandEnergy(const PowerDigits* ring, int m, EnergyLimbs* e) {
  const FilterbankTableOf<Bands>& fb = kFilterbankOf<Bands>;
  const BandTable<Bands>& bt = kBandTable<Bands>;
  v::LoopEntry();
  A64 a48{}, a32{}, a17{}, a16{}, a0{};
  const int first = fb.first[m];
  for (int i = 0; i < fb.count[m]; ++i) {
    const PowerDigits& p = ring[(first + i) & (bt.ring - 1)];
    const int16_t w = bt.weight[fb.offset[m] + i];
    v::Scalar(2);
    v::ScalarMem(1);
    V16 d[6];
    for (int j = 0; j < 6; ++j) d[j] = v::Load<G>(p.plane[j]);
    // The six digit-times-weight products into their accumulators.
    auto accumulate = [&](int16_t weight) {
      a48 = v::Mac(a48, d[0], weight);
      a32 = v::Mac(a32, d[1], weight);
      a32 = v::Mac(a32, d[2], weight);
      a17 = v::Mac(a17, d[3], weight);
      a16 = v::Mac(a16, d[4], weight);
      a0 = v::Mac(a0, d[5], weight);
    };
    if (i == 0) {
      a48 = v::Mul<64>(d[0], w);
      a32 = v::Mac(v::Mul<64>(d[1], w), d[2], w);
      a17 = v::Mul<64>(d[3], w);
      a16 = v::Mul<64>(d[4], w);
      a0 = v::Mul<64>(d[5], w);
    } else {
      accumulate(w);
    }
    if (const int16_t x = bt.extra[fb.offset[m] + i]; x != 0) {
      // The rest of a weight above 32767: the same six products again.
      v::Scalar(1);
      accumulate(x);
    }
  }
  // floor(S / 2^16) = 2^32 A48 + 2^16 A32 + 2 A17 + A16 + 2^14 sum(W)
  //                   + floor(A0 / 2^16), with A32 = q 2^16 + r.
  const V32 q = v::Srs<int32_t>(a32, 16, v::Round::kFloor);
  const V32 r =
      v::Srs<int32_t>(v::SubAcc(a32, v::Ups<64>(q, 16)), 0, v::Round::kFloor);
  const V32 hi = v::Add(v::Srs<int32_t>(a48, 0, v::Round::kFloor), q);
  A64 low = v::AddAcc(v::AddAcc(a17, a17), a16);
  low = v::AddAcc(low, v::Ups<64>(v::Broadcast<G>(bt.weight_sum[m]), 14));
  low =
      v::AddAcc(low, v::Ups<64>(v::Srs<int32_t>(a0, 16, v::Round::kFloor), 0));
  low = v::AddAcc(low, v::Ups<64>(r, 16));
  // low = mid 2^16 + lo with lo in [0, 2^16); mid fits int32 (|low| < 2^40).
  const V32 mid = v::Srs<int32_t>(low, 16, v::Round::kFloor);
  const V32 lo =
      v::Srs<int32_t>(v::SubAcc(low, v::Ups<64>(mid, 16)), 0, v::Round::kFloor);
  // E = hi 2^32 + mid 2^16 + lo = (2 hi + (mid >> 15)) 2^31
  //     + ((mid & 0x7FFF) 2^16 + lo).
  v::Store(e->hi, v::Add(v::Add(hi, hi), v::ShiftRight(mid, 15)));
  v::Store(e->lo,
           v::Add(v::ShiftLeft(v::BitAnd(mid, int32_t{0x7FFF}), 16), lo));
}

// The log stage over all bands of the group, QuantizeLogMel's formula:
//  1. normalise E (two 31-bit limbs) so that its top bit is bit 61, by a
//     select chain of uniform shifts (31, 16, 8, 4, 2, 1): the high limb is
//     then Log2Q30's 31-bit mantissa and msb = 61 - shifts;
//  2. the table lookups (a gather: scalar code, one lane at a time);
//  3. interpolation and the 16 log10(2) scaling as 16-bit digit products,
//     rounding and clamping in lanes.
struct LogScratch {
  int32_t index[G];
  int32_t lo[G];
  int32_t hi[G];
};

inline V32 Splat(int32_t x) { return v::Broadcast<G>(x); }

// Out int8_t: QuantizeLogMel (mel); int16_t: LogMelQ8 (mel_pcm), the same
// normalisation and interpolation, then log10 in Q8 floored at -2560.
template <int Bands, typename Out>
void LogStage(const EnergyLimbs* limbs, Out* out_t) {
  static_assert(std::is_same_v<Out, int8_t> || std::is_same_v<Out, int16_t>);
  constexpr bool kQ8 = std::is_same_v<Out, int16_t>;
  constexpr int kFracBits = 30 - kLog2TableBits;  // 23
  constexpr int32_t kMask31 = 0x7FFFFFFF;
  LogScratch scratch[Bands];
  V32 msb[Bands];
  V32 frac[Bands];
  v::Mask<G> zero[Bands];
  v::BeginRegion(kLog);
  v::LoopEntry();
  for (int m = 0; m < Bands; ++m) {
    V32 hi = v::Load<G>(limbs[m].hi);
    V32 lo = v::Load<G>(limbs[m].lo);
    zero[m] = v::NonZero(v::BitOr(hi, lo));
    V32 shifts = Splat(0);
    constexpr int kSteps[] = {31, 16, 8, 4, 2, 1};
    for (int s : kSteps) {
      // Shift left by s where the top s bits of the 62-bit value are 0 (hi <
      // 2^(31 - s)).
      const v::Mask<G> room = v::LessThan(hi, Splat(int32_t{1} << (31 - s)));
      const V32 hi_s =
          s == 31 ? lo
                  : v::BitOr(v::ShiftLeft(hi, s), v::ShiftRight(lo, 31 - s));
      const V32 lo_s =
          s == 31 ? Splat(0) : v::BitAnd(v::ShiftLeft(lo, s), kMask31);
      hi = v::Select(hi, hi_s, room);
      lo = v::Select(lo, lo_s, room);
      shifts = v::Select(shifts, v::Add(shifts, Splat(s)), room);
    }
    msb[m] = v::Sub(Splat(61), shifts);
    const V32 f = v::Sub(hi, Splat(int32_t{1} << 30));
    v::Store(scratch[m].index, v::ShiftRight(f, kFracBits));
    frac[m] = v::BitAnd(f, int32_t{(1 << kFracBits) - 1});
  }
  // The gather: per lane one index load, two table loads, two stores.
  v::BeginRegion(kGather);
  for (int m = 0; m < Bands; ++m) {
    for (int lane = 0; lane < G; ++lane) {
      v::ScalarMem(5);
      // A band with no energy (E = 0) never normalises: its lane holds a
      // garbage index whose result is selected away later. Keep the load in
      // the table (valid lanes are 0..127 already).
      const int32_t index = scratch[m].index[lane] & 127;
      scratch[m].lo[lane] = kLog2.v[index];
      scratch[m].hi[lane] = kLog2.v[index + 1];
    }
  }
  v::BeginRegion(kLog);
  v::LoopEntry();
  constexpr Digits kScale = SplitConst(
      static_cast<int32_t>(kQ8 ? kLog10Of2Q28 : kSixteenLog10Of2Q28));
  for (int m = 0; m < Bands; ++m) {
    const V32 lo = v::Load<G>(scratch[m].lo);
    const V32 hi = v::Load<G>(scratch[m].hi);
    // interp = floor((hi - lo) frac / 2^23), (hi - lo) < 2^24, frac < 2^23.
    V16 d1, d0, f1, f0;
    Split32(v::Sub(hi, lo), &d1, &d0);
    Split32(frac[m], &f1, &f0);
    const A64 p32 = v::Mul<64>(d1, f1);
    const A64 p16 = v::Mac(v::Mul<64>(d1, f0), d0, f1);
    const A64 p0 = v::Mul<64>(d0, f0);
    const A64 t = v::AddAcc(
        v::AddAcc(p16,
                  v::Ups<64>(v::Srs<int32_t>(p32, 0, v::Round::kFloor), 16)),
        v::Ups<64>(v::Srs<int32_t>(p0, 16, v::Round::kFloor), 0));
    const V32 interp = v::Srs<int32_t>(t, kFracBits - 16, v::Round::kFloor);
    // log2_q24 = msb 2^24 + floor((lo + interp) / 64) - 44 2^24.
    const V32 log2_q24 = v::Sub(
        v::Add(v::ShiftLeft(msb[m], 24), v::ShiftRight(v::Add(lo, interp), 6)),
        Splat(int32_t{kEnergyFracBits} << 24));
    // int8: q = floor((log2_q24 K + 2^58 + 2^51) / 2^52), K = 16 log10(2)
    // Q28; Q8: l = floor((log2_q24 K + 2^43) / 2^44), K = log10(2) Q28.
    // floor(P / 2^16) from digit products, then / 2^20, then the constant.
    V16 g1, g0;
    Split32(log2_q24, &g1, &g0);
    const A64 x = v::Mac(v::Mul<64>(g1, kScale.lo), g0, kScale.hi);
    const A64 t2 = v::AddAcc(
        v::AddAcc(x, v::Ups<64>(v::Srs<int32_t>(v::Mul<64>(g1, kScale.hi), 0,
                                                v::Round::kFloor),
                                16)),
        v::Ups<64>(
            v::Srs<int32_t>(v::Mul<64>(g0, kScale.lo), 16, v::Round::kFloor),
            0));
    const V32 coarse = v::Srs<int32_t>(t2, 20, v::Round::kFloor);
    if constexpr (kQ8) {
      // |l| <= 256 log10(2^64) < 2^15: the int16 store never saturates.
      V32 l = v::ShiftRight(v::Add(coarse, Splat(int32_t{1} << 7)), 8);
      l = v::Max(l, Splat(int32_t{kMinLogMelQ8}));
      l = v::Select(Splat(int32_t{kMinLogMelQ8}), l, zero[m]);
      v::Store(out_t + m * G,
               v::Srs<int16_t>(v::Ups<64>(l, 0), 0, v::Round::kFloor));
    } else {
      V32 q = v::ShiftRight(
          v::Add(coarse, Splat((int32_t{1} << 22) + (int32_t{1} << 15))), 16);
      q = v::Min(v::Max(q, Splat(kMinLogMel)), Splat(127));
      q = v::Select(Splat(kMinLogMel), q, zero[m]);
      v::Store(out_t + m * G,
               v::Srs<int8_t>(v::Ups<64>(q, 0), 0, v::Round::kFloor));
    }
  }
}

template <int Bands, typename Out>
void Group(const int16_t* in_t, Out* out_t) {
  static_assert(kBandTable<Bands>.ordered,
                "bands must end in bin order for the streaming mel stage");
  static_assert(kBandTable<Bands>.weights_fit,
                "weights must fit two int16 digits");
  static_assert(kBandTable<Bands>.ring <= 32, "ring must stay small");
  v::BeginRegion(kFft);
  VecFftOps ops(in_t);
  fft::Run(ops);
  PowerDigits ring[kBandTable<Bands>.ring];
  EnergyLimbs limbs[Bands];
  const FilterbankTableOf<Bands>& fb = kFilterbankOf<Bands>;
  int band = 0;
  for (int k = 0; k < kFftBins; ++k) {
    v::BeginRegion(kPowerRegion);
    if (k == 0) v::LoopEntry();
    const int slot = 2 * fft::BinSlot(k);
    v::ScalarMem(1);  // the slot table
    Power(ops.Get(slot), ops.Get(slot + 1),
          &ring[k & (kBandTable<Bands>.ring - 1)]);
    v::BeginRegion(kMelBandsRegion);
    while (band < Bands && fb.first[band] + fb.count[band] - 1 <= k) {
      BandEnergy<Bands>(ring, band, &limbs[band]);
      ++band;
    }
  }
  LogStage<Bands, Out>(limbs, out_t);
}

}  // namespace
}  // namespace npuk::mel

extern "C" void mel_vec_group(const int16_t* in_t, int8_t* out) {
  npuk::mel::Group<npuk::mel::kMelBands, int8_t>(in_t, out);
}

extern "C" void mel_pcm_vec_group(const int16_t* in_t, int16_t* out) {
  npuk::mel::Group<npuk::mel::kMelBands, int16_t>(in_t, out);
}

extern "C" void mel128_vec_group(const int16_t* in_t, int8_t* out) {
  npuk::mel::Group<npuk::mel::kMel128Bands, int8_t>(in_t, out);
}

extern "C" void mel128_pcm_vec_group(const int16_t* in_t, int16_t* out) {
  npuk::mel::Group<npuk::mel::kMel128Bands, int16_t>(in_t, out);
}

#if !NPUK_VEC_AIE
namespace npuk::cpu {
namespace {

template <int Bands, typename Out>
void FramesVec(void (*group)(const int16_t*, Out*), const int16_t* in, Out* out,
               size_t n, vec::Profile* counts) {
  constexpr int G = kMelVecLanes;
  int16_t in_t[mel::kFrameSamples * G];
  Out group_out[G * Bands];
  for (size_t base = 0; base < n; base += G) {
    const size_t lanes = n - base < G ? n - base : G;
    // The mem tile's DMA transpose (no core cost); silence pads.
    for (int s = 0; s < mel::kFrameSamples; ++s) {
      for (int f = 0; f < G; ++f) {
        in_t[s * G + f] =
            static_cast<size_t>(f) < lanes
                ? in[(base + static_cast<size_t>(f)) * mel::kFrameSamples + s]
                : int16_t{0};
      }
    }
    {
      vec::CountScope scope(counts);
      group(in_t, group_out);
    }
    for (size_t f = 0; f < lanes; ++f) {
      for (int m = 0; m < Bands; ++m) {
        out[(base + f) * Bands + static_cast<size_t>(m)] =
            group_out[static_cast<size_t>(m) * G + f];
      }
    }
  }
}

}  // namespace

void MelFramesVec(const int16_t* in, int8_t* out, size_t n,
                  vec::Profile* counts) {
  FramesVec<mel::kMelBands, int8_t>(mel_vec_group, in, out, n, counts);
}

void MelPcmFramesVec(const int16_t* in, int16_t* out, size_t n,
                     vec::Profile* counts) {
  FramesVec<mel::kMelBands, int16_t>(mel_pcm_vec_group, in, out, n, counts);
}

void Mel128FramesVec(const int16_t* in, int8_t* out, size_t n,
                     vec::Profile* counts) {
  FramesVec<mel::kMel128Bands, int8_t>(mel128_vec_group, in, out, n, counts);
}

void Mel128PcmFramesVec(const int16_t* in, int16_t* out, size_t n,
                        vec::Profile* counts) {
  FramesVec<mel::kMel128Bands, int16_t>(mel128_pcm_vec_group, in, out, n,
                                        counts);
}

}  // namespace npuk::cpu
#endif
