#include "server/device/xrt/run_plan.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "kernels/tools/txn/designs.h"

namespace npuk::xrt_backend {
namespace {

constexpr size_t kLargestBatch = 1024;  // beyond the largest sequence too

struct Totals {
  size_t run = 0;     // items the runs move, padding included
  size_t padded = 0;  // of which padding
  size_t runs = 0;
};

// Checks that the plan of n covers items [0, n) once, in order, with runs
// of the package's sizes, and sums it.
Totals CheckedPlan(const std::vector<uint32_t>& sizes, size_t n) {
  Totals t;
  size_t next = 0;
  for (const PlannedRun& r : PlanRuns(sizes, n)) {
    EXPECT_EQ(r.start, next) << "n=" << n;
    EXPECT_GE(r.n, r.items) << "n=" << n;
    EXPECT_GT(r.items, 0u) << "n=" << n;
    EXPECT_TRUE(std::binary_search(sizes.begin(), sizes.end(), r.n))
        << "n=" << n << " runs size " << r.n << ", which has no sequence";
    next += r.items;
    t.run += r.n;
    t.padded += r.n - r.items;
    ++t.runs;
  }
  EXPECT_EQ(next, n);
  return t;
}

size_t Ceil(size_t a, size_t b) { return (a + b - 1) / b; }

// Single-item granule (one core): every batch size 1..1024 pads at most 1/8
// of the items it runs, in the fewest runs the largest sequence allows.
TEST(RunPlanTest, EveryBatchSizePadsAtMostAnEighth) {
  const std::vector<uint32_t> sizes = txn::BatchSizes(1);
  for (size_t n = 1; n <= kLargestBatch; ++n) {
    const Totals t = CheckedPlan(sizes, n);
    EXPECT_LE(8 * t.padded, t.run)
        << "n=" << n << ": " << t.padded << " padded of " << t.run << " run";
    EXPECT_EQ(t.runs, Ceil(n, sizes.back())) << "n=" << n;
  }
  // The example: 17 frames no longer run as 32.
  const Totals seventeen = CheckedPlan(sizes, 17);
  EXPECT_EQ(seventeen.run, 18u);
}

// The registered designs (whole columns: a round is one item per core):
// beyond rounding n up to whole rounds, which no plan can avoid, padding
// stays within 1/8 of the items run, for every batch size.
TEST(RunPlanTest, EveryRegisteredDesignPadsAtMostAnEighthOfWholeRounds) {
  for (const KernelSpec* spec : AllKernels()) {
    const txn::Design design = txn::DesignFor(*spec);
    const std::vector<uint32_t> sizes = txn::BatchSizesFor(design);
    ASSERT_FALSE(sizes.empty()) << spec->name;
    const size_t g = design.granule();
    EXPECT_EQ(sizes.front(), g) << spec->name;
    for (size_t n = 1; n <= kLargestBatch; ++n) {
      const Totals t = CheckedPlan(sizes, n);
      const size_t rounds_pad = Ceil(n, g) * g - n;
      EXPECT_LE(8 * (t.padded - rounds_pad), t.run)
          << spec->name << " n=" << n << ": " << t.padded << " padded of "
          << t.run << " run (" << rounds_pad << " to whole rounds of " << g
          << ")";
      EXPECT_EQ(t.runs, Ceil(n, sizes.back())) << spec->name << " n=" << n;
      // From 8 rounds up the rounding itself is within the bound too.
      if (n >= 7 * (g - 1)) {
        EXPECT_LE(8 * t.padded, t.run) << spec->name << " n=" << n;
      }
    }
  }
}

// Buffers sized once for the largest batch hold every smaller batch's runs.
TEST(RunPlanTest, CapacityOfTheLargestBatchCoversEverySmallerOne) {
  for (uint32_t g : {1u, 4u, 8u}) {
    const std::vector<uint32_t> sizes = txn::BatchSizes(g);
    for (size_t max : {size_t{1}, size_t{17}, size_t{256}, size_t{600}}) {
      const size_t capacity = PlanCapacity(sizes, max);
      EXPECT_GE(capacity, max);
      for (size_t n = 1; n <= max; ++n) {
        for (const PlannedRun& r : PlanRuns(sizes, n)) {
          EXPECT_LE(r.start + r.n, capacity)
              << "g=" << g << " max=" << max << " n=" << n;
        }
      }
    }
  }
}

// Sizes that are not of the three-significant-bit kind: the planner splits
// instead of padding more than 1/8 when a whole run fits.
TEST(RunPlanTest, SplitsWhenOneRunWouldPadTooMuch) {
  const std::vector<uint32_t> sizes = {1, 4, 16, 32, 64, 128, 256};
  const std::vector<PlannedRun> runs = PlanRuns(sizes, 17);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].n, 16u);
  EXPECT_EQ(runs[1].start, 16u);
  EXPECT_EQ(runs[1].items, 1u);
  EXPECT_EQ(runs[1].n, 1u);
  EXPECT_TRUE(PlanRuns(sizes, 0).empty());
  EXPECT_TRUE(PlanRuns({}, 5).empty());
}

TEST(RunPlanTest, BatchSizesHaveThreeSignificantBitsOfRounds) {
  EXPECT_EQ(txn::BatchSizes(1, 40),
            (std::vector<uint32_t>{1,  2,  3,  4,  5,  6,  7,  8,  9,
                                   10, 11, 12, 13, 14, 15, 16, 18, 20,
                                   22, 24, 26, 28, 30, 32, 36, 40}));
  const std::vector<uint32_t> four = txn::BatchSizes(4);
  EXPECT_EQ(four.front(), 4u);
  EXPECT_EQ(four.back(), 256u);
  for (uint32_t n : four) EXPECT_EQ(n % 4, 0u);
}

}  // namespace
}  // namespace npuk::xrt_backend
