#include "server/device/xrt/run_plan.h"

#include <algorithm>

namespace npuk::xrt_backend {

std::vector<PlannedRun> PlanRuns(std::span<const uint32_t> sizes, size_t n) {
  std::vector<PlannedRun> runs;
  if (sizes.empty()) return runs;
  const uint32_t largest = sizes.back();
  const uint32_t granule = sizes.front();
  for (size_t start = 0; start < n;) {
    const size_t left = n - start;
    if (left >= largest) {
      runs.push_back({start, largest, largest});
      start += largest;
      continue;
    }
    // Smallest sequence that holds the rest.
    const uint32_t fit = *std::lower_bound(sizes.begin(), sizes.end(),
                                           static_cast<uint32_t>(left));
    const size_t pad = fit - left;
    if (8 * pad <= fit || pad < granule) {
      runs.push_back({start, left, fit});
      break;
    }
    // Too much padding: run the largest size that fits whole, if any.
    auto whole = std::upper_bound(sizes.begin(), sizes.end(),
                                  static_cast<uint32_t>(left));
    if (whole == sizes.begin()) {
      runs.push_back({start, left, fit});  // below every size
      break;
    }
    --whole;
    runs.push_back({start, *whole, *whole});
    start += *whole;
  }
  return runs;
}

size_t PlanCapacity(std::span<const uint32_t> sizes, size_t n) {
  const std::vector<PlannedRun> runs = PlanRuns(sizes, n);
  if (runs.empty()) return 0;
  return runs.back().start + std::max<size_t>(runs.back().n, runs.back().items);
}

}  // namespace npuk::xrt_backend
