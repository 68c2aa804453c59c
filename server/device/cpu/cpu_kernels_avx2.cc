// The AVX2 path (built with -mavx2 -mfma on x86 only; see CMakeLists.txt).
#include "kernels/common/mel_math.h"
#include "kernels/common/softmax.h"
#include "server/device/cpu/cpu_kernels.h"

namespace npuk::cpu {

void MelFramesAvx2(const int16_t* in, int8_t* out, size_t n) {
  MelFramesPortable(in, out, n);
}

void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales) {
  AttentionTilesPortable(qkv, out, n, scales);
}

}  // namespace npuk::cpu
