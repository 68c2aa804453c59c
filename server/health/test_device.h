// Test support (not linked into the daemon): a backend whose kernels are
// trivial byte functions, so health tests exercise the real Batcher and the
// fault decorator without depending on the numeric kernels.
#ifndef NPUK_SERVER_HEALTH_TEST_DEVICE_H_
#define NPUK_SERVER_HEALTH_TEST_DEVICE_H_

#include <memory>
#include <utility>
#include <vector>

#include "server/batching/batcher.h"
#include "server/device/device.h"
#include "server/health/health_monitor.h"

namespace npuk::testing {

// Output byte j of an item is (input byte j of that item) + 1, so an
// all-zero input gives all-one output and a zero output is always wrong.
inline void TestKernel(KernelId kernel, const uint8_t* in, uint8_t* out,
                       size_t n) {
  const KernelLayout l = LayoutOf(kernel);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < l.out_bytes; ++j) {
      out[i * l.out_bytes + j] =
          static_cast<uint8_t>(in[i * l.in_bytes + j] + 1);
    }
  }
}

class TestExecutor : public Executor {
 public:
  TestExecutor(KernelId kernel, size_t max_items)
      : kernel_(kernel),
        max_items_(max_items),
        in_(max_items * LayoutOf(kernel).in_bytes),
        out_(max_items * LayoutOf(kernel).out_bytes) {}
  KernelId kernel() const override { return kernel_; }
  size_t max_items() const override { return max_items_; }
  absl::Span<uint8_t> input() override { return absl::MakeSpan(in_); }
  absl::Span<const uint8_t> output() const override { return out_; }
  absl::Status Run(size_t n, absl::Span<const ScoreScale>) override {
    TestKernel(kernel_, in_.data(), out_.data(), n);
    return absl::OkStatus();
  }

 private:
  KernelId kernel_;
  size_t max_items_;
  std::vector<uint8_t> in_, out_;
};

class TestDevice : public Device {
 public:
  std::string_view name() const override { return "test"; }
  absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      KernelId kernel, size_t max_items) override {
    return std::make_unique<TestExecutor>(kernel, max_items);
  }
};

// A canary for TestKernel: `items` items with varied bytes.
inline Canary TestCanary(KernelId kernel, size_t items) {
  Canary c;
  c.kernel = kernel;
  c.items = items;
  const KernelLayout l = LayoutOf(kernel);
  const size_t planes = kernel == KernelId::kMel ? 1 : 3;
  const size_t plane_bytes = l.in_bytes / planes;
  std::vector<uint8_t> device_in(items * l.in_bytes);
  for (size_t i = 0; i < device_in.size(); ++i) {
    device_in[i] = static_cast<uint8_t>(i * 7 + 3);
  }
  c.planes.assign(planes, std::vector<uint8_t>(items * plane_bytes));
  for (size_t i = 0; i < items; ++i) {
    for (size_t p = 0; p < planes; ++p) {
      std::copy_n(device_in.begin() + i * l.in_bytes + p * plane_bytes,
                  plane_bytes, c.planes[p].begin() + i * plane_bytes);
    }
  }
  c.expected.resize(items * l.out_bytes);
  TestKernel(kernel, device_in.data(), c.expected.data(), items);
  return c;
}

// One batcher over `device` with a single executor.
inline std::unique_ptr<Batcher> MakeBatcher(Device& device, KernelId kernel,
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

#endif  // NPUK_SERVER_HEALTH_TEST_DEVICE_H_
