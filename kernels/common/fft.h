// Fixed-point FFT of the mel kernel: a 200-point complex mixed-radix
// decimation-in-time FFT (factors 4, 2, 5, 5, the kissfft schedule) with Q30
// twiddles, plus the split that turns it into the 400-point real DFT.
//
// The code is a template over the lane type V so that one source serves the
// scalar kernel (V = int32_t) and the CPU backend, which runs the identical
// operations on 8 frames at once (V = 8 x int32 lanes). V needs +, - (binary
// and unary) and MulQ30(V, int32_t) with the rounding of fixed::MulQ30.
// Every rounding happens in MulQ30, so each lane gets the scalar result bit
// for bit. Values are never scaled down between stages: the input is bounded
// by |x| < 2^19 (see mel_math.h), every intermediate by 3 * 400 * 2^19 <
// 2^31.
#ifndef NPUK_KERNELS_COMMON_FFT_H_
#define NPUK_KERNELS_COMMON_FFT_H_

#include <cstdint>

#include "kernels/common/fixed_point.h"
#include "kernels/common/mel_tables.h"

namespace npuk::mel {

template <typename V>
struct Complex {
  V re;
  V im;
};

namespace fft_internal {

using fixed::MulQ30;

template <typename V>
inline Complex<V> Twiddle(const Complex<V>& a, int j) {
  const int32_t c = kFftTwiddles.re[j];
  const int32_t s = kFftTwiddles.im[j];
  return {MulQ30(a.re, c) - MulQ30(a.im, s), MulQ30(a.re, s) + MulQ30(a.im, c)};
}

template <typename V>
inline void Butterfly2(Complex<V>* out, int fstride, int m) {
  for (int k = 0; k < m; ++k) {
    const Complex<V> t = Twiddle(out[m + k], k * fstride);
    out[m + k] = {out[k].re - t.re, out[k].im - t.im};
    out[k] = {out[k].re + t.re, out[k].im + t.im};
  }
}

template <typename V>
inline void Butterfly4(Complex<V>* out, int fstride, int m) {
  for (int k = 0; k < m; ++k) {
    const Complex<V> s0 = Twiddle(out[k + m], k * fstride);
    const Complex<V> s1 = Twiddle(out[k + 2 * m], 2 * k * fstride);
    const Complex<V> s2 = Twiddle(out[k + 3 * m], 3 * k * fstride);
    const Complex<V> f = out[k];
    const Complex<V> s5 = {f.re - s1.re, f.im - s1.im};
    const Complex<V> f1 = {f.re + s1.re, f.im + s1.im};
    const Complex<V> s3 = {s0.re + s2.re, s0.im + s2.im};
    const Complex<V> s4 = {s0.re - s2.re, s0.im - s2.im};
    out[k + 2 * m] = {f1.re - s3.re, f1.im - s3.im};
    out[k] = {f1.re + s3.re, f1.im + s3.im};
    out[k + m] = {s5.re + s4.im, s5.im - s4.re};
    out[k + 3 * m] = {s5.re - s4.im, s5.im + s4.re};
  }
}

template <typename V>
inline void Butterfly5(Complex<V>* out, int fstride, int m) {
  // ya = e^{-2 pi i / 5}, yb = e^{-4 pi i / 5}.
  const int32_t ya_re = kFftTwiddles.re[fstride * m];
  const int32_t ya_im = kFftTwiddles.im[fstride * m];
  const int32_t yb_re = kFftTwiddles.re[2 * fstride * m];
  const int32_t yb_im = kFftTwiddles.im[2 * fstride * m];
  for (int u = 0; u < m; ++u) {
    const Complex<V> s0 = out[u];
    const Complex<V> s1 = Twiddle(out[u + m], u * fstride);
    const Complex<V> s2 = Twiddle(out[u + 2 * m], 2 * u * fstride);
    const Complex<V> s3 = Twiddle(out[u + 3 * m], 3 * u * fstride);
    const Complex<V> s4 = Twiddle(out[u + 4 * m], 4 * u * fstride);
    const Complex<V> s7 = {s1.re + s4.re, s1.im + s4.im};
    const Complex<V> s10 = {s1.re - s4.re, s1.im - s4.im};
    const Complex<V> s8 = {s2.re + s3.re, s2.im + s3.im};
    const Complex<V> s9 = {s2.re - s3.re, s2.im - s3.im};
    out[u] = {s0.re + s7.re + s8.re, s0.im + s7.im + s8.im};
    const Complex<V> s5 = {s0.re + MulQ30(s7.re, ya_re) + MulQ30(s8.re, yb_re),
                           s0.im + MulQ30(s7.im, ya_re) + MulQ30(s8.im, yb_re)};
    const Complex<V> s6 = {MulQ30(s10.im, ya_im) + MulQ30(s9.im, yb_im),
                           -(MulQ30(s10.re, ya_im) + MulQ30(s9.re, yb_im))};
    out[u + m] = {s5.re - s6.re, s5.im - s6.im};
    out[u + 4 * m] = {s5.re + s6.re, s5.im + s6.im};
    const Complex<V> s11 = {
        s0.re + MulQ30(s7.re, yb_re) + MulQ30(s8.re, ya_re),
        s0.im + MulQ30(s7.im, yb_re) + MulQ30(s8.im, ya_re)};
    const Complex<V> s12 = {MulQ30(s9.im, ya_im) - MulQ30(s10.im, yb_im),
                            MulQ30(s10.re, yb_im) - MulQ30(s9.re, ya_im)};
    out[u + 2 * m] = {s11.re + s12.re, s11.im + s12.im};
    out[u + 3 * m] = {s11.re - s12.re, s11.im - s12.im};
  }
}

// kissfft's recursive schedule: radix factors[0] over sub-transforms of
// length factors[1], reading the input with stride fstride.
template <typename V>
inline void Work(Complex<V>* out, const Complex<V>* in, int fstride,
                 const int* factors) {
  const int p = factors[0];
  const int m = factors[1];
  if (m == 1) {
    for (int q = 0; q < p; ++q) out[q] = in[q * fstride];
  } else {
    for (int q = 0; q < p; ++q) {
      Work(out + q * m, in + q * fstride, fstride * p, factors + 2);
    }
  }
  switch (p) {
    case 2:
      Butterfly2(out, fstride, m);
      break;
    case 4:
      Butterfly4(out, fstride, m);
      break;
    default:
      Butterfly5(out, fstride, m);
      break;
  }
}

inline constexpr int kFactors[8] = {4, 50, 2, 25, 5, 5, 5, 1};

}  // namespace fft_internal

// out[k] = sum_n in[n] e^{-2 pi i n k / 200}, no scaling.
template <typename V>
inline void Fft200(const Complex<V>* in, Complex<V>* out) {
  fft_internal::Work(out, in, 1, fft_internal::kFactors);
}

// Given Z = Fft200(z) with z[n] = x[2n] + i x[2n+1], returns 2 X[k] for
// k = 0..200, X the 400-point DFT of the real signal x:
//   2 X[k] = (Z[k] + conj Z[200-k]) - i e^{-2 pi i k/400} (Z[k] - conj
//   Z[200-k]).
template <typename V>
inline void SplitReal(const Complex<V>* z, Complex<V>* x2) {
  using fixed::MulQ30;
  for (int k = 0; k < kFftBins; ++k) {
    const Complex<V>& a = z[k % kHalfSamples];
    const Complex<V>& b = z[(kHalfSamples - k) % kHalfSamples];
    const Complex<V> sum = {a.re + b.re, a.im - b.im};
    const Complex<V> diff = {a.re - b.re, a.im + b.im};
    const int32_t c = kSplitTwiddles.re[k];
    const int32_t s = kSplitTwiddles.im[k];
    const V t_re = MulQ30(diff.re, c) - MulQ30(diff.im, s);
    const V t_im = MulQ30(diff.re, s) + MulQ30(diff.im, c);
    x2[k] = {sum.re + t_im, sum.im - t_re};
  }
}

}  // namespace npuk::mel

#endif  // NPUK_KERNELS_COMMON_FFT_H_
