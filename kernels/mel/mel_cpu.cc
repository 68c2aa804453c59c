#include "kernels/mel/mel_cpu.h"

#include "kernels/mel/mel_cpu_groups.h"
#include "kernels/mel/mel_kernel.h"

namespace npuk::cpu {

void MelFramesPortable(const int16_t* in, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    mel_kernel_simple(in + i * kMelFrameSamples, out + i * kMelBands);
  }
}

void MelFrames(const int16_t* in, int8_t* out, size_t n) {
  if (HasAvx2()) {
    LogMelFramesBest<kMelBands>(in, out, n);
  } else {
    MelFramesPortable(in, out, n);
  }
}

template <int Bands>
void LogMelFramesBest(const int16_t* in, int8_t* out, size_t n) {
  if (HasAvx512Mel()) {
    LogMelFramesAvx512<Bands>(in, out, n);
  } else if (HasAvx2()) {
    LogMelFramesAvx2<Bands>(in, out, n);
  } else {
    ScalarFrames<Bands>(in, out, n);
  }
}

template <int Bands>
void LogMelQ8FramesBest(const int16_t* in, int16_t* out, size_t n) {
  if (HasAvx512Mel()) {
    LogMelQ8FramesAvx512<Bands>(in, out, n);
  } else if (HasAvx2()) {
    LogMelQ8FramesAvx2<Bands>(in, out, n);
  } else {
    ScalarFrames<Bands>(in, out, n);
  }
}

template void LogMelFramesBest<mel::kMelBands>(const int16_t*, int8_t*, size_t);
template void LogMelFramesBest<mel::kMel128Bands>(const int16_t*, int8_t*,
                                                  size_t);
template void LogMelQ8FramesBest<mel::kMelBands>(const int16_t*, int16_t*,
                                                 size_t);
template void LogMelQ8FramesBest<mel::kMel128Bands>(const int16_t*, int16_t*,
                                                    size_t);

}  // namespace npuk::cpu
