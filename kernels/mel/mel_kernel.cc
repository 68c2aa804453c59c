#include "kernels/mel/mel_kernel.h"

#include "kernels/common/mel_math.h"

static_assert(npuk::mel::kFrameSamples == npuk::kMelFrameSamples);
static_assert(npuk::mel::kMelBands == npuk::kMelBands);

extern "C" void mel_kernel_simple(const int16_t* in, int8_t* out) {
  npuk::mel::LogMelFrame(in, out);
}
