// The device layer: one small interface that every backend implements
// (cpu, xrt, npu-sim, and decorators such as fault injection). The batching
// layer above it knows nothing of XRT; this layer knows nothing of gRPC.
#ifndef NPUK_SERVER_DEVICE_DEVICE_H_
#define NPUK_SERVER_DEVICE_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/registry/kernel_spec.h"

namespace npuk {

// A set of staging buffers for one kernel, sized once for `max_items`, and
// the means to run the kernel over them. On the xrt backend the buffers are
// the mapped host_only BOs, so the batcher copies request bytes straight
// into device-visible memory and nothing is allocated per run.
//
// Thread safety: an Executor is used by one thread at a time (the batcher
// gives each executor to one dispatcher). Different executors may run
// concurrently.
class Executor {
 public:
  virtual ~Executor() = default;

  virtual const KernelSpec& kernel() const = 0;
  virtual size_t max_items() const = 0;

  // Device input argument `arg` (< kernel().device_args.size()):
  // kernel().arg_span(arg, max_items()) bytes (max_items() * arg_bytes(arg)
  // plus a windowed argument's halo), valid for the executor's
  // lifetime. Parameters are an argument like any other (the parameter
  // plane), so Run needs nothing kernel-specific.
  virtual absl::Span<uint8_t> input(size_t arg) = 0;
  // max_items() * kernel().output_bytes(), valid for the executor's
  // lifetime. Holds the results of the last successful Run.
  virtual absl::Span<const uint8_t> output() const = 0;

  // Runs the kernel over the first n items of every input() into output().
  // REQUIRES: 1 <= n <= max_items().
  // Errors: UNAVAILABLE when the device failed or timed out (the request may
  // be retried elsewhere), INTERNAL for a broken invariant.
  virtual absl::Status Run(size_t n) = 0;
};

class Device {
 public:
  virtual ~Device() = default;

  // The backend name given to --backend: "cpu", "xrt", "npu-sim".
  virtual std::string_view name() const = 0;

  // Creates staging buffers and whatever per-kernel state the backend
  // needs (for xrt: BOs in the right groups, instruction buffers).
  virtual absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      const KernelSpec& kernel, size_t max_items) = 0;
};

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_DEVICE_H_
