// Batch entry points of the CPU backend over N frames / N tiles. Results are
// byte-identical to the kernel entries (mel_kernel_simple, attention_64x64)
// on every machine: the AVX2 path runs the same integer formulas on several
// items per instruction and is chosen at run time when the CPU has AVX2;
// the portable path calls the kernel entries.
#ifndef NPUK_SERVER_DEVICE_CPU_CPU_KERNELS_H_
#define NPUK_SERVER_DEVICE_CPU_CPU_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "kernels/common/score_scale.h"

namespace npuk::cpu {

// in: n * 400 int16 samples; out: n * 80 int8.
void MelFrames(const int16_t* in, int8_t* out, size_t n);

// qkv: n tiles of 12288 bytes (q|k|v); out: n * 4096; scales: n entries.
void AttentionTiles(const int8_t* qkv, int8_t* out, size_t n,
                    const ScoreScale* scales);

// "avx2" or "portable": the path the two functions above take here.
const char* SimdLevel();

// The same functions with the path forced, for tests and benchmarks.
// The Avx2 variants REQUIRE HasAvx2().
bool HasAvx2();
void MelFramesPortable(const int16_t* in, int8_t* out, size_t n);
void AttentionTilesPortable(const int8_t* qkv, int8_t* out, size_t n,
                            const ScoreScale* scales);
void MelFramesAvx2(const int16_t* in, int8_t* out, size_t n);
void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales);

}  // namespace npuk::cpu

#endif  // NPUK_SERVER_DEVICE_CPU_CPU_KERNELS_H_
