// Compile-time double math used to build the kernels' constant tables
// (window, twiddles, filterbank, log table). Only +, -, *, / on doubles are
// used, which constant evaluation performs with IEEE-754 rounding on every
// conforming compiler, so g++, clang and Peano produce the same tables
// without any libm involved. Nothing here runs at run time.
#ifndef NPUK_KERNELS_COMMON_CONST_MATH_H_
#define NPUK_KERNELS_COMMON_CONST_MATH_H_

#include <cstdint>

namespace npuk::cmath {

inline constexpr double kPi = 3.14159265358979323846264338327950288;
inline constexpr double kLn2 = 0.693147180559945309417232121458176568;

// sin(x), cos(x) for |x| <= pi/2 by Taylor series (terms past x^30 are
// below 1e-20 there).
constexpr double SinSmall(double x) {
  double term = x, sum = x;
  for (int k = 1; k < 16; ++k) {
    term *= -x * x / ((2.0 * k) * (2.0 * k + 1.0));
    sum += term;
  }
  return sum;
}

constexpr double CosSmall(double x) {
  double term = 1.0, sum = 1.0;
  for (int k = 1; k < 16; ++k) {
    term *= -x * x / ((2.0 * k - 1.0) * (2.0 * k));
    sum += term;
  }
  return sum;
}

// cos(2*pi*num/den) and sin(2*pi*num/den), the quadrant reduced exactly in
// integers. REQUIRES: den > 0 and divisible by 4.
constexpr double CosTurn(int64_t num, int64_t den) {
  num %= den;
  if (num < 0) num += den;
  const int64_t quarter = den / 4;
  const int64_t quadrant = num / quarter;
  const double x =
      2.0 * kPi * static_cast<double>(num % quarter) / static_cast<double>(den);
  switch (quadrant) {
    case 0:
      return CosSmall(x);
    case 1:
      return -SinSmall(x);
    case 2:
      return -CosSmall(x);
    default:
      return SinSmall(x);
  }
}

constexpr double SinTurn(int64_t num, int64_t den) {
  return CosTurn(num - den / 4, den);
}

// e^x for |x| < 700.
constexpr double Exp(double x) {
  const int64_t n = static_cast<int64_t>(x / kLn2 + (x >= 0 ? 0.5 : -0.5));
  const double r = x - static_cast<double>(n) * kLn2;  // |r| <= ~0.35
  double term = 1.0, sum = 1.0;
  for (int k = 1; k < 24; ++k) {
    term *= r / k;
    sum += term;
  }
  for (int64_t i = 0; i < n; ++i) sum *= 2.0;
  for (int64_t i = 0; i > n; --i) sum *= 0.5;
  return sum;
}

// ln(x) for x > 0: x = m * 2^e with m in [1, 2), ln(m) = 2 atanh((m-1)/(m+1)).
constexpr double Log(double x) {
  int e = 0;
  while (x >= 2.0) {
    x *= 0.5;
    ++e;
  }
  while (x < 1.0) {
    x *= 2.0;
    --e;
  }
  const double t = (x - 1.0) / (x + 1.0);  // t in [0, 1/3)
  double power = t, sum = 0.0;
  for (int k = 0; k < 40; ++k) {
    sum += power / (2.0 * k + 1.0);
    power *= t * t;
  }
  return 2.0 * sum + e * kLn2;
}

// round(x), ties away from zero, for |x| < 2^62.
constexpr int64_t Round(double x) {
  return x >= 0 ? static_cast<int64_t>(x + 0.5)
                : -static_cast<int64_t>(-x + 0.5);
}

}  // namespace npuk::cmath

#endif  // NPUK_KERNELS_COMMON_CONST_MATH_H_
