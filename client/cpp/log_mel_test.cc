#include "client/cpp/log_mel.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk {
namespace {

TEST(AudioToInt16, RoundsAndClipsAsDocumented) {
  EXPECT_EQ(AudioToInt16(0.0f), 0);
  EXPECT_EQ(AudioToInt16(1.0f), 32767);
  EXPECT_EQ(AudioToInt16(2.0f), 32767);
  EXPECT_EQ(AudioToInt16(-1.0f), -32768);
  EXPECT_EQ(AudioToInt16(-3.0f), -32768);
  EXPECT_EQ(AudioToInt16(0.5f), 16384);
  EXPECT_EQ(AudioToInt16(1.4f / 32768), 1);
  EXPECT_EQ(AudioToInt16(1.6f / 32768), 2);
}

TEST(LogMelFrames, WhisperDropsTheLastStftFrame) {
  EXPECT_EQ(LogMelFrames(480000), 3000u);  // 30 s clip
  EXPECT_EQ(LogMelFrames(16000), 100u);
  EXPECT_EQ(LogMelFrames(16159), 100u);
  EXPECT_EQ(LogMelFrames(16160), 101u);
}

TEST(FrameAudio, ReflectPadsLikeTorchStftCenter) {
  // Samples i/32768 make the int16 value equal the index.
  const size_t n = 1000;
  std::vector<float> audio(n);
  for (size_t i = 0; i < n; ++i) audio[i] = static_cast<float>(i) / 32768;
  auto frames = FrameAudio(audio);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), LogMelFrames(n) * kMelFrameSamples);
  const auto& f = *frames;
  // Frame 0 is centred on sample 0: padded[k] = x[200 - k] for k < 200.
  EXPECT_EQ(f[0], 200);
  EXPECT_EQ(f[199], 1);
  EXPECT_EQ(f[200], 0);
  EXPECT_EQ(f[399], 199);
  // Frame 1 starts at sample 160 - 200 = -40.
  EXPECT_EQ(f[400], 40);
  EXPECT_EQ(f[440], 0);
  // The last kept frame (5) starts at 600 and runs past the end: x[999]
  // then reflects to x[998].
  const int16_t* last = f.data() + 5 * kMelFrameSamples;
  EXPECT_EQ(last[0], 600);
  EXPECT_EQ(last[399], 999);
}

TEST(FrameAudio, RefusesClipsTooShortToPad) {
  std::vector<float> audio(200, 0.1f);
  auto frames = FrameAudio(audio);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(frames.status().message(), testing::HasSubstr("200 samples"));
}

TEST(NormalizeLogMel, DequantisesClampsAndTransposes) {
  // Two frames; q = 16*(log10 + 4).
  std::vector<int8_t> q(2 * kMelBins, -128);
  q[0] = 64;              // frame 0 bin 0: log10 = 0 (the max)
  q[kMelBins + 1] = -64;  // frame 1 bin 1: log10 = -8, exactly max - 8
  auto x = NormalizeLogMel(q, 2);
  ASSERT_EQ(x.size(), 2 * kMelBins);
  EXPECT_FLOAT_EQ(x[0 * 2 + 0], 1.0f);   // (0 + 4) / 4
  EXPECT_FLOAT_EQ(x[1 * 2 + 1], -1.0f);  // (-8 + 4) / 4
  EXPECT_FLOAT_EQ(x[1 * 2 + 0], -1.0f);  // -12 clamped to -8
  EXPECT_FLOAT_EQ(x[79 * 2 + 1], -1.0f);
}

}  // namespace
}  // namespace npuk
