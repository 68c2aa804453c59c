// The mel128_pcm kernel entry, compiled for the AIE2 cores (Peano) and for the
// host: one 400-sample window of 16 kHz PCM in (the shim DMA cuts it out
// of the request's PCM at a 160-sample hop), 128 int16 values out,
// round(256 log10 P) floored at -2560. The mel kernels' stages with the
// fine log stage (mel::LogMelQ8Frame, kernels/common/mel_math.h); the
// entries of both band counts are that one template.
#ifndef NPUK_KERNELS_MEL128_PCM_MEL128_PCM_KERNEL_H_
#define NPUK_KERNELS_MEL128_PCM_MEL128_PCM_KERNEL_H_

#include <cstdint>

extern "C" void mel128_pcm_kernel_simple(const int16_t* in, int16_t* out);

#endif  // NPUK_KERNELS_MEL128_PCM_MEL128_PCM_KERNEL_H_
