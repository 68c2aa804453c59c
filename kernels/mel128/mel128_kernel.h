// The mel128 kernel entry, compiled for the AIE2 cores (Peano) and for the
// host. One 25 ms frame at 16 kHz in, the 128 log-mel values of Whisper
// large-v3 and large-v3-turbo out. The same math as the mel kernel
// (kernels/common/mel_math.h) with the 128-band Slaney filterbank; see
// kernels/mel128/README.md.
#ifndef NPUK_KERNELS_MEL128_MEL128_KERNEL_H_
#define NPUK_KERNELS_MEL128_MEL128_KERNEL_H_

#include <cstddef>
#include <cstdint>

#include "kernels/mel/mel_kernel.h"  // kMelFrameSamples, kMelFrameInBytes

namespace npuk {
inline constexpr size_t kMel128Bands = 128;  // int8, log10 P ~ q/16 - 4
inline constexpr size_t kMel128FrameOutBytes = kMel128Bands;  // 128
}  // namespace npuk

// in: 400 int16 samples (little endian, full scale 1.0); out: 128 int8,
// q = clamp(round(16 (log10 P + 4)), -96, 127), P the Slaney mel power of
// librosa.filters.mel(sr=16000, n_fft=400, n_mels=128) (floor 1e-10).
extern "C" void mel128_kernel_simple(const int16_t* in, int8_t* out);

#endif  // NPUK_KERNELS_MEL128_MEL128_KERNEL_H_
