// libFuzzer harness: the instruction-binary (TXN) parser and validator the
// daemon runs on every insts.bin it loads. Any byte string must be refused
// with a message or accepted; never a crash, hang or out-of-bounds read.
// The first input byte picks the expectations: bits 0-1 the registered
// kernel (modulo their count), bits 2-7 the batch size index.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kernels/registry/registry.h"
#include "kernels/tools/txn/designs.h"
#include "kernels/tools/txn/txn.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  absl::Span<const uint8_t> bytes(data + 1, size - 1);

  absl::StatusOr<std::vector<uint32_t>> words =
      npuk::txn::WordsFromBytes(bytes);
  if (!words.ok()) return 0;
  absl::StatusOr<npuk::txn::Program> program = npuk::txn::Parse(*words);
  if (program.ok()) {
    // Walk every op through its accessors, as the simulator does.
    for (const npuk::txn::Op& op : program->ops) {
      if (op.word_offset + op.words.size() > words->size()) std::abort();
      switch (op.opcode) {
        case npuk::txn::kOpWrite:
          (void)op.address();
          (void)op.value();
          break;
        case npuk::txn::kOpBlockWrite:
          (void)op.address();
          (void)op.block();
          break;
        case npuk::txn::kOpMaskWrite:
          (void)op.address();
          (void)op.value();
          (void)op.mask();
          break;
        case npuk::txn::kOpSync:
          (void)op.sync_direction();
          (void)op.sync_row();
          (void)op.sync_column();
          (void)op.sync_channel();
          break;
        case npuk::txn::kOpAddressPatch:
          (void)op.address();
          (void)op.arg_idx();
          (void)op.arg_plus();
          break;
        default:
          break;
      }
    }
  }
  // Designs come from the registry (kernels/tools/txn/designs.h).
  const auto kernels = npuk::AllKernels();
  const npuk::txn::Design design =
      npuk::txn::DesignFor(*kernels[(selector & 3) % kernels.size()]);
  const std::vector<uint32_t>& sizes = npuk::txn::StandardBatchSizes();
  const uint32_t n = sizes[(selector >> 2) % sizes.size()];
  const absl::Status valid = npuk::txn::ValidateInstructions(
      *words, npuk::txn::ExpectationsFor(design, n));
  if (!valid.ok() && valid.message().empty()) std::abort();
  // What the validator accepts must also parse.
  if (valid.ok() && !program.ok()) std::abort();
  return 0;
}
