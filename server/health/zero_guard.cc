#include "server/health/zero_guard.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "fmt/format.h"
#include "server/device/cpu/cpu_kernels.h"

namespace npuk {
namespace {

bool AllZero(const uint8_t* bytes, size_t n) {
  // A word-wise scan: this runs on every response, so it must stay cheap.
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, bytes + i, sizeof(word));
    acc |= word;
  }
  for (; i < n; ++i) acc |= bytes[i];
  return acc == 0;
}

// The reference result for item `i` of `task`, in device layout.
std::vector<uint8_t> Reference(KernelId kernel, const InferTask& task,
                               size_t i) {
  const KernelLayout layout = LayoutOf(kernel);
  std::vector<uint8_t> in;
  in.reserve(layout.in_bytes);
  for (const absl::Span<const uint8_t>& plane : task.inputs) {
    const size_t plane_bytes = plane.size() / task.items;
    const uint8_t* item = plane.data() + i * plane_bytes;
    in.insert(in.end(), item, item + plane_bytes);
  }
  std::vector<uint8_t> out(layout.out_bytes);
  // Device layouts are little-endian int16 (mel) and int8 (attention).
  if (kernel == KernelId::kMel) {
    std::vector<int16_t> samples(layout.in_bytes / sizeof(int16_t));
    std::memcpy(samples.data(), in.data(), layout.in_bytes);
    cpu::MelFrames(samples.data(), reinterpret_cast<int8_t*>(out.data()), 1);
  } else {
    cpu::AttentionTiles(reinterpret_cast<const int8_t*>(in.data()),
                        reinterpret_cast<int8_t*>(out.data()), 1, &task.scale);
  }
  return out;
}

}  // namespace

absl::Status ZeroGuard::Verify(KernelId kernel, const InferTask& task,
                               const uint8_t* output) {
  if (monitor_ != nullptr) monitor_->NoteDeviceAnswered(kernel);
  const size_t out_bytes = LayoutOf(kernel).out_bytes;
  for (size_t i = 0; i < task.items; ++i) {
    const uint8_t* item = output + i * out_bytes;
    if (!AllZero(item, out_bytes)) continue;
    const std::vector<uint8_t> want = Reference(kernel, task, i);
    if (AllZero(want.data(), want.size())) continue;
    ++caught_;
    const char* unit = kernel == KernelId::kMel ? "frame" : "tile";
    absl::Status status = absl::InternalError(fmt::format(
        "the device returned an all-zero {} output {} {} of {} where the CPU "
        "reference is non-zero; the result was withheld and model {} marked "
        "NOT_SERVING until its canary passes again. Retry on another replica "
        "or after `npukctl health --model {}` reports SERVING",
        KernelName(kernel), unit, i, task.items, KernelName(kernel),
        KernelName(kernel)));
    if (monitor_ != nullptr && !task.canary) {
      monitor_->ReportFault(kernel, status);
    }
    return status;
  }
  return absl::OkStatus();
}

}  // namespace npuk
