#include "server/telemetry/model_stats.h"

#include <gtest/gtest.h>

#include "kernels/registry/kernel_spec.h"

namespace npuk {
namespace {

uint64_t BatchedItems(const inference::ModelStatistics& s) {
  uint64_t n = 0;
  for (const auto& b : s.batch_stats()) {
    n += b.batch_size() * b.compute_infer().count();
  }
  return n;
}

TEST(ModelStats, ACanaryRidingInARunIsNotPartOfItsBatchSize) {
  const KernelSpec spec{};
  ModelStats stats("mel");
  stats.OnRun(spec, /*items=*/24, /*user_items=*/16, absl::Microseconds(5),
              true);
  stats.OnRun(spec, 16, 16, absl::Microseconds(5), true);
  inference::ModelStatistics s;
  stats.Snapshot(&s);
  EXPECT_EQ(s.inference_count(), 32u);
  EXPECT_EQ(s.execution_count(), 2u);
  ASSERT_EQ(s.batch_stats_size(), 1);
  EXPECT_EQ(s.batch_stats(0).batch_size(), 16u);
  EXPECT_EQ(s.batch_stats(0).compute_infer().count(), 2u);
  EXPECT_EQ(BatchedItems(s), s.inference_count());
}

TEST(ModelStats, CanaryOnlyAndFailedRunsAreNotCounted) {
  const KernelSpec spec{};
  ModelStats stats("mel");
  stats.OnRun(spec, 8, 0, absl::Microseconds(5), true);
  stats.OnRun(spec, 8, 8, absl::Microseconds(5), false);
  inference::ModelStatistics s;
  stats.Snapshot(&s);
  EXPECT_EQ(s.inference_count(), 0u);
  EXPECT_EQ(s.execution_count(), 0u);
  EXPECT_EQ(s.batch_stats_size(), 0);
}

}  // namespace
}  // namespace npuk
