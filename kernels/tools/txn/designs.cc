#include "kernels/tools/txn/designs.h"

#include "absl/strings/str_cat.h"

namespace npuk::txn {

const Design& MelDesign() {
  static const Design* d =
      new Design{"mel",
                 0,
                 {{"of_out", 1, Direction::kS2MM, 0, 0, 80},
                  {"of_in", 0, Direction::kMM2S, 0, 1, 800}}};
  return *d;
}

const Design& AttentionDesign() {
  static const Design* d =
      new Design{"attention",
                 0,
                 {{"of_out", 2, Direction::kS2MM, 0, 0, 4096},
                  {"of_qkv", 0, Direction::kMM2S, 0, 1, 12288},
                  {"of_params", 1, Direction::kMM2S, 1, 2, 8}}};
  return *d;
}

absl::StatusOr<const Design*> DesignFor(std::string_view kernel) {
  if (kernel == "mel") return &MelDesign();
  if (kernel == "attention") return &AttentionDesign();
  return absl::NotFoundError(absl::StrCat("no NPU design for kernel \"",
                                          std::string(kernel),
                                          "\"; known: mel, attention"));
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
    if (absl::Status st = DmaMemcpyNd(
            encoder, {design.col, s.dir, s.channel, s.bd_id, s.arg_idx, 0,
                      static_cast<uint32_t>(bytes), s.dir == Direction::kS2MM});
        !st.ok()) {
      return st;
    }
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
