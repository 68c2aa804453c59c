#include "server/device/cpu/cpu_kernels.h"

#include "kernels/attention/attention_kernel.h"
#include "kernels/mel/mel_kernel.h"

namespace npuk::cpu {

bool HasAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_init makes this safe even from static initialisers;
  // libgcc's check includes the OS enabling the AVX state (XGETBV).
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
#else
  return false;
#endif
}

void MelFramesPortable(const int16_t* in, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    mel_kernel_simple(in + i * kMelFrameSamples, out + i * kMelBands);
  }
}

void AttentionTilesPortable(const int8_t* qkv, int8_t* out, size_t n,
                            const ScoreScale* scales) {
  for (size_t i = 0; i < n; ++i) {
    attention_64x64(qkv + i * kAttentionInBytes, out + i * kAttentionOutBytes,
                    scales[i].multiplier, scales[i].shift);
  }
}

void MelFrames(const int16_t* in, int8_t* out, size_t n) {
  if (HasAvx2()) {
    MelFramesAvx2(in, out, n);
  } else {
    MelFramesPortable(in, out, n);
  }
}

void AttentionTiles(const int8_t* qkv, int8_t* out, size_t n,
                    const ScoreScale* scales) {
  if (HasAvx2()) {
    AttentionTilesAvx2(qkv, out, n, scales);
  } else {
    AttentionTilesPortable(qkv, out, n, scales);
  }
}

const char* SimdLevel() { return HasAvx2() ? "avx2" : "portable"; }

}  // namespace npuk::cpu
