#include <span>
#include <vector>

#include "server/health/health_monitor.h"

namespace npuk {

Canary GoldenCanary(const KernelSpec& kernel) {
  const Golden& g = kernel.golden;
  Canary c;
  c.kernel = &kernel;
  c.items = g.items;
  // The golden inputs are device arguments; the batcher takes planes and
  // gathers them back into arguments, so the canary checks that path too.
  c.planes.resize(kernel.plane_count());
  std::vector<std::span<uint8_t>> planes;
  for (size_t p = 0; p < c.planes.size(); ++p) {
    c.planes[p].resize(kernel.plane_span(p, g.items));
    planes.emplace_back(c.planes[p]);
  }
  for (size_t arg = 0; arg < g.inputs.size(); ++arg) {
    ScatterArg(kernel, arg, g.inputs[arg].bytes.data(), g.items, planes);
  }
  c.expected.assign(g.output.bytes.begin(), g.output.bytes.end());
  return c;
}

}  // namespace npuk
