#include "server/health/zero_guard.h"

#include <cstring>
#include <span>
#include <vector>

#include "fmt/format.h"

namespace npuk {
namespace {

bool AllZero(const uint8_t* bytes, size_t n) {
  // This runs on every item of every response, so it stops at the first
  // non-zero 64-byte block: a real output almost always has one at once.
  constexpr size_t kBlock = 64;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    uint64_t acc = 0;
    for (size_t w = 0; w < kBlock; w += sizeof(uint64_t)) {
      uint64_t word;
      std::memcpy(&word, bytes + i + w, sizeof(word));
      acc |= word;
    }
    if (acc != 0) return false;
  }
  uint64_t acc = 0;
  for (; i < n; ++i) acc |= bytes[i];
  return acc == 0;
}

}  // namespace

absl::Status ZeroGuard::Verify(const KernelSpec& kernel, const InferTask& task,
                               const uint8_t* output) {
  if (monitor_ != nullptr) monitor_->NoteDeviceAnswered(kernel.name);
  const size_t out_bytes = kernel.output_bytes();
  std::vector<std::span<const uint8_t>> planes;
  std::vector<uint8_t> want;
  std::vector<uint8_t> stepped;
  // The padding items (empty units that fill a round) are zeros by design.
  for (size_t i = 0; i < task.items - task.padding_items; ++i) {
    const uint8_t* item = output + i * out_bytes;
    if (!AllZero(item, out_bytes)) continue;
    // Only now (rarely) pay for the reference of this one item.
    if (planes.empty()) {
      planes.assign(task.inputs.begin(), task.inputs.end());
      want.resize(out_bytes);
      if (task.write_stepped != nullptr) {
        // The task wrote its stepped plane into the device argument; write
        // it again for the reference.
        stepped.resize(StepSpanOfPlanes(kernel, planes, task.items));
        task.write_stepped(stepped.data());
        planes[kernel.stepped_plane()] = stepped;
      }
    }
    ReferenceItem(kernel, planes, i, want.data());
    if (AllZero(want.data(), want.size())) continue;
    ++caught_;
    absl::Status status = absl::InternalError(fmt::format(
        "the device returned an all-zero {} output {} {} of {} where the CPU "
        "reference is non-zero; the result was withheld and model {} marked "
        "NOT_SERVING until its canary passes again. Retry on another replica "
        "or after `npukctl health --model {}` reports SERVING",
        kernel.name, kernel.unit, i, task.items, kernel.name, kernel.name));
    if (monitor_ != nullptr && !task.canary) {
      monitor_->ReportFault(kernel.name, status);
    }
    return status;
  }
  return absl::OkStatus();
}

}  // namespace npuk
