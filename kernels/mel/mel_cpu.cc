#include "kernels/mel/mel_cpu.h"

#include "kernels/mel/mel_kernel.h"

namespace npuk::cpu {

void MelFramesPortable(const int16_t* in, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    mel_kernel_simple(in + i * kMelFrameSamples, out + i * kMelBands);
  }
}

void MelFrames(const int16_t* in, int8_t* out, size_t n) {
  if (HasAvx2()) {
    MelFramesAvx2(in, out, n);
  } else {
    MelFramesPortable(in, out, n);
  }
}

}  // namespace npuk::cpu
