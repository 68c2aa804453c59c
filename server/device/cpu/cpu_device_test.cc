#include "server/device/cpu/cpu_device.h"

#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/mel/mel_kernel.h"

namespace npuk {
namespace {

void FillRandom(absl::Span<uint8_t> bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
}

TEST(CpuDeviceTest, NameIsCpu) { EXPECT_EQ(NewCpuDevice(1)->name(), "cpu"); }

TEST(CpuDeviceTest, RejectsZeroMaxItems) {
  auto device = NewCpuDevice(1);
  EXPECT_EQ(device->CreateExecutor(KernelId::kMel, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CpuDeviceTest, BuffersAreSizedOnceForMaxItems) {
  auto device = NewCpuDevice(2);
  auto exec = device->CreateExecutor(KernelId::kAttention, 5);
  ASSERT_TRUE(exec.ok()) << exec.status();
  EXPECT_EQ((*exec)->kernel(), KernelId::kAttention);
  EXPECT_EQ((*exec)->max_items(), 5u);
  EXPECT_EQ((*exec)->input().size(), 5u * 12288);
  EXPECT_EQ((*exec)->output().size(), 5u * 4096);
  const uint8_t* in = (*exec)->input().data();
  const uint8_t* out = (*exec)->output().data();
  FillRandom((*exec)->input(), 1);
  std::vector<ScoreScale> scales(5, QuantizeScoreScale(0.01));
  ASSERT_TRUE((*exec)->Run(5, scales).ok());
  EXPECT_EQ((*exec)->input().data(), in);
  EXPECT_EQ((*exec)->output().data(), out);
}

TEST(CpuDeviceTest, RunOutsideContractIsInternalError) {
  auto device = NewCpuDevice(1);
  auto mel = device->CreateExecutor(KernelId::kMel, 4);
  ASSERT_TRUE(mel.ok());
  EXPECT_EQ((*mel)->Run(0, {}).code(), absl::StatusCode::kInternal);
  EXPECT_EQ((*mel)->Run(5, {}).code(), absl::StatusCode::kInternal);
  auto att = device->CreateExecutor(KernelId::kAttention, 4);
  ASSERT_TRUE(att.ok());
  std::vector<ScoreScale> one(1, QuantizeScoreScale(0.125));
  EXPECT_EQ((*att)->Run(2, one).code(), absl::StatusCode::kInternal);
}

class CpuDeviceThreadsTest : public ::testing::TestWithParam<int> {};

TEST_P(CpuDeviceThreadsTest, MelMatchesKernelEntry) {
  auto device = NewCpuDevice(GetParam());
  constexpr size_t kMax = 37;
  auto exec = device->CreateExecutor(KernelId::kMel, kMax);
  ASSERT_TRUE(exec.ok());
  for (size_t n :
       {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{24}, kMax}) {
    FillRandom((*exec)->input(), static_cast<uint32_t>(n));
    ASSERT_TRUE((*exec)->Run(n, {}).ok());
    std::vector<int8_t> expected(80);
    for (size_t i = 0; i < n; ++i) {
      int16_t frame[400];
      std::memcpy(frame, (*exec)->input().data() + i * 800, 800);
      mel_kernel_simple(frame, expected.data());
      ASSERT_EQ(0, std::memcmp(expected.data(),
                               (*exec)->output().data() + i * 80, 80))
          << "frame " << i << " of " << n;
    }
  }
}

TEST_P(CpuDeviceThreadsTest, AttentionMatchesKernelEntryPerTileScale) {
  auto device = NewCpuDevice(GetParam());
  constexpr size_t kMax = 6;
  auto exec = device->CreateExecutor(KernelId::kAttention, kMax);
  ASSERT_TRUE(exec.ok());
  FillRandom((*exec)->input(), 42);
  std::vector<ScoreScale> scales;
  for (size_t i = 0; i < kMax; ++i) {
    scales.push_back(QuantizeScoreScale(0.001 * static_cast<double>(i + 1)));
  }
  ASSERT_TRUE((*exec)->Run(kMax, scales).ok());
  std::vector<int8_t> expected(4096);
  for (size_t i = 0; i < kMax; ++i) {
    attention_64x64(
        reinterpret_cast<const int8_t*>((*exec)->input().data() + i * 12288),
        expected.data(), scales[i].multiplier, scales[i].shift);
    ASSERT_EQ(0, std::memcmp(expected.data(),
                             (*exec)->output().data() + i * 4096, 4096))
        << "tile " << i;
  }
}

TEST_P(CpuDeviceThreadsTest, ExecutorsRunConcurrently) {
  auto device = NewCpuDevice(GetParam());
  auto a = device->CreateExecutor(KernelId::kMel, 16);
  auto b = device->CreateExecutor(KernelId::kMel, 16);
  ASSERT_TRUE(a.ok() && b.ok());
  FillRandom((*a)->input(), 7);
  std::memcpy((*b)->input().data(), (*a)->input().data(), 16 * 800);
  std::thread t([&] {
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*b)->Run(16, {}).ok());
  });
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*a)->Run(16, {}).ok());
  t.join();
  EXPECT_EQ(0,
            std::memcmp((*a)->output().data(), (*b)->output().data(), 16 * 80));
}

INSTANTIATE_TEST_SUITE_P(Threads, CpuDeviceThreadsTest,
                         ::testing::Values(0, 1, 2, 4));

}  // namespace
}  // namespace npuk
