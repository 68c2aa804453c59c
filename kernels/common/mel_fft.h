// The mel kernels' 400-point real DFT as an integer FFT, written once over
// an arithmetic policy so that every backend runs the same roundings:
//   - the scalar face (ScalarFftOps in mel_math.h): int32 values, int64
//     accumulators; the kernel entries and the AIE scalar kernel;
//   - the CPU backend's SIMD faces (kernels/mel/mel_cpu_avx2.cc,
//     mel_cpu_avx512.cc): 4 or 8 frames per register, one per 64-bit lane;
//   - the AIE2 vector kernel (kernels/mel/mel_kernel_vec.cc): 16 frames per
//     call, every product on int16 digits into acc64 lanes.
//
// The algorithm, with xw the windowed frame (Q8, |xw| < 2^23):
//  1. z[n] = xw[2n] + i xw[2n+1], n = 0..199: the 400 real samples as 200
//     complex ones.
//  2. Z = the 200-point DFT of z by Good-Thomas, 200 = 8 x 25 (8 and 25
//     coprime, so no twiddles between them): n = (25 n1 + 8 n2) mod 200,
//     k = (25 k1 + 176 k2) mod 200, which makes nk = 25 n1 k1 + 8 n2 k2
//     (mod 200). First 25 eight-point DFTs over n1 (radix 2: the only
//     products are the two by e^{-i pi/4} and e^{-3i pi/4}), then 8
//     twenty-five-point DFTs over n2, each as 5 x 5 with twiddles
//     e^{-2 pi i b c / 25} between its two passes of five-point DFTs.
//  3. The real DFT's bins from Z: 2X[k] = (Z[k] + Z*[200-k])
//     - i e^{-2 pi i k / 400} (Z[k] - Z*[200-k]), computing bins k and
//     200 - k together.
// Every product is a value times a Q30 constant (the kCos table) summed
// exactly, and every rounding is round(sum / 2^s), ties up (RoundShift):
// s = 30 inside, s = 34 at the output (Q8 of 2X to Q4). There are 2,800
// products and 1,398 roundings per frame, against ~40,000 multiply-adds for
// the direct sum folded by the cosine table's symmetries (what the kernels
// ran before). Every value stays within int32: a partial DFT of
// the samples is bounded by their L1 norm, |xw| summed, below 2^30.64; the
// only larger quantities (the two-term sums of stage 3, the e^{-i pi/4}
// products' br + bi) are never formed as values, only inside accumulators.
//
// The FFT's roundings add about 0.013 LSB rms to 2X beyond the final
// rounding's own 0.018 (0.36 against 0.29 Q4 units rms, measured against
// the exact DFT by tests/kernels/mel_fft_test.cc); the log-mel accuracy
// bounds of tests/kernels/accuracy hold unchanged.
//
// An Ops policy provides, with V a value (an int32 per frame), M a prepared
// multiplicand and A an exact accumulator:
//   V Sample(int n)            windowed sample n (read once per frame)
//   M Prep(V)                  ready for products (digit split on AIE)
//   A Mul(M, int32_t c)        v c
//   A Mac(A, M, int32_t c)     a + v c
//   A Lift(V)                  v 2^30
//   A AddA(A, A), SubA(A, A)
//   V Round(A, int s)          round(a / 2^s), ties toward +infinity
//   V Add(V, V), Sub(V, V)     wrapping int32 (never wraps here)
//   void Put(int i, V), V Get(int i)   a 400-value scratch
//   void Emit(int k, V re, V im)       2X[k] in Q4, k = 0..200, each once
//   void Loop()                a loop nest starts (for operation counts)
// Bins are emitted in pairs (k, 200 - k), k = 0..100, and a pair's Emit
// calls follow the reads of its two scratch slots, so a face may store bin
// k into BinSlot(k) of the scratch in place.
#ifndef NPUK_KERNELS_COMMON_MEL_FFT_H_
#define NPUK_KERNELS_COMMON_MEL_FFT_H_

#include <cstdint>

#include "kernels/common/mel_tables.h"

namespace npuk::mel::fft {

inline constexpr int kPoints = kFrameSamples / 2;  // 200 complex
inline constexpr int kShift = 30;                  // Q30 constants
inline constexpr int kOutShift = 34;               // Q38 to Q4

// cos and sin of 2 pi j / 400 in Q30.
constexpr int32_t Cos(int j) { return kCos.v[((j % 400) + 400) % 400]; }
constexpr int32_t Sin(int j) { return Cos(j - 100); }

// Complex slot s of the scratch holds re at 2s and im at 2s + 1. After
// stage 2, Z[k] is in slot SlotOf(k).
struct SlotTable {
  int16_t slot[kPoints];
};

constexpr SlotTable MakeSlotTable() {
  SlotTable t{};
  for (int k1 = 0; k1 < 8; ++k1) {
    for (int c = 0; c < 5; ++c) {
      for (int d = 0; d < 5; ++d) {
        const int k = (25 * k1 + 176 * (c + 5 * d)) % kPoints;
        t.slot[k] = static_cast<int16_t>(k1 * 25 + 5 * c + d);
      }
    }
  }
  return t;
}

inline constexpr SlotTable kSlots = MakeSlotTable();

// The constants the passes use, by position (no index arithmetic at run
// time): the input order of the eight-point DFTs, the twiddles
// e^{-2 pi i b c / 25} of the 25-point DFTs and the cos/sin of 2 pi k / 400
// of the output stage.
struct FftTables {
  int16_t input[25][8];  // n = (25 j + 8 n2) mod 200
  int32_t tw_cos[5][5];
  int32_t tw_sin[5][5];
  int32_t bin_cos[kPoints / 2 + 1];
  int32_t bin_sin[kPoints / 2 + 1];
};

constexpr FftTables MakeFftTables() {
  FftTables t{};
  for (int n2 = 0; n2 < 25; ++n2) {
    for (int j = 0; j < 8; ++j) {
      t.input[n2][j] = static_cast<int16_t>((25 * j + 8 * n2) % kPoints);
    }
  }
  for (int b = 0; b < 5; ++b) {
    for (int c = 0; c < 5; ++c) {
      t.tw_cos[b][c] = Cos(16 * b * c);
      t.tw_sin[b][c] = Sin(16 * b * c);
    }
  }
  for (int k = 0; k <= kPoints / 2; ++k) {
    t.bin_cos[k] = Cos(k);
    t.bin_sin[k] = Sin(k);
  }
  return t;
}

inline constexpr FftTables kTables = MakeFftTables();

// Where a face that stores 2X in place keeps bin k (0..200): bin k < 200
// takes Z[k]'s slot, bin 200 the one past the end (the scratch then needs
// 402 values).
constexpr int BinSlot(int k) { return k < kPoints ? kSlots.slot[k] : kPoints; }

template <typename V>
struct Cx {
  V re;
  V im;
};

template <typename Ops>
class Fft {
 public:
  using V = typename Ops::V;
  using C = Cx<V>;

  explicit Fft(Ops& ops) : o_(ops) {}

  void Run() {
    o_.Loop();
    for (int n2 = 0; n2 < 25; ++n2) Eight(n2);
    o_.Loop();
    for (int k1 = 0; k1 < 8; ++k1) TwentyFive(k1 * 25);
    o_.Loop();
    Bins();
  }

 private:
  C Load(int slot) { return C{o_.Get(2 * slot), o_.Get(2 * slot + 1)}; }
  void Store(int slot, const C& x) {
    o_.Put(2 * slot, x.re);
    o_.Put(2 * slot + 1, x.im);
  }
  C Plus(const C& a, const C& b) {
    return C{o_.Add(a.re, b.re), o_.Add(a.im, b.im)};
  }
  C Minus(const C& a, const C& b) {
    return C{o_.Sub(a.re, b.re), o_.Sub(a.im, b.im)};
  }
  // a - i b and a + i b.
  C MinusI(const C& a, const C& b) {
    return C{o_.Add(a.re, b.im), o_.Sub(a.im, b.re)};
  }
  C PlusI(const C& a, const C& b) {
    return C{o_.Sub(a.re, b.im), o_.Add(a.im, b.re)};
  }
  // round(p x + q y) in Q30.
  V Dot(const auto& x, int32_t p, const auto& y, int32_t q) {
    return o_.Round(o_.Mac(o_.Mul(x, p), y, q), kShift);
  }

  // The eight-point DFT over n1 of z[(25 n1 + 8 n2) mod 200] into slots
  // 25 k1 + n2.
  void Eight(int n2) {
    C x[8];
    for (int j = 0; j < 8; ++j) {
      const int n = kTables.input[n2][j];
      x[j] = C{o_.Sample(2 * n), o_.Sample(2 * n + 1)};
    }
    C a[4], b[4];
    for (int j = 0; j < 4; ++j) {
      a[j] = Plus(x[j], x[j + 4]);
      b[j] = Minus(x[j], x[j + 4]);
    }
    const C a0 = Plus(a[0], a[2]), a2 = Minus(a[0], a[2]);
    const C a1 = Plus(a[1], a[3]), a3 = Minus(a[1], a[3]);
    Store(n2, Plus(a0, a1));
    Store(4 * 25 + n2, Minus(a0, a1));
    Store(2 * 25 + n2, MinusI(a2, a3));
    Store(6 * 25 + n2, PlusI(a2, a3));
    // c_j = b_j e^{-i pi j / 4}: c1 = h((br + bi) + i(bi - br)),
    // c2 = -i b2, c3 = h((bi - br) - i(br + bi)), h = sqrt(1/2).
    constexpr int32_t h = Cos(50);
    const auto b1r = o_.Prep(b[1].re), b1i = o_.Prep(b[1].im);
    const auto b3r = o_.Prep(b[3].re), b3i = o_.Prep(b[3].im);
    const C c1{Dot(b1r, h, b1i, h), Dot(b1i, h, b1r, -h)};
    const C c3{Dot(b3i, h, b3r, -h), Dot(b3r, -h, b3i, -h)};
    const C c0 = b[0];
    // c0 + c2 = c0 - i b2, c0 - c2 = c0 + i b2.
    const C e0 = MinusI(c0, b[2]), e2 = PlusI(c0, b[2]);
    const C e1 = Plus(c1, c3), e3 = Minus(c1, c3);
    Store(1 * 25 + n2, Plus(e0, e1));
    Store(5 * 25 + n2, Minus(e0, e1));
    Store(3 * 25 + n2, MinusI(e2, e3));
    Store(7 * 25 + n2, PlusI(e2, e3));
  }

  // The five-point DFT of x (in place), output c times
  // e^{-2 pi i b c / 25} (b = 0: no twiddles).
  void Five(C* x, int b) {
    constexpr int32_t c1 = Cos(80), s1 = Sin(80);    // 2 pi / 5
    constexpr int32_t c2 = Cos(160), s2 = Sin(160);  // 4 pi / 5
    const C t1 = Plus(x[1], x[4]), t2 = Plus(x[2], x[3]);
    const C t3 = Minus(x[1], x[4]), t4 = Minus(x[2], x[3]);
    const auto p1r = o_.Prep(t1.re), p1i = o_.Prep(t1.im);
    const auto p2r = o_.Prep(t2.re), p2i = o_.Prep(t2.im);
    const auto p3r = o_.Prep(t3.re), p3i = o_.Prep(t3.im);
    const auto p4r = o_.Prep(t4.re), p4i = o_.Prep(t4.im);
    const C r1{Dot(p1r, c1, p2r, c2), Dot(p1i, c1, p2i, c2)};
    const C r2{Dot(p1r, c2, p2r, c1), Dot(p1i, c2, p2i, c1)};
    const C q1{Dot(p3r, s1, p4r, s2), Dot(p3i, s1, p4i, s2)};
    const C q2{Dot(p3r, s2, p4r, -s1), Dot(p3i, s2, p4i, -s1)};
    const C x0 = x[0];
    x[0] = Plus(Plus(x0, t1), t2);
    const C u1 = Plus(x0, r1), u2 = Plus(x0, r2);
    x[1] = MinusI(u1, q1);
    x[4] = PlusI(u1, q1);
    x[2] = MinusI(u2, q2);
    x[3] = PlusI(u2, q2);
    if (b == 0) return;
    for (int k = 1; k < 5; ++k) {
      // e^{-i th} u = (C ur + S ui) + i (C ui - S ur).
      const int32_t cs = kTables.tw_cos[b][k], sn = kTables.tw_sin[b][k];
      const auto ur = o_.Prep(x[k].re), ui = o_.Prep(x[k].im);
      x[k] = C{Dot(ur, cs, ui, sn), Dot(ui, cs, ur, -sn)};
    }
  }

  // The 25-point DFT of slots base + n2 (n2 = 5a + b) in place, result
  // k2 = c + 5d in slot base + 5c + d.
  void TwentyFive(int base) {
    C x[5];
    for (int b = 0; b < 5; ++b) {
      for (int a = 0; a < 5; ++a) x[a] = Load(base + 5 * a + b);
      Five(x, b);
      for (int c = 0; c < 5; ++c) Store(base + 5 * c + b, x[c]);
    }
    for (int c = 0; c < 5; ++c) {
      for (int b = 0; b < 5; ++b) x[b] = Load(base + 5 * c + b);
      Five(x, 0);
      for (int d = 0; d < 5; ++d) Store(base + 5 * c + d, x[d]);
    }
  }

  // 2X[k] and 2X[200 - k] from Z[k] and Z[200 - k], S and C the sine and
  // cosine of 2 pi k / 400:
  //   re[k] = Q + D, re[200-k] = Q - D, im[k] = Qi + Di, im[200-k] = Di - Qi
  //   Q = Zk.re + Zm.re, D = S (Zm.re - Zk.re) + C (Zk.im + Zm.im)
  //   Qi = Zk.im - Zm.im, Di = C (Zm.re - Zk.re) - S (Zk.im + Zm.im)
  // summed in Q30 (Q as Lift) and rounded once to Q4.
  void Bins() {
    for (int k = 0; k <= kPoints / 2; ++k) {
      const int m = (kPoints - k) % kPoints;
      const C zk = Load(kSlots.slot[k]);
      const C zm = Load(kSlots.slot[m]);
      const int32_t cs = kTables.bin_cos[k], sn = kTables.bin_sin[k];
      const auto kr = o_.Prep(zk.re), ki = o_.Prep(zk.im);
      const auto mr = o_.Prep(zm.re), mi = o_.Prep(zm.im);
      const auto d =
          o_.Mac(o_.Mac(o_.Mac(o_.Mul(mr, sn), kr, -sn), ki, cs), mi, cs);
      const auto di =
          o_.Mac(o_.Mac(o_.Mac(o_.Mul(mr, cs), kr, -cs), ki, -sn), mi, -sn);
      const auto q = o_.AddA(o_.Lift(zk.re), o_.Lift(zm.re));
      const auto qi = o_.SubA(o_.Lift(zk.im), o_.Lift(zm.im));
      const V re = o_.Round(o_.AddA(q, d), kOutShift);
      const V im = o_.Round(o_.AddA(qi, di), kOutShift);
      if (k == kPoints / 2) {
        o_.Emit(k, re, im);
        continue;
      }
      const V re2 = o_.Round(o_.SubA(q, d), kOutShift);
      const V im2 = o_.Round(o_.SubA(di, qi), kOutShift);
      o_.Emit(k, re, im);
      o_.Emit(kPoints - k, re2, im2);
    }
  }

  Ops& o_;
};

template <typename Ops>
inline void Run(Ops& ops) {
  Fft<Ops>(ops).Run();
}

}  // namespace npuk::mel::fft

#endif  // NPUK_KERNELS_COMMON_MEL_FFT_H_
