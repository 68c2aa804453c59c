// What the mel family's CPU paths share around their per-group kernels
// (host only): frames G at a time with the next group prefetched and the
// last partial group padded with silence, and the per-frame scalar path.
#ifndef NPUK_KERNELS_MEL_MEL_CPU_GROUPS_H_
#define NPUK_KERNELS_MEL_MEL_CPU_GROUPS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/common/mel_math.h"

namespace npuk::cpu {

// n frames [n][400] in, [n][Bands] out, by group(in, out) on G frames at
// a time. The next group's samples are prefetched while one is computed
// (the first reads of a group otherwise wait on memory: 2-5% of the AVX2
// path's time on 4,000-frame batches).
template <int G, int Bands, typename Out, typename Group>
void ForEachGroup(const int16_t* in, Out* out, size_t n, Group group) {
  constexpr size_t kFrame = mel::kFrameSamples;
  size_t i = 0;
  for (; i + G <= n; i += G) {
    if (i + 2 * G <= n) {
      const char* next = reinterpret_cast<const char*>(in + (i + G) * kFrame);
      for (size_t b = 0; b < G * kFrame * sizeof(int16_t); b += 64) {
        __builtin_prefetch(next + b);
      }
    }
    group(in + i * kFrame, out + i * Bands);
  }
  if (i == n) return;
  // The last 1 .. G-1 frames, padded with silence.
  const size_t rest = n - i;
  int16_t padded[G * kFrame] = {};
  std::memcpy(padded, in + i * kFrame, rest * kFrame * sizeof(int16_t));
  Out padded_out[G * Bands];
  group(padded, padded_out);
  std::memcpy(out + i * Bands, padded_out, rest * Bands * sizeof(Out));
}

// mel::LogMelFrame (Out int8_t) or LogMelQ8Frame (int16_t) frame by frame.
template <int Bands, typename Out>
void ScalarFrames(const int16_t* in, Out* out, size_t n) {
  static_assert(std::is_same_v<Out, int8_t> || std::is_same_v<Out, int16_t>);
  for (size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Out, int8_t>) {
      mel::LogMelFrame<Bands>(in + i * mel::kFrameSamples, out + i * Bands);
    } else {
      mel::LogMelQ8Frame<Bands>(in + i * mel::kFrameSamples, out + i * Bands);
    }
  }
}

}  // namespace npuk::cpu

#endif  // NPUK_KERNELS_MEL_MEL_CPU_GROUPS_H_
