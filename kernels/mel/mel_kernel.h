// The mel kernel entry, compiled for the AIE2 cores (Peano) and for the host.
// One 25 ms frame at 16 kHz in, Whisper's 80 log-mel values out; the math is
// in kernels/common/mel_math.h and kernels/mel/README.md.
#ifndef NPUK_KERNELS_MEL_MEL_KERNEL_H_
#define NPUK_KERNELS_MEL_MEL_KERNEL_H_

#include <cstddef>
#include <cstdint>

namespace npuk {
inline constexpr size_t kMelFrameSamples = 400;  // int16, full scale = 1.0
inline constexpr size_t kMelBands = 80;          // int8, log10 P ~ q/16 - 4
inline constexpr size_t kMelFrameInBytes = kMelFrameSamples * 2;  // 800
inline constexpr size_t kMelFrameOutBytes = kMelBands;            // 80
}  // namespace npuk

// in: 400 int16 samples (little endian); out: 80 int8,
// q = clamp(round(16 (log10 P + 4)), -128, 127), P the Slaney mel power.
extern "C" void mel_kernel_simple(const int16_t* in, int8_t* out);

#endif  // NPUK_KERNELS_MEL_MEL_KERNEL_H_
