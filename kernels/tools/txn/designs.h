// The shim side of a kernel's npu1_1col design, as the instruction stream
// needs it: which runtime-sequence argument travels on which shim DMA
// channel and BD, and how many bytes per item. It is derived from the
// kernel's declaration (KernelSpec::design.streams and its argument sizes,
// kernels/registry/kernel_spec.h), so there is no per-kernel table here.
// BuildSequence emits the instruction stream aiecc produces for the
// sequence of batch size N. The MLIR the kernel's design generator
// (kernels/<name>/<name>_design.py) emits must agree with the declaration:
// kernels/tools/lint_sequences.py checks that, against
// `npuk_txn_tool designs`, and the txn tests check the sequences.
#ifndef NPUK_KERNELS_TOOLS_TXN_DESIGNS_H_
#define NPUK_KERNELS_TOOLS_TXN_DESIGNS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/registry/kernel_spec.h"
#include "kernels/tools/txn/txn.h"

namespace npuk::txn {

struct Stream {
  std::string fifo;  // objectfifo / shim_dma_allocation name in the MLIR
  uint32_t arg_idx;  // runtime-sequence argument = data BO i (group 3+i)
  Direction dir;
  uint32_t channel;
  uint32_t bd_id;
  uint32_t bytes_per_item;  // the item stride in the argument's buffer
  // A windowed input (TensorDecl::halo): each item also reads the next
  // halo_bytes, so the shim DMA moves bytes_per_item + halo_bytes per item
  // as strided windows (npu_dma_memcpy_nd sizes [1, 1, n, window/4],
  // strides [0, 0, bytes_per_item/4, 1] in 32-bit words). 0 = linear.
  uint32_t halo_bytes = 0;
  uint32_t window_bytes() const { return bytes_per_item + halo_bytes; }
};

struct Design {
  std::string kernel;  // the KernelSpec's name
  uint32_t col = 0;    // the first column
  // KernelSpec::design.cores / .columns: column c (col + c) moves items
  // [c n / columns, (c + 1) n / columns) of a run of n.
  uint32_t cores = 1;
  uint32_t columns = 1;
  uint32_t granule() const { return cores * columns; }
  // In the order the sequence issues them (outputs first so the S2MM side
  // is armed before data flows, as mlir-aie's examples do).
  std::vector<Stream> streams;
};

// The design of `spec`: one Stream per spec.design.streams entry, bytes per
// item from spec.arg_bytes(arg) (inputs) or spec.output_bytes() (the last
// argument). REQUIRES: ValidateKernelSpec(spec) is OK, as it is for every
// registered kernel (a stream naming no argument would get 0 bytes).
Design DesignFor(const KernelSpec& spec);

// The design of the registered kernel `kernel` (FindKernel), built once and
// valid for the life of the process; NotFound naming the registered kernels
// otherwise.
absl::StatusOr<const Design*> DesignFor(std::string_view kernel);

// Bytes per item of every runtime-sequence argument, by argument index
// (inputs, then the output): what a kernel package's manifest records.
std::vector<uint32_t> ArgBytesPerItem(const Design& design);

// The sequence sizes for granule g (items per round) up to `largest`:
// g * m for m in 1..15, then every multiple of 2^k in [8 * 2^k, 16 * 2^k)
// rounds (three significant bits), and `largest`. Rounding a run up to the
// next size pads fewer than 1/8 of the rounds run. The same rule as
// aie_design.batch_sizes (kernels/tools/txn_design/aie_design.py), which
// the AIE build builds; lint_sequences.py compares the two.
std::vector<uint32_t> BatchSizes(uint32_t granule, uint32_t largest = 256);

// The batch sizes we ship a sequence for, for `design` (its granule).
std::vector<uint32_t> BatchSizesFor(const Design& design);

// BatchSizes(4): the sizes of the registered designs (every one is one
// column of 4 cores; designs_test checks that).
const std::vector<uint32_t>& StandardBatchSizes();

// The runtime sequence for n items (a multiple of design.granule()): per
// stream, one dma_memcpy_nd per column of n / columns * bytes_per_item (a
// windowed stream: strided windows of window_bytes()) at that column's
// items, then dma_wait on every output of every column.
absl::StatusOr<std::vector<uint32_t>> BuildSequence(const Design& design,
                                                    uint32_t n);

// The same for a run whose argument `arg` moves `arg_bytes` bytes in all
// instead of n of its items: a stepped argument (TensorDecl::stepped),
// whose runs move the steps their records give. Only for one-column
// designs (a stepped kernel's).
absl::StatusOr<std::vector<uint32_t>> BuildSequence(const Design& design,
                                                    uint32_t n, uint32_t arg,
                                                    uint64_t arg_bytes);

// What ValidateInstructions must find in the sequence for n items.
Expectations ExpectationsFor(const Design& design, uint32_t n);

}  // namespace npuk::txn

#endif  // NPUK_KERNELS_TOOLS_TXN_DESIGNS_H_
