// The mel128 kernel's CPU batch path over N frames, byte-identical to the
// kernel entry (mel128_kernel_simple) on every machine: the AVX-512 and
// AVX2 paths are the mel kernel's (kernels/mel/mel_cpu_avx512.cc,
// mel_cpu_avx2.cc) instantiated for 128 bands, chosen at run time by what
// the CPU has; the portable path calls the entry.
#ifndef NPUK_KERNELS_MEL128_MEL128_CPU_H_
#define NPUK_KERNELS_MEL128_MEL128_CPU_H_

#include <cstddef>
#include <cstdint>

namespace npuk::cpu {

// in: n * 400 int16 samples; out: n * 128 int8.
void Mel128Frames(const int16_t* in, int8_t* out, size_t n);

// The same with the path forced, for tests and benchmarks.
// Mel128FramesAvx2 REQUIRES HasAvx2().
void Mel128FramesPortable(const int16_t* in, int8_t* out, size_t n);
void Mel128FramesAvx2(const int16_t* in, int8_t* out, size_t n);

}  // namespace npuk::cpu

#endif  // NPUK_KERNELS_MEL128_MEL128_CPU_H_
