// A thin vector vocabulary for the AIE2 (AIE-ML) kernels, with two faces:
//
//  - the aie face (Peano or xchesscc, `__AIENGINE__`/`__chess__` defined):
//    every operation is one aie_api call (Xilinx/aie_api, shipped with
//    mlir-aie as include/aie_api). It is kept small on purpose: it cannot be
//    compiled here (no Peano in CI), so each line maps to a documented
//    aie_api function and nothing else.
//  - the host face (everything else): the same operations on plain arrays,
//    exact integer semantics (AIE2 accumulators are 32 or 64 bits wide per
//    lane, shift-round-saturate on the way back to vectors), and per-call
//    operation counts (OpCounts) that feed the cycle model
//    (kernels/vec/cycle_model.h). CI builds and tests this face bit for bit
//    against the CPU backend.
//
// Only operations AIE2 has natively are offered: int8/int16 multiplicands
// (16x16 -> acc32 or acc64, 8x8 and 16x8 matrix blocks -> acc32), 32-bit
// vector add/sub/compare/select/shift, srs (accumulator -> vector with a
// right shift, a rounding mode and saturation) and ups (vector ->
// accumulator with a left shift). 32-bit factors are split into 16-bit
// digits by the kernels themselves (SplitDigits), so every product is
// exact.
//
// Freestanding C++20: <cstdint> only on the aie face.
#ifndef NPUK_KERNELS_VEC_VEC_H_
#define NPUK_KERNELS_VEC_VEC_H_

#include <cstdint>

#if defined(__AIENGINE__) || defined(__chess__)
#define NPUK_VEC_AIE 1
#include <aie_api/aie.hpp>
#include <type_traits>
#else
#define NPUK_VEC_AIE 0
#endif

namespace npuk::vec {

// Operations one kernel call issued, by the AIE2 unit that executes them
// (AMD AM020, "AIE-ML Processor": a VLIW core with a scalar unit, a vector
// unit with a multiplier path and a shift/shuffle/add path, two load units
// and one store unit).
struct OpCounts {
  uint64_t vmac = 0;        // vector mul/mac/mmul instructions (VMAC slot)
  uint64_t valu = 0;        // vector add/sub/compare/select/shift/broadcast
  uint64_t vmove = 0;       // srs (acc -> vector) and ups (vector -> acc)
  uint64_t load_bits = 0;   // bits loaded by vector loads
  uint64_t loads = 0;       // vector load instructions
  uint64_t store_bits = 0;  // bits stored by vector stores
  uint64_t stores = 0;      // vector store instructions
  uint64_t scalar = 0;      // 32-bit scalar ALU / multiply operations
  uint64_t scalar_mem = 0;  // scalar loads and stores
  uint64_t muldi3 = 0;      // 64-bit multiplies (a __muldi3 call on AIE2)
  uint64_t udivsi3 = 0;     // 32-bit divisions (a __udivsi3 call on AIE2)
  uint64_t loops = 0;       // software-pipelined loop entries

  OpCounts& operator+=(const OpCounts& o) {
    vmac += o.vmac;
    valu += o.valu;
    vmove += o.vmove;
    load_bits += o.load_bits;
    loads += o.loads;
    store_bits += o.store_bits;
    stores += o.stores;
    scalar += o.scalar;
    scalar_mem += o.scalar_mem;
    muldi3 += o.muldi3;
    udivsi3 += o.udivsi3;
    loops += o.loops;
    return *this;
  }
};

// Rounding of srs. kPosInf is round half up, what fixed::RoundShift does;
// kFloor truncates toward minus infinity (an arithmetic shift).
enum class Round { kFloor, kPosInf };

#if !NPUK_VEC_AIE
// ------------------------------------------------------------ host face --

// A kernel call's operations, by region: a region is one stretch of code
// the compiler schedules as a unit (a software-pipelined vector loop nest,
// or scalar code). The cycle model prices each region on its own.
struct Profile {
  static constexpr int kRegions = 8;
  OpCounts region[kRegions];
  int current = 0;

  OpCounts Total() const {
    OpCounts t;
    for (const OpCounts& r : region) t += r;
    return t;
  }
  Profile& operator+=(const Profile& o) {
    for (int i = 0; i < kRegions; ++i) region[i] += o.region[i];
    return *this;
  }
};

// The profile of the calling thread, or null (not counting).
inline thread_local Profile* g_profile = nullptr;

// Counts the operations issued on this thread while it lives.
class CountScope {
 public:
  explicit CountScope(Profile* profile) : saved_(g_profile) {
    g_profile = profile;
  }
  ~CountScope() { g_profile = saved_; }
  CountScope(const CountScope&) = delete;
  CountScope& operator=(const CountScope&) = delete;

 private:
  Profile* saved_;
};

#define NPUK_VEC_COUNT(field, n)                                               \
  do {                                                                         \
    if (::npuk::vec::g_profile != nullptr)                                     \
      ::npuk::vec::g_profile->region[::npuk::vec::g_profile->current].field += \
          static_cast<uint64_t>(n);                                            \
  } while (0)

// Later operations count in region `id` (0 .. Profile::kRegions - 1).
inline void BeginRegion(int id) {
  if (g_profile != nullptr) g_profile->current = id;
}

template <typename T, int N>
struct Vec {
  T v[N];
};

// An accumulator of N lanes, each Bits (32 or 64) wide. Values are kept
// exact; kernels keep acc32 lanes within int32 (checked by the tests via
// Acc32InRange).
template <int Bits, int N>
struct Acc {
  int64_t v[N];
};

template <typename T>
constexpr int64_t MinOf() {
  return -(int64_t{1} << (8 * sizeof(T) - 1));
}
template <typename T>
constexpr int64_t MaxOf() {
  return (int64_t{1} << (8 * sizeof(T) - 1)) - 1;
}

// Lanes of an acc32 that left int32 (an AIE2 acc32 would have wrapped).
inline thread_local uint64_t g_acc32_overflows = 0;

template <int Bits, int N>
inline void CheckAcc(const Acc<Bits, N>& a) {
  if constexpr (Bits == 32) {
    for (int i = 0; i < N; ++i) {
      if (a.v[i] < MinOf<int32_t>() || a.v[i] > MaxOf<int32_t>())
        ++g_acc32_overflows;
    }
  }
}

template <int N, typename T>
inline Vec<T, N> Load(const T* p) {
  NPUK_VEC_COUNT(loads, 1);
  NPUK_VEC_COUNT(load_bits, N * 8 * sizeof(T));
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = p[i];
  return r;
}

template <typename T, int N>
inline void Store(T* p, const Vec<T, N>& x) {
  NPUK_VEC_COUNT(stores, 1);
  NPUK_VEC_COUNT(store_bits, N * 8 * sizeof(T));
  for (int i = 0; i < N; ++i) p[i] = x.v[i];
}

template <int N, typename T>
inline Vec<T, N> Broadcast(T x) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = x;
  return r;
}

// Lane-wise 32-bit (or narrower) ALU operations, wrapping like hardware.
template <typename T, int N>
inline Vec<T, N> Add(const Vec<T, N>& a, const Vec<T, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i)
    r.v[i] = static_cast<T>(static_cast<uint32_t>(a.v[i]) +
                            static_cast<uint32_t>(b.v[i]));
  return r;
}

template <typename T, int N>
inline Vec<T, N> Sub(const Vec<T, N>& a, const Vec<T, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i)
    r.v[i] = static_cast<T>(static_cast<uint32_t>(a.v[i]) -
                            static_cast<uint32_t>(b.v[i]));
  return r;
}

template <typename T, int N>
inline Vec<T, N> Min(const Vec<T, N>& a, const Vec<T, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
  return r;
}

template <typename T, int N>
inline Vec<T, N> Max(const Vec<T, N>& a, const Vec<T, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
  return r;
}

template <typename T, int N>
inline Vec<T, N> BitAnd(const Vec<T, N>& a, T mask) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = static_cast<T>(a.v[i] & mask);
  return r;
}

// Arithmetic right shift by a uniform amount.
template <typename T, int N>
inline Vec<T, N> ShiftRight(const Vec<T, N>& a, int s) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = static_cast<T>(a.v[i] >> s);
  return r;
}

// Logical left shift by a uniform amount.
template <typename T, int N>
inline Vec<T, N> ShiftLeft(const Vec<T, N>& a, int s) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i)
    r.v[i] = static_cast<T>(static_cast<uint32_t>(a.v[i]) << s);
  return r;
}

template <typename T, int N>
inline Vec<T, N> BitOr(const Vec<T, N>& a, const Vec<T, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = static_cast<T>(a.v[i] | b.v[i]);
  return r;
}

// Lane mask: a[i] != 0.
template <int N>
struct Mask {
  bool m[N];
};

// Lane mask: a[i] < b[i] (signed).
template <typename T, int N>
inline Mask<N> LessThan(const Vec<T, N>& a, const Vec<T, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Mask<N> r;
  for (int i = 0; i < N; ++i) r.m[i] = a.v[i] < b.v[i];
  return r;
}

template <typename T, int N>
inline Mask<N> NonZero(const Vec<T, N>& a) {
  NPUK_VEC_COUNT(valu, 1);
  Mask<N> r;
  for (int i = 0; i < N; ++i) r.m[i] = a.v[i] != 0;
  return r;
}

// b where the mask is set, else a.
template <typename T, int N>
inline Vec<T, N> Select(const Vec<T, N>& a, const Vec<T, N>& b,
                        const Mask<N>& m) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = m.m[i] ? b.v[i] : a.v[i];
  return r;
}

// 16-bit operands into acc32 or acc64 lanes (one VMAC each).
template <int Bits, int N>
inline Acc<Bits, N> Mul(const Vec<int16_t, N>& a, const Vec<int16_t, N>& b) {
  NPUK_VEC_COUNT(vmac, 1);
  Acc<Bits, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = int64_t{a.v[i]} * b.v[i];
  CheckAcc(r);
  return r;
}

template <int Bits, int N>
inline Acc<Bits, N> Mul(const Vec<int16_t, N>& a, int16_t b) {
  NPUK_VEC_COUNT(vmac, 1);
  Acc<Bits, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = int64_t{a.v[i]} * b;
  CheckAcc(r);
  return r;
}

template <int Bits, int N>
inline Acc<Bits, N> Mac(const Acc<Bits, N>& acc, const Vec<int16_t, N>& a,
                        int16_t b) {
  NPUK_VEC_COUNT(vmac, 1);
  Acc<Bits, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = acc.v[i] + int64_t{a.v[i]} * b;
  CheckAcc(r);
  return r;
}

template <int Bits, int N>
inline Acc<Bits, N> Mac(const Acc<Bits, N>& acc, const Vec<int16_t, N>& a,
                        const Vec<int16_t, N>& b) {
  NPUK_VEC_COUNT(vmac, 1);
  Acc<Bits, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = acc.v[i] + int64_t{a.v[i]} * b.v[i];
  CheckAcc(r);
  return r;
}

template <int Bits, int N>
inline Acc<Bits, N> AddAcc(const Acc<Bits, N>& a, const Acc<Bits, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Acc<Bits, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = a.v[i] + b.v[i];
  CheckAcc(r);
  return r;
}

template <int Bits, int N>
inline Acc<Bits, N> SubAcc(const Acc<Bits, N>& a, const Acc<Bits, N>& b) {
  NPUK_VEC_COUNT(valu, 1);
  Acc<Bits, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = a.v[i] - b.v[i];
  CheckAcc(r);
  return r;
}

// ups: vector lanes into an accumulator, shifted left by `shift`.
template <int Bits, typename T, int N>
inline Acc<Bits, N> Ups(const Vec<T, N>& x, int shift) {
  NPUK_VEC_COUNT(vmove, 1);
  Acc<Bits, N> r;
  for (int i = 0; i < N; ++i)
    r.v[i] =
        static_cast<int64_t>(static_cast<uint64_t>(int64_t{x.v[i]}) << shift);
  CheckAcc(r);
  return r;
}

// srs: accumulator lanes shifted right by `shift` with rounding `round`,
// saturated to T.
template <typename T, int Bits, int N>
inline Vec<T, N> Srs(const Acc<Bits, N>& a, int shift, Round round) {
  NPUK_VEC_COUNT(vmove, 1);
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) {
    int64_t x = a.v[i];
    if (shift > 0) {
      if (round == Round::kPosInf) x += int64_t{1} << (shift - 1);
      x >>= shift;
    }
    if (x < MinOf<T>()) x = MinOf<T>();
    if (x > MaxOf<T>()) x = MaxOf<T>();
    r.v[i] = static_cast<T>(x);
  }
  return r;
}

// One aie::mmul<M, K, N, TA, TB, acc32> block product: C (M x N, acc32)
// += A (M x K, row major) * B (K x N, row major). One VMAC.
template <int M, int K, int N, typename TA, typename TB>
struct Mmul {
  Acc<32, M * N> c{};
  void Mac(const Vec<TA, M * K>& a, const Vec<TB, K * N>& b) {
    NPUK_VEC_COUNT(vmac, 1);
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < N; ++j) {
        int64_t s = c.v[i * N + j];
        for (int k = 0; k < K; ++k)
          s += int64_t{a.v[i * K + k]} * int64_t{b.v[k * N + j]};
        c.v[i * N + j] = s;
      }
    }
    CheckAcc(c);
  }
  Acc<32, M * N> Result() const { return c; }
};

// The maximum and the sum of each Chunk-lane group (e.g. one matrix row of
// a 2 x 8 block), as scalars: on AIE2 lane extraction and the scalar unit
// (no cross-lane reduction within a vector is assumed), so counted as N
// extractions (vmove) and the scalar operations.
template <int Chunk, int N>
inline void ChunkMax(const Vec<int32_t, N>& a, int32_t* out) {
  NPUK_VEC_COUNT(vmove, N);
  NPUK_VEC_COUNT(scalar, N - N / Chunk);
  for (int c = 0; c < N / Chunk; ++c) {
    int32_t m = a.v[c * Chunk];
    for (int i = 1; i < Chunk; ++i)
      m = a.v[c * Chunk + i] > m ? a.v[c * Chunk + i] : m;
    out[c] = m;
  }
}

template <int Chunk, int N>
inline void ChunkSum(const Vec<int32_t, N>& a, int32_t* out) {
  NPUK_VEC_COUNT(vmove, N);
  NPUK_VEC_COUNT(scalar, N - N / Chunk);
  for (int c = 0; c < N / Chunk; ++c) {
    uint32_t s = 0;
    for (int i = 0; i < Chunk; ++i)
      s += static_cast<uint32_t>(a.v[c * Chunk + i]);
    out[c] = static_cast<int32_t>(s);
  }
}

// The mask of lanes N/2 .. N-1 (a constant).
template <int N>
inline Mask<N> UpperHalf() {
  Mask<N> r;
  for (int i = 0; i < N; ++i) r.m[i] = i >= N / 2;
  return r;
}

// Half h (0 or 1) of a vector (a register of a pair: free).
template <typename T, int N>
inline Vec<T, N / 2> Half(const Vec<T, N>& a, int h) {
  Vec<T, N / 2> r;
  for (int i = 0; i < N / 2; ++i) r.v[i] = a.v[h * (N / 2) + i];
  return r;
}

// Two N-lane vectors as one 2N-lane vector (a register pair: free).
template <typename T, int N>
inline Vec<T, 2 * N> Concat(const Vec<T, N>& a, const Vec<T, N>& b) {
  Vec<T, 2 * N> r;
  for (int i = 0; i < N; ++i) {
    r.v[i] = a.v[i];
    r.v[N + i] = b.v[i];
  }
  return r;
}

// Chunks of C lanes, every other one starting at chunk `odd` (aie_api's
// filter_even / filter_odd with a step of C): one shuffle.
template <int C, typename T, int N>
inline Vec<T, N / 2> FilterChunks(const Vec<T, N>& a, bool odd) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, N / 2> r;
  int k = 0;
  for (int c = odd ? 1 : 0; c < N / C; c += 2) {
    for (int i = 0; i < C; ++i) r.v[k++] = a.v[c * C + i];
  }
  return r;
}

// aie::transpose(a, R, C): the R x C row-major block as C x R. For an
// 8 x 8 int8 block one VSHUFFLE (mode T8_8x8, aie_api
// detail/aie2/transpose.hpp). The DMA cannot transpose int8 data (its
// innermost dimension moves whole 32-bit words), so kernels that need kᵀ
// take k row-blocked and transpose its blocks with this.
template <int R, int C, typename T>
inline Vec<T, R * C> Transpose(const Vec<T, R * C>& a) {
  NPUK_VEC_COUNT(valu, 1);
  Vec<T, R * C> r;
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) r.v[j * R + i] = a.v[i * C + j];
  }
  return r;
}

// Scalar work the kernels do between vector loops, counted by kind.
inline void Scalar(uint64_t ops) { NPUK_VEC_COUNT(scalar, ops); }
inline void UDiv() { NPUK_VEC_COUNT(udivsi3, 1); }
inline void ScalarMem(uint64_t ops) { NPUK_VEC_COUNT(scalar_mem, ops); }
// 32-bit scalar stores counted on the one store unit (each takes it for a
// cycle), for code whose stores are its bound: ScalarMem prices loads and
// stores together on the two load units.
inline void ScalarStore(uint64_t ops) {
  NPUK_VEC_COUNT(stores, ops);
  NPUK_VEC_COUNT(store_bits, ops * 32);
}
inline void LoopEntry() { NPUK_VEC_COUNT(loops, 1); }

#undef NPUK_VEC_COUNT

#else
// ------------------------------------------------------------- aie face --
// Not compiled in CI (no Peano here). Each function is one aie_api call.

template <typename T, int N>
using Vec = aie::vector<T, N>;
template <int Bits, int N>
using Acc = aie::accum<std::conditional_t<Bits == 32, acc32, acc64>, N>;
template <int N>
using Mask = aie::mask<N>;

template <int N, typename T>
inline Vec<T, N> Load(const T* p) {
  return aie::load_v<N>(p);
}
template <typename T, int N>
inline void Store(T* p, const Vec<T, N>& x) {
  aie::store_v(p, x);
}
template <int N, typename T>
inline Vec<T, N> Broadcast(T x) {
  return aie::broadcast<T, N>(x);
}
template <typename T, int N>
inline Vec<T, N> Add(const Vec<T, N>& a, const Vec<T, N>& b) {
  return aie::add(a, b);
}
template <typename T, int N>
inline Vec<T, N> Sub(const Vec<T, N>& a, const Vec<T, N>& b) {
  return aie::sub(a, b);
}
template <typename T, int N>
inline Vec<T, N> Min(const Vec<T, N>& a, const Vec<T, N>& b) {
  return aie::min(a, b);
}
template <typename T, int N>
inline Vec<T, N> Max(const Vec<T, N>& a, const Vec<T, N>& b) {
  return aie::max(a, b);
}
template <typename T, int N>
inline Vec<T, N> BitAnd(const Vec<T, N>& a, T mask) {
  return aie::bit_and(mask, a);
}
template <typename T, int N>
inline Vec<T, N> ShiftRight(const Vec<T, N>& a, int s) {
  return aie::downshift(a, s);
}
template <typename T, int N>
inline Vec<T, N> ShiftLeft(const Vec<T, N>& a, int s) {
  return aie::upshift(a, s);
}
template <typename T, int N>
inline Vec<T, N> BitOr(const Vec<T, N>& a, const Vec<T, N>& b) {
  return aie::bit_or(a, b);
}
template <typename T, int N>
inline Mask<N> LessThan(const Vec<T, N>& a, const Vec<T, N>& b) {
  return aie::lt(a, b);
}
template <typename T, int N>
inline Mask<N> NonZero(const Vec<T, N>& a) {
  return aie::neq(a, T{0});
}
template <typename T, int N>
inline Vec<T, N> Select(const Vec<T, N>& a, const Vec<T, N>& b,
                        const Mask<N>& m) {
  return aie::select(a, b, m);
}
template <int Bits, int N>
inline Acc<Bits, N> Mul(const Vec<int16_t, N>& a, const Vec<int16_t, N>& b) {
  return aie::mul<std::conditional_t<Bits == 32, acc32, acc64> >(a, b);
}
template <int Bits, int N>
inline Acc<Bits, N> Mul(const Vec<int16_t, N>& a, int16_t b) {
  return aie::mul<std::conditional_t<Bits == 32, acc32, acc64> >(a, b);
}
template <int Bits, int N>
inline Acc<Bits, N> Mac(const Acc<Bits, N>& acc, const Vec<int16_t, N>& a,
                        int16_t b) {
  return aie::mac(acc, a, b);
}
template <int Bits, int N>
inline Acc<Bits, N> Mac(const Acc<Bits, N>& acc, const Vec<int16_t, N>& a,
                        const Vec<int16_t, N>& b) {
  return aie::mac(acc, a, b);
}
template <int Bits, int N>
inline Acc<Bits, N> AddAcc(const Acc<Bits, N>& a, const Acc<Bits, N>& b) {
  return aie::add(a, b);
}
template <int Bits, int N>
inline Acc<Bits, N> SubAcc(const Acc<Bits, N>& a, const Acc<Bits, N>& b) {
  return aie::sub(a, b);
}
template <int Bits, typename T, int N>
inline Acc<Bits, N> Ups(const Vec<T, N>& x, int shift) {
  Acc<Bits, N> r;
  r.from_vector(x, shift);
  return r;
}
template <typename T, int Bits, int N>
inline Vec<T, N> Srs(const Acc<Bits, N>& a, int shift, Round round) {
  aie::set_rounding(round == Round::kFloor ? aie::rounding_mode::floor
                                           : aie::rounding_mode::positive_inf);
  return a.template to_vector<T>(shift);
}
template <int M, int K, int N, typename TA, typename TB>
struct Mmul {
  aie::mmul<M, K, N, TA, TB, acc32> m;
  bool started = false;
  void Mac(const Vec<TA, M * K>& a, const Vec<TB, K * N>& b) {
    if (started) {
      m.mac(a, b);
    } else {
      m.mul(a, b);
      started = true;
    }
  }
  Acc<32, M * N> Result() const { return m.to_accum(); }
};
template <int Chunk, int N>
inline void ChunkMax(const Vec<int32_t, N>& a, int32_t* out) {
  for (int c = 0; c < N / Chunk; ++c) {
    int32_t m = a.get(c * Chunk);
    for (int i = 1; i < Chunk; ++i) {
      const int32_t x = a.get(c * Chunk + i);
      m = x > m ? x : m;
    }
    out[c] = m;
  }
}
template <int Chunk, int N>
inline void ChunkSum(const Vec<int32_t, N>& a, int32_t* out) {
  for (int c = 0; c < N / Chunk; ++c) {
    uint32_t s = 0;
    for (int i = 0; i < Chunk; ++i)
      s += static_cast<uint32_t>(a.get(c * Chunk + i));
    out[c] = static_cast<int32_t>(s);
  }
}
template <int N>
inline Mask<N> UpperHalf() {
  static_assert(N <= 32, "from_uint32 covers up to 32 lanes");
  return Mask<N>::from_uint32(((uint32_t{1} << (N / 2)) - 1) << (N / 2));
}
template <typename T, int N>
inline Vec<T, N / 2> Half(const Vec<T, N>& a, int h) {
  return a.template extract<N / 2>(h);
}
template <typename T, int N>
inline Vec<T, 2 * N> Concat(const Vec<T, N>& a, const Vec<T, N>& b) {
  return aie::concat(a, b);
}
template <int C, typename T, int N>
inline Vec<T, N / 2> FilterChunks(const Vec<T, N>& a, bool odd) {
  return odd ? aie::filter_odd(a, C) : aie::filter_even(a, C);
}
template <int R, int C, typename T>
inline Vec<T, R * C> Transpose(const Vec<T, R * C>& a) {
  return aie::transpose(a, R, C);
}
inline void Scalar(uint64_t) {}
inline void UDiv() {}
inline void ScalarMem(uint64_t) {}
inline void ScalarStore(uint64_t) {}
inline void LoopEntry() {}
inline void BeginRegion(int) {}

#endif

// round(x / 2^s) the way the kernels' scalar code does it: one 64-bit add
// and shift on a 32-bit core (add/addc, then a funnel shift: 4 ops).
inline int64_t ScalarRoundShift64(int64_t x, int s) {
  Scalar(4);
  return (x + (int64_t{1} << (s - 1))) >> s;
}

// Exact a * b for |a|, |b| < 2^32 with 32-bit multiplies only: four 16x16
// partial products and the carries (what the vector kernels' scalar parts
// use instead of a __muldi3 call). Counted as 4 multiplies + 8 ALU ops.
inline uint64_t MulWideU32(uint32_t a, uint32_t b) {
  Scalar(12);
  const uint32_t a0 = a & 0xFFFFu, a1 = a >> 16;
  const uint32_t b0 = b & 0xFFFFu, b1 = b >> 16;
  const uint64_t lo = uint64_t{a0 * b0};
  const uint64_t mid = uint64_t{a0 * b1} + uint64_t{a1 * b0};
  const uint64_t hi = uint64_t{a1 * b1};
  return lo + (mid << 16) + (hi << 32);
}

// Signed version for |a|, |b| < 2^31.
inline int64_t MulWideS32(int32_t a, int32_t b) {
  Scalar(3);  // sign handling
  const bool neg = (a < 0) != (b < 0);
  const uint32_t ua =
      a < 0 ? 0u - static_cast<uint32_t>(a) : static_cast<uint32_t>(a);
  const uint32_t ub =
      b < 0 ? 0u - static_cast<uint32_t>(b) : static_cast<uint32_t>(b);
  const uint64_t p = MulWideU32(ua, ub);
  return neg ? -static_cast<int64_t>(p) : static_cast<int64_t>(p);
}

}  // namespace npuk::vec

#endif  // NPUK_KERNELS_VEC_VEC_H_
