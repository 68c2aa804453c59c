// The attention kernel's CPU batch path over N tiles. Byte-identical to the
// kernel entry (attention_64x64) on every machine: the AVX-512 VNNI and
// AVX2 paths run the same integer formulas and are chosen at run time, the
// best the CPU has; the portable path calls the entry.
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

// "avx512vnni", "avx2" or "portable": the path AttentionTiles takes here.
const char* AttentionPath();

// The same with the path forced, for tests and benchmarks.
// AttentionTilesAvx2 REQUIRES HasAvx2(); AttentionTilesAvx512 REQUIRES
// HasAvx512Vnni().
void AttentionTilesPortable(const int8_t* qkv, int8_t* out, size_t n,
                            const ScoreScale* scales);
void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales);
void AttentionTilesAvx512(const int8_t* qkv, int8_t* out, size_t n,
                          const ScoreScale* scales);

}  // namespace npuk::cpu

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_CPU_H_
