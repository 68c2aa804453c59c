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
  uint32_t bytes_per_item;
};

struct Design {
  std::string kernel;  // the KernelSpec's name
  uint32_t col = 0;
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
