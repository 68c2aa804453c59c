#include "kernels/tools/txn/designs.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "kernels/registry/registry.h"
#include "server/common/status_macros.h"

namespace npuk::txn {

Design DesignFor(const KernelSpec& spec) {
  Design design{spec.name, 0, {}};
  const size_t inputs = spec.device_args.size();
  for (const ShimStream& s : spec.design.streams) {
    size_t bytes = 0;
    if (s.arg < inputs) {
      bytes = spec.arg_bytes(s.arg);
    } else if (s.arg == inputs) {
      bytes = spec.output_bytes();
    }
    design.streams.push_back(
        {s.fifo, s.arg, s.to_device ? Direction::kMM2S : Direction::kS2MM,
         s.channel, s.bd_id, static_cast<uint32_t>(bytes)});
  }
  return design;
}

absl::StatusOr<const Design*> DesignFor(std::string_view kernel) {
  // Built once from the registry, which is immutable, so the pointers stay
  // valid for the life of the process.
  static const auto* designs = [] {
    auto* m = new std::map<std::string, Design, std::less<>>();
    for (const KernelSpec* spec : AllKernels()) {
      m->emplace(spec->name, DesignFor(*spec));
    }
    return m;
  }();
  const auto it = designs->find(kernel);
  if (it == designs->end()) {
    return absl::NotFoundError(absl::StrCat("no NPU design for kernel \"",
                                            std::string(kernel),
                                            "\"; registered: ", KernelNames()));
  }
  return &it->second;
}

std::vector<uint32_t> ArgBytesPerItem(const Design& design) {
  uint32_t args = 0;
  for (const Stream& s : design.streams) args = std::max(args, s.arg_idx + 1);
  std::vector<uint32_t> bytes(args, 0);
  for (const Stream& s : design.streams) bytes[s.arg_idx] = s.bytes_per_item;
  return bytes;
}

const std::vector<uint32_t>& StandardBatchSizes() {
  static const std::vector<uint32_t>* sizes =
      new std::vector<uint32_t>{1, 4, 16, 32, 64, 128, 256};
  return *sizes;
}

absl::StatusOr<std::vector<uint32_t>> BuildSequence(const Design& design,
                                                    uint32_t n) {
  if (n == 0) return absl::InvalidArgumentError("batch size must be >= 1");
  Encoder encoder;
  for (const Stream& s : design.streams) {
    const uint64_t bytes = uint64_t{n} * s.bytes_per_item;
    if (bytes > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch ", n, " of ", design.kernel, " moves ", bytes,
                       " bytes on ", s.fifo, ", more than one BD can"));
    }
    NPUK_RETURN_IF_ERROR(DmaMemcpyNd(
        encoder, {design.col, s.dir, s.channel, s.bd_id, s.arg_idx, 0,
                  static_cast<uint32_t>(bytes), s.dir == Direction::kS2MM}));
  }
  for (const Stream& s : design.streams) {
    if (s.dir == Direction::kS2MM)
      DmaWait(encoder, design.col, s.dir, s.channel);
  }
  return encoder.Finish();
}

Expectations ExpectationsFor(const Design& design, uint32_t n) {
  Expectations e;
  for (const Stream& s : design.streams) {
    auto& args = s.dir == Direction::kMM2S ? e.input_args : e.output_args;
    auto& sizes = s.dir == Direction::kMM2S ? e.input_bytes : e.output_bytes;
    args.push_back(s.arg_idx);
    sizes.push_back(n * s.bytes_per_item);
  }
  return e;
}

}  // namespace npuk::txn
