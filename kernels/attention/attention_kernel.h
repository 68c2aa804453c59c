// The attention tile kernel entry, compiled for the AIE2 cores (Peano) and
// for the host. The math is in kernels/common/softmax.h and
// kernels/attention/README.md.
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_KERNEL_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_KERNEL_H_

#include <cstddef>
#include <cstdint>

namespace npuk {
inline constexpr size_t kAttentionTokens = 64;
inline constexpr size_t kAttentionDims = 64;
inline constexpr size_t kAttentionMatrixBytes =
    kAttentionTokens * kAttentionDims;                                  // 4096
inline constexpr size_t kAttentionInBytes = 3 * kAttentionMatrixBytes;  // q|k|v
inline constexpr size_t kAttentionOutBytes = kAttentionMatrixBytes;
}  // namespace npuk

// qkv: q, k, v as int8 [64][64] each, row major, back to back (12288 bytes).
// out: int8 [64][64] = sat8(round(softmax_rows(q k^T * scale) v)), scale =
// score_multiplier * 2^(score_shift - 31) as made by QuantizeScoreScale.
extern "C" void attention_64x64(const int8_t* qkv, int8_t* out,
                                int32_t score_multiplier, int32_t score_shift);

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_KERNEL_H_
