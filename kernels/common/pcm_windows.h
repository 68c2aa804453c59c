// Windowed PCM for the mel kernels: a plane of int16 samples at hop 160
// where item i is the 400-sample window starting at sample 160 i (the
// halo of kernels/mel_pcm and kernels/mel128_pcm). The NPU reads those
// windows with the shim DMA; the host paths below read them in place
// (reference) or copy a few at a time into a small buffer for the framed
// batch path (CPU), so both give the entry's bytes for the same windows.
#ifndef NPUK_KERNELS_COMMON_PCM_WINDOWS_H_
#define NPUK_KERNELS_COMMON_PCM_WINDOWS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace npuk::pcm {

inline constexpr size_t kHop = 160;              // samples between windows
inline constexpr size_t kWindow = 400;           // samples per window
inline constexpr size_t kHalo = kWindow - kHop;  // 240 samples read ahead

// Runs `Entry` (one window in, Bands values of Out out) on n windows in
// place.
template <size_t Bands, typename Out, void (*Entry)(const int16_t*, Out*)>
void WindowsInPlace(const int16_t* pcm, Out* out, size_t n) {
  for (size_t i = 0; i < n; ++i) Entry(pcm + i * kHop, out + i * Bands);
}

// Runs the framed batch path `Frames` (n contiguous 400-sample frames in)
// on n windows, copying them 16 at a time into a 12.8 KB buffer: the copy
// stays in cache and costs little next to the transform.
template <size_t Bands, typename Out,
          void (*Frames)(const int16_t*, Out*, size_t)>
void WindowsCopied(const int16_t* pcm, Out* out, size_t n) {
  constexpr size_t kGroup = 16;
  int16_t frames[kGroup * kWindow];
  for (size_t i = 0; i < n; i += kGroup) {
    const size_t count = std::min(kGroup, n - i);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(frames + j * kWindow, pcm + (i + j) * kHop,
                  kWindow * sizeof(int16_t));
    }
    Frames(frames, out + i * Bands, count);
  }
}

}  // namespace npuk::pcm

#endif  // NPUK_KERNELS_COMMON_PCM_WINDOWS_H_
