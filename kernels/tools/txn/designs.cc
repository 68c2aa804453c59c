#include "kernels/tools/txn/designs.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/registry/registry.h"
#include "server/common/status_macros.h"

namespace npuk::txn {

Design DesignFor(const KernelSpec& spec) {
  Design design{spec.name, 0, spec.design.cores, spec.design.columns, {}};
  const size_t inputs = spec.device_args.size();
  for (const ShimStream& s : spec.design.streams) {
    size_t bytes = 0;
    size_t halo = 0;
    if (s.arg < inputs) {
      bytes = spec.arg_bytes(s.arg);
      halo = spec.arg_halo_bytes(s.arg);
    } else if (s.arg == inputs) {
      bytes = spec.output_bytes();
    }
    design.streams.push_back({s.fifo, s.arg,
                              s.to_device ? Direction::kMM2S : Direction::kS2MM,
                              s.channel, s.bd_id, static_cast<uint32_t>(bytes),
                              static_cast<uint32_t>(halo)});
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

std::vector<uint32_t> BatchSizes(uint32_t granule, uint32_t largest) {
  std::vector<uint32_t> sizes;
  if (granule == 0) return sizes;
  uint32_t step = 1;
  for (uint32_t m = 1; uint64_t{m} * granule <= largest;) {
    sizes.push_back(m * granule);
    if (m >= 16 * step) step *= 2;
    m += m >= 8 ? step : 1;
  }
  if (largest % granule == 0 && (sizes.empty() || sizes.back() != largest)) {
    sizes.push_back(largest);
  }
  return sizes;
}

std::vector<uint32_t> BatchSizesFor(const Design& design) {
  return BatchSizes(design.granule());
}

const std::vector<uint32_t>& StandardBatchSizes() {
  static const std::vector<uint32_t>* sizes =
      new std::vector<uint32_t>(BatchSizes(4));
  return *sizes;
}

absl::StatusOr<std::vector<uint32_t>> BuildSequence(const Design& design,
                                                    uint32_t n) {
  return BuildSequence(design, n, UINT32_MAX, 0);
}

absl::StatusOr<std::vector<uint32_t>> BuildSequence(const Design& design,
                                                    uint32_t n, uint32_t arg,
                                                    uint64_t arg_bytes) {
  if (arg != UINT32_MAX && design.columns != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        design.kernel, ": a run with its own byte count for argument ", arg,
        " needs a one-column design, it has ", design.columns));
  }
  if (n == 0) return absl::InvalidArgumentError("batch size must be >= 1");
  if (design.granule() == 0 || n % design.granule() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch ", n, " of ", design.kernel, " is not a multiple of ",
        design.granule(), " (", design.cores, " cores x ", design.columns,
        " columns take one item each per round); use one of ",
        absl::StrJoin(BatchSizesFor(design), ", ")));
  }
  const uint32_t per_column = n / design.columns;
  Encoder encoder;
  for (const Stream& s : design.streams) {
    const uint64_t bytes =
        s.arg_idx == arg ? arg_bytes : uint64_t{per_column} * s.window_bytes();
    const uint64_t last_offset =
        uint64_t{per_column} * (design.columns - 1) * s.bytes_per_item;
    // A run whose records take no steps moves nothing on that stream.
    if (s.arg_idx == arg && bytes == 0) continue;
    if (bytes > UINT32_MAX || last_offset > UINT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch ", n, " of ", design.kernel, " moves ", bytes,
          " bytes per column on ", s.fifo, ", more than one BD can"));
    }
    for (uint32_t c = 0; c < design.columns; ++c) {
      MemcpyNd copy{
          design.col + c,
          s.dir,
          s.channel,
          s.bd_id,
          s.arg_idx,
          static_cast<uint32_t>(uint64_t{per_column} * c * s.bytes_per_item),
          static_cast<uint32_t>(bytes),
          s.dir == Direction::kS2MM};
      if (s.halo_bytes > 0) {
        copy.window_words = s.window_bytes() / 4;
        copy.stride_words = s.bytes_per_item / 4;
      }
      NPUK_RETURN_IF_ERROR(DmaMemcpyNd(encoder, copy));
    }
  }
  for (const Stream& s : design.streams) {
    if (s.dir != Direction::kS2MM) continue;
    for (uint32_t c = 0; c < design.columns; ++c) {
      DmaWait(encoder, design.col + c, s.dir, s.channel);
    }
  }
  return encoder.Finish();
}

Expectations ExpectationsFor(const Design& design, uint32_t n) {
  Expectations e;
  for (const Stream& s : design.streams) {
    auto& args = s.dir == Direction::kMM2S ? e.input_args : e.output_args;
    auto& sizes = s.dir == Direction::kMM2S ? e.input_bytes : e.output_bytes;
    args.push_back(s.arg_idx);
    sizes.push_back(n * s.window_bytes());
  }
  return e;
}

}  // namespace npuk::txn
