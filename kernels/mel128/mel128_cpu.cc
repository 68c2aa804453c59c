#include "kernels/mel128/mel128_cpu.h"

#include "kernels/common/cpu_features.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/mel128/mel128_kernel.h"

namespace npuk::cpu {

void Mel128FramesPortable(const int16_t* in, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    mel128_kernel_simple(in + i * kMelFrameSamples, out + i * kMel128Bands);
  }
}

void Mel128FramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  LogMelFramesAvx2<kMel128Bands>(in, out, n);
}

void Mel128Frames(const int16_t* in, int8_t* out, size_t n) {
  if (HasAvx2()) {
    LogMelFramesBest<kMel128Bands>(in, out, n);
  } else {
    Mel128FramesPortable(in, out, n);
  }
}

}  // namespace npuk::cpu
