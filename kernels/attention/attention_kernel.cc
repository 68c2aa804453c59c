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
  for (int i = 0; i < kN; ++i) {
    int32_t score[kN];
    int32_t row_max = INT32_MIN;
    for (int j = 0; j < kN; ++j) {
      int32_t acc = 0;
      for (int d = 0; d < kD; ++d)
        acc += int32_t{q[i * kD + d]} * k[j * kD + d];
      score[j] = acc;
      if (acc > row_max) row_max = acc;
    }
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
    for (int c = 0; c < kD; ++c) {
      int32_t acc = 0;
      for (int j = 0; j < kN; ++j) acc += p[j] * v[j * kD + c];
      out[i * kD + c] = sm::OutputValue(acc);
    }
  }
}
