#include "kernels/attention/attention_cpu.h"

#include "kernels/attention/attention_kernel.h"

namespace npuk::cpu {

void AttentionTilesPortable(const int8_t* qkv, int8_t* out, size_t n,
                            const ScoreScale* scales) {
  for (size_t i = 0; i < n; ++i) {
    attention_64x64(qkv + i * kAttentionInBytes, out + i * kAttentionOutBytes,
                    scales[i].multiplier, scales[i].shift);
  }
}

const char* AttentionPath() {
  if (HasAvx512Vnni()) return "avx512vnni";
  return HasAvx2() ? "avx2" : "portable";
}

void AttentionTiles(const int8_t* qkv, int8_t* out, size_t n,
                    const ScoreScale* scales) {
  if (HasAvx512Vnni()) {
    AttentionTilesAvx512(qkv, out, n, scales);
  } else if (HasAvx2()) {
    AttentionTilesAvx2(qkv, out, n, scales);
  } else {
    AttentionTilesPortable(qkv, out, n, scales);
  }
}

}  // namespace npuk::cpu
