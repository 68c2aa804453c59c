#include <algorithm>

#include "kernels/golden/golden.h"
#include "server/health/health_monitor.h"

namespace npuk {

Canary GoldenCanary(KernelId kernel) {
  const golden::Golden& g =
      kernel == KernelId::kMel ? golden::Mel() : golden::Attention();
  const KernelLayout layout = LayoutOf(kernel);
  // The golden input is in device layout; the batcher takes planes (one for
  // mel, q/k/v for attention) and interleaves them back per item.
  const size_t planes = kernel == KernelId::kMel ? 1 : 3;
  const size_t plane_bytes = layout.in_bytes / planes;
  Canary c;
  c.kernel = kernel;
  c.items = g.items;
  c.scale = g.scale;
  c.planes.assign(planes, std::vector<uint8_t>(g.items * plane_bytes));
  for (size_t i = 0; i < g.items; ++i) {
    for (size_t p = 0; p < planes; ++p) {
      std::copy_n(g.input.begin() + i * layout.in_bytes + p * plane_bytes,
                  plane_bytes, c.planes[p].begin() + i * plane_bytes);
    }
  }
  c.expected.assign(g.output.begin(), g.output.end());
  return c;
}

}  // namespace npuk
