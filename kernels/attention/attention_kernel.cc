#include "kernels/attention/attention_kernel.h"

#include "kernels/common/softmax.h"

namespace {

constexpr int kN = static_cast<int>(npuk::kAttentionTokens);
constexpr int kD = static_cast<int>(npuk::kAttentionDims);

}  // namespace

extern "C" void attention_64x64(const int8_t* qkv, int8_t* out,
                                int32_t score_multiplier, int32_t score_shift) {
  namespace sm = npuk::softmax;
  const int8_t* q = qkv;
  const int8_t* k = qkv + kN * kD;
  const int8_t* v = qkv + 2 * kN * kD;
  const sm::ExpParams params = sm::MakeExpParams(score_multiplier, score_shift);
  // k transposed so the score loop runs over contiguous j (it vectorises on
  // hosts and streams on the AIE core); the sums are exact either way.
  int8_t kt[kD * kN];
  for (int j = 0; j < kN; ++j) {
    for (int d = 0; d < kD; ++d) kt[d * kN + j] = k[j * kD + d];
  }
  for (int i = 0; i < kN; ++i) {
    int32_t score[kN] = {};
    for (int d = 0; d < kD; ++d) {
      const int16_t qd = q[i * kD + d];
      for (int j = 0; j < kN; ++j) score[j] += qd * kt[d * kN + j];
    }
    int32_t row_max = score[0];
    for (int j = 1; j < kN; ++j)
      row_max = score[j] > row_max ? score[j] : row_max;
    int32_t e[kN];
    uint32_t sum = 0;
    for (int j = 0; j < kN; ++j) {
      const uint32_t a = static_cast<uint32_t>(row_max - score[j]);
      e[j] = sm::Exp2NegQ15(sm::Exponent(a, params));
      sum += static_cast<uint32_t>(e[j]);
    }
    const uint32_t reciprocal = sm::Reciprocal(sum);
    int32_t p[kN];
    for (int j = 0; j < kN; ++j) p[j] = sm::Probability(e[j], reciprocal);
    int32_t acc[kD] = {};
    for (int j = 0; j < kN; ++j) {
      const int16_t pj = static_cast<int16_t>(p[j]);  // <= 32767
      for (int c = 0; c < kD; ++c) acc[c] += pj * v[j * kD + c];
    }
    for (int c = 0; c < kD; ++c) out[i * kD + c] = sm::OutputValue(acc[c]);
  }
}
