// Integer rounding, saturation and Q30 multiplication shared by the kernels.
// Every rounding in the kernels goes through these helpers so that the AIE
// build, the scalar host build and the vectorised CPU backend round the same
// way. Freestanding C++20 (host compiler and Peano).
#ifndef NPUK_KERNELS_COMMON_FIXED_POINT_H_
#define NPUK_KERNELS_COMMON_FIXED_POINT_H_

#include <cstdint>

namespace npuk::fixed {

// round(x / 2^s), ties toward +infinity. REQUIRES: 1 <= s <= 62.
constexpr int64_t RoundShift(int64_t x, int s) {
  return (x + (int64_t{1} << (s - 1))) >> s;
}

constexpr int32_t RoundShift32(int32_t x, int s) {
  return (x + (int32_t{1} << (s - 1))) >> s;
}

// round(a * c / 2^30), ties toward +infinity, with c a Q30 constant.
// REQUIRES: the result fits in int32 (callers keep |a| < 2^29 for |c| <= 2^30).
constexpr int32_t MulQ30(int32_t a, int32_t c) {
  return static_cast<int32_t>(
      RoundShift(static_cast<int64_t>(a) * static_cast<int64_t>(c), 30));
}

constexpr int8_t Saturate8(int32_t x) {
  return static_cast<int8_t>(x < -128 ? -128 : (x > 127 ? 127 : x));
}

// Index of the most significant set bit. REQUIRES: x != 0.
constexpr int MsbIndex(uint64_t x) { return 63 - __builtin_clzll(x); }

}  // namespace npuk::fixed

#endif  // NPUK_KERNELS_COMMON_FIXED_POINT_H_
