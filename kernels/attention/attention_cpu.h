// The attention kernel's CPU batch path over N tiles. Byte-identical to the
// kernel entry (attention_64x64) on every machine: the AVX2 path runs the
// same integer formulas and is chosen at run time when the CPU has AVX2;
// the portable path calls the entry.
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_CPU_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_CPU_H_

#include <cstddef>
#include <cstdint>

#include "kernels/common/cpu_features.h"
#include "kernels/common/score_scale.h"

namespace npuk::cpu {

// qkv: n tiles of 12288 bytes (q|k|v); out: n * 4096; scales: n entries.
void AttentionTiles(const int8_t* qkv, int8_t* out, size_t n,
                    const ScoreScale* scales);

// The same with the path forced, for tests and benchmarks.
// AttentionTilesAvx2 REQUIRES HasAvx2().
void AttentionTilesPortable(const int8_t* qkv, int8_t* out, size_t n,
                            const ScoreScale* scales);
void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales);

}  // namespace npuk::cpu

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_CPU_H_
