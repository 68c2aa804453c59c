// The shim side of our two npu1_1col designs (kernels/mel/mel.mlir,
// kernels/attention/attention.mlir): which runtime-sequence argument
// travels on which shim DMA channel and BD, and how many bytes per item.
// BuildSequence emits the instruction stream aiecc produces for the
// sequence of batch size N; the MLIR and this table must agree, which the
// lint (kernels/tools/lint_sequences.py) and txn tests check.
#ifndef NPUK_KERNELS_TOOLS_TXN_DESIGNS_H_
#define NPUK_KERNELS_TOOLS_TXN_DESIGNS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/tools/txn/txn.h"

namespace npuk::txn {

struct Stream {
  std::string fifo;  // objectfifo / shim_dma_allocation name in the MLIR
  uint32_t arg_idx;  // runtime-sequence argument = data BO i (group 3+i)
  Direction dir;
  uint32_t channel;
  uint32_t bd_id;
  uint32_t bytes_per_item;
};

struct Design {
  std::string kernel;  // "mel", "attention"
  uint32_t col = 0;
  // In the order the sequence issues them (outputs first so the S2MM side
  // is armed before data flows, as mlir-aie's examples do).
  std::vector<Stream> streams;
};

// mel: audio (arg 0, 800 B/frame) MM2S 0; log_mel (arg 1, 80 B) S2MM 0.
const Design& MelDesign();
// attention: qkv (arg 0, 12288 B/tile) MM2S 0; params (arg 1, 8 B/tile:
// int32 multiplier, int32 shift) MM2S 1; out (arg 2, 4096 B) S2MM 0.
const Design& AttentionDesign();
// By kernel name; NotFound for anything else.
absl::StatusOr<const Design*> DesignFor(std::string_view kernel);

// The batch sizes we ship a sequence for.
const std::vector<uint32_t>& StandardBatchSizes();

// The runtime sequence for n items: one dma_memcpy_nd per stream of
// n * bytes_per_item, then dma_wait on every output.
absl::StatusOr<std::vector<uint32_t>> BuildSequence(const Design& design,
                                                    uint32_t n);

// What ValidateInstructions must find in the sequence for n items.
Expectations ExpectationsFor(const Design& design, uint32_t n);

}  // namespace npuk::txn

#endif  // NPUK_KERNELS_TOOLS_TXN_DESIGNS_H_
