#include "kernels/golden/golden.h"

#include "kernels/golden/golden_data.h"

namespace npuk::golden {

const Golden& Mel() {
  static const Golden golden{
      std::span<const uint8_t>(data::kMelInput, sizeof(data::kMelInput)),
      std::span<const uint8_t>(data::kMelOutput, sizeof(data::kMelOutput)),
      data::kMelItems, ScoreScale{0, 0}};
  return golden;
}

const Golden& Attention() {
  static const Golden golden{
      std::span<const uint8_t>(data::kAttentionInput,
                               sizeof(data::kAttentionInput)),
      std::span<const uint8_t>(data::kAttentionOutput,
                               sizeof(data::kAttentionOutput)),
      data::kAttentionItems,
      ScoreScale{data::kAttentionMultiplier, data::kAttentionShift}};
  return golden;
}

}  // namespace npuk::golden
