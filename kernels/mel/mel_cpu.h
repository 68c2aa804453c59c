// The mel kernel's CPU batch path over N frames. Byte-identical to the
// kernel entry (mel_kernel_simple) on every machine: the AVX2 path runs the
// same integer formulas on several frames per instruction and is chosen at
// run time when the CPU has AVX2; the portable path calls the entry.
#ifndef NPUK_KERNELS_MEL_MEL_CPU_H_
#define NPUK_KERNELS_MEL_MEL_CPU_H_

#include <cstddef>
#include <cstdint>

#include "kernels/common/cpu_features.h"

namespace npuk::cpu {

// in: n * 400 int16 samples; out: n * 80 int8.
void MelFrames(const int16_t* in, int8_t* out, size_t n);

// The same with the path forced, for tests and benchmarks.
// MelFramesAvx2 REQUIRES HasAvx2().
void MelFramesPortable(const int16_t* in, int8_t* out, size_t n);
void MelFramesAvx2(const int16_t* in, int8_t* out, size_t n);

}  // namespace npuk::cpu

#endif  // NPUK_KERNELS_MEL_MEL_CPU_H_
