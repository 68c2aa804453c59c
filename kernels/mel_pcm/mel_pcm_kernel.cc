#include "kernels/mel_pcm/mel_pcm_kernel.h"

#include "kernels/common/mel_math.h"

extern "C" void mel_pcm_kernel_simple(const int16_t* in, int16_t* out) {
  npuk::mel::LogMelQ8Frame<80>(in, out);
}
