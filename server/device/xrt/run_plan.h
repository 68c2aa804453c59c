// How the xrt backend (and npu-sim, which runs the same code) turns a batch
// of n items into device runs of the sizes a kernel package has sequences
// for. Plain C++, no XRT: built and tested everywhere.
#ifndef NPUK_SERVER_DEVICE_XRT_RUN_PLAN_H_
#define NPUK_SERVER_DEVICE_XRT_RUN_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace npuk::xrt_backend {

struct PlannedRun {
  size_t start;  // first item
  size_t items;  // real items in this run
  uint32_t n;    // sequence size (>= items; the rest is padding)
};

// The runs for n >= 1 items over `sizes` (the package's sequence sizes,
// ascending, non-empty; every one a multiple of the design's granule, the
// smallest being the granule itself). Whole runs of the largest size while
// n exceeds it; then the smallest size that holds the rest, unless its
// padding would be more than 1/8 of the run and at least a whole granule,
// in which case the largest size that fits whole runs and the rest is
// planned again. With the sizes of kernels/tools/txn/designs.h BatchSizes
// (three significant bits of rounds) the first choice always holds, so a
// batch takes ceil(n / largest) runs and pads at most 1/8 of the items run
// beyond rounding up to whole rounds (run_plan_test checks every n).
//
// The runs are contiguous and in order, so a caller that sizes its buffers
// for the plan of its largest n (PlanCapacity) can run any smaller n in the
// same buffers.
std::vector<PlannedRun> PlanRuns(std::span<const uint32_t> sizes, size_t n);

// Items of buffer the plan of n touches: the last run's start plus its
// sequence size (padding included).
size_t PlanCapacity(std::span<const uint32_t> sizes, size_t n);

}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_RUN_PLAN_H_
