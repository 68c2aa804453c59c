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
#include "kernels/common/score_scale.h"

namespace npuk {

// The kernels a device can run. Per-item byte sizes are the device layout
// of DESIGN.md ("Kernels").
enum class KernelId { kMel = 0, kAttention = 1 };

struct KernelLayout {
  size_t in_bytes;  // one frame (mel) or tile (attention), device layout
  size_t out_bytes;
};

constexpr KernelLayout LayoutOf(KernelId id) {
  return id == KernelId::kMel ? KernelLayout{800, 80}
                              : KernelLayout{12288, 4096};
}

// "mel", "attention". A C string so that it works with absl::StrCat and
// spdlog alike (Debian's abseil has its own string_view type).
const char* KernelName(KernelId id);

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

  virtual KernelId kernel() const = 0;
  virtual size_t max_items() const = 0;

  // max_items() * in_bytes, valid for the executor's lifetime.
  virtual absl::Span<uint8_t> input() = 0;
  // max_items() * out_bytes, valid for the executor's lifetime. Holds the
  // results of the last successful Run.
  virtual absl::Span<const uint8_t> output() const = 0;

  // Runs the kernel over the first n items of input() into output().
  // `scales` has n entries for attention (one per tile) and is empty for mel.
  // REQUIRES: 1 <= n <= max_items().
  // Errors: UNAVAILABLE when the device failed or timed out (the request may
  // be retried elsewhere), INTERNAL for a broken invariant.
  virtual absl::Status Run(size_t n, absl::Span<const ScoreScale> scales) = 0;
};

class Device {
 public:
  virtual ~Device() = default;

  // The backend name given to --backend: "cpu", "xrt", "npu-sim".
  virtual std::string_view name() const = 0;

  // Creates staging buffers and whatever per-kernel state the backend
  // needs (for xrt: BOs in the right groups, instruction buffers).
  virtual absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      KernelId kernel, size_t max_items) = 0;
};

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_DEVICE_H_
