// Test support for the health tests (not linked into the daemon): canaries
// and batchers over the shared fake backend (server/device/fake), so the
// tests exercise the real Batcher and the fault decorator without depending
// on the numeric kernels.
#ifndef NPUK_SERVER_HEALTH_HEALTH_TESTING_H_
#define NPUK_SERVER_HEALTH_HEALTH_TESTING_H_

#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "kernels/registry/registry.h"
#include "server/batching/batcher.h"
#include "server/device/device.h"
#include "server/device/fake/fake_device.h"
#include "server/health/health_monitor.h"

namespace npuk::testing {

// The registered kernel `name` (tests may name kernels).
inline const KernelSpec& Kernel(std::string_view name) {
  return *FindKernel(name);
}

// A canary of `items` items with varied bytes and the output FakeKernel
// gives for them in `mode` (a FakeDevice's default is kPlusOne, whose
// output is never all zero).
inline Canary FakeCanary(const KernelSpec& kernel, size_t items,
                         FakeMode mode = FakeMode::kPlusOne) {
  Canary c;
  c.kernel = &kernel;
  c.items = items;
  std::vector<std::span<const uint8_t>> planes;
  c.planes.resize(kernel.plane_count());
  for (size_t p = 0; p < c.planes.size(); ++p) {
    c.planes[p].resize(kernel.plane_span(p, items));
    for (size_t i = 0; i < c.planes[p].size(); ++i) {
      c.planes[p][i] = static_cast<uint8_t>(i * 7 + 3 + p);
    }
    planes.emplace_back(c.planes[p]);
  }
  std::vector<std::vector<uint8_t>> args(kernel.device_args.size());
  std::vector<const uint8_t*> in;
  for (size_t a = 0; a < args.size(); ++a) {
    args[a].resize(kernel.arg_span(a, items));
    GatherArg(kernel, a, planes, 0, items, args[a].data());
    in.push_back(args[a].data());
  }
  c.expected.resize(items * kernel.output_bytes());
  FakeKernel(kernel, mode, in.data(), c.expected.data(), items);
  return c;
}

// One batcher over `device` with a single executor.
inline std::unique_ptr<Batcher> MakeBatcher(Device& device,
                                            const KernelSpec& kernel,
                                            RunVerifier* verifier,
                                            size_t max_items = 8,
                                            size_t max_queue_size = 16) {
  std::vector<std::unique_ptr<Executor>> executors;
  executors.push_back(*device.CreateExecutor(kernel, max_items));
  BatcherOptions options;
  options.max_batch_items = max_items;
  options.max_queue_size = max_queue_size;
  return std::make_unique<Batcher>(kernel, options, std::move(executors),
                                   verifier, nullptr);
}

}  // namespace npuk::testing

#endif  // NPUK_SERVER_HEALTH_HEALTH_TESTING_H_
