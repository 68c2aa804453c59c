// The mel kernel's CPU batch path over N frames. Byte-identical to the
// kernel entry (mel_kernel_simple) on every machine: the AVX-512 and AVX2
// paths run the same integer formulas on 8 or 4 frames per instruction and
// are chosen at run time by what the CPU has; the portable path calls the
// entry.
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

// The AVX2 path for a band count: n * 400 int16 in, n * Bands int8 out,
// byte-identical to mel::LogMelFrame<Bands> per frame. Instantiated in
// mel_cpu_avx2.cc for 80 (MelFramesAvx2) and 128 (kernels/mel128) only.
// REQUIRES HasAvx2().
template <int Bands>
void LogMelFramesAvx2(const int16_t* in, int8_t* out, size_t n);
extern template void LogMelFramesAvx2<80>(const int16_t*, int8_t*, size_t);
extern template void LogMelFramesAvx2<128>(const int16_t*, int8_t*, size_t);

// The same frames through the fine log stage of the windowed kernels
// (kernels/mel_pcm, kernels/mel128_pcm): n * Bands int16 Q8 log10 P out,
// byte-identical to mel::LogMelQ8Frame<Bands> per frame.
// REQUIRES HasAvx2().
template <int Bands>
void LogMelQ8FramesAvx2(const int16_t* in, int16_t* out, size_t n);
extern template void LogMelQ8FramesAvx2<80>(const int16_t*, int16_t*, size_t);
extern template void LogMelQ8FramesAvx2<128>(const int16_t*, int16_t*, size_t);

// The AVX-512 path (mel_cpu_avx512.cc), the same contract as the two
// above. REQUIRES HasAvx512Mel().
template <int Bands>
void LogMelFramesAvx512(const int16_t* in, int8_t* out, size_t n);
extern template void LogMelFramesAvx512<80>(const int16_t*, int8_t*, size_t);
extern template void LogMelFramesAvx512<128>(const int16_t*, int8_t*, size_t);
template <int Bands>
void LogMelQ8FramesAvx512(const int16_t* in, int16_t* out, size_t n);
extern template void LogMelQ8FramesAvx512<80>(const int16_t*, int16_t*, size_t);
extern template void LogMelQ8FramesAvx512<128>(const int16_t*, int16_t*,
                                               size_t);

// The fastest of the three paths this CPU has, for the mel family's CPU
// backends: AVX-512, AVX2, else mel::LogMelFrame / LogMelQ8Frame per frame.
template <int Bands>
void LogMelFramesBest(const int16_t* in, int8_t* out, size_t n);
extern template void LogMelFramesBest<80>(const int16_t*, int8_t*, size_t);
extern template void LogMelFramesBest<128>(const int16_t*, int8_t*, size_t);
template <int Bands>
void LogMelQ8FramesBest(const int16_t* in, int16_t* out, size_t n);
extern template void LogMelQ8FramesBest<80>(const int16_t*, int16_t*, size_t);
extern template void LogMelQ8FramesBest<128>(const int16_t*, int16_t*, size_t);

// "avx512", "avx2" or "portable": the path LogMel*FramesBest take here.
inline const char* MelSimdLevel() {
  if (HasAvx512Mel()) return "avx512";
  return HasAvx2() ? "avx2" : "portable";
}

}  // namespace npuk::cpu

#endif  // NPUK_KERNELS_MEL_MEL_CPU_H_
