#include "kernels/mel128/mel128_kernel.h"

#include "kernels/common/mel_math.h"

static_assert(npuk::mel::kFrameSamples == npuk::kMelFrameSamples);
static_assert(npuk::mel::kMel128Bands == npuk::kMel128Bands);

extern "C" void mel128_kernel_simple(const int16_t* in, int8_t* out) {
  npuk::mel::LogMelFrame<npuk::mel::kMel128Bands>(in, out);
}
