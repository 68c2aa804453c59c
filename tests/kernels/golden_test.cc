// The committed golden bytes must still be what the reference kernels
// produce: a change to the kernel math that alters any output byte fails
// here and requires regenerating with npuk_make_golden (and telling the NPU
// bring-up and the health canaries).
#include "kernels/golden/golden.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/mel/mel_kernel.h"
#include "server/device/cpu/cpu_kernels.h"

namespace npuk::golden {
namespace {

bool AllZero(const int8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

TEST(GoldenTest, MelShapes) {
  const Golden& g = Mel();
  EXPECT_GE(g.items, 4u);
  EXPECT_EQ(g.input.size(), g.items * kMelFrameInBytes);
  EXPECT_EQ(g.output.size(), g.items * kMelFrameOutBytes);
}

TEST(GoldenTest, AttentionShapes) {
  const Golden& g = Attention();
  EXPECT_GE(g.items, 2u);
  EXPECT_EQ(g.input.size(), g.items * kAttentionInBytes);
  EXPECT_EQ(g.output.size(), g.items * kAttentionOutBytes);
  EXPECT_TRUE(ScoreScaleInRange(ScoreScaleValue(g.scale)));
  const ScoreScale again = QuantizeScoreScale(ScoreScaleValue(g.scale));
  EXPECT_EQ(again.multiplier, g.scale.multiplier);
  EXPECT_EQ(again.shift, g.scale.shift);
}

TEST(GoldenTest, MelReferenceReproducesCommittedBytes) {
  const Golden& g = Mel();
  for (size_t i = 0; i < g.items; ++i) {
    int16_t frame[kMelFrameSamples];
    std::memcpy(frame, g.input.data() + i * kMelFrameInBytes, kMelFrameInBytes);
    int8_t out[kMelBands];
    mel_kernel_simple(frame, out);
    EXPECT_EQ(0, std::memcmp(out, g.output.data() + i * kMelFrameOutBytes,
                             kMelFrameOutBytes))
        << "mel golden frame " << i << " differs: regenerate with "
        << "npuk_make_golden kernels/golden/golden_data.cc if the change "
        << "to the kernel math is intended";
    EXPECT_FALSE(AllZero(out, kMelBands)) << "frame " << i;
  }
}

TEST(GoldenTest, AttentionReferenceReproducesCommittedBytes) {
  const Golden& g = Attention();
  std::vector<int8_t> out(kAttentionOutBytes);
  for (size_t i = 0; i < g.items; ++i) {
    attention_64x64(
        reinterpret_cast<const int8_t*>(g.input.data() + i * kAttentionInBytes),
        out.data(), g.scale.multiplier, g.scale.shift);
    EXPECT_EQ(0,
              std::memcmp(out.data(), g.output.data() + i * kAttentionOutBytes,
                          kAttentionOutBytes))
        << "attention golden tile " << i << " differs: regenerate with "
        << "npuk_make_golden kernels/golden/golden_data.cc if the change "
        << "to the kernel math is intended";
    EXPECT_FALSE(AllZero(out.data(), kAttentionOutBytes)) << "tile " << i;
  }
}

TEST(GoldenTest, CpuBackendReproducesCommittedBytes) {
  const Golden& mel = Mel();
  std::vector<int16_t> frames(mel.items * kMelFrameSamples);
  std::memcpy(frames.data(), mel.input.data(), mel.input.size());
  std::vector<int8_t> mel_out(mel.output.size());
  cpu::MelFrames(frames.data(), mel_out.data(), mel.items);
  EXPECT_EQ(0,
            std::memcmp(mel_out.data(), mel.output.data(), mel.output.size()));

  const Golden& att = Attention();
  std::vector<int8_t> att_out(att.output.size());
  std::vector<ScoreScale> scales(att.items, att.scale);
  cpu::AttentionTiles(reinterpret_cast<const int8_t*>(att.input.data()),
                      att_out.data(), att.items, scales.data());
  EXPECT_EQ(0,
            std::memcmp(att_out.data(), att.output.data(), att.output.size()));
}

}  // namespace
}  // namespace npuk::golden
