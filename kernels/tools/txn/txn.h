// The NPU instruction stream ("TXN", insts.bin) that aiecc emits for a
// runtime sequence and the firmware executes on every xrt::run: a 4-word
// header, then ops. Layout per reference/mlir_aie.md §3.1 (mlir-aie
// lib/Targets/AIETargetNPU.cpp); see kernels/README.md for what of it is
// verified against published aiecc output and what is not.
//
// Encoder builds streams the way aiecc lowers aiex.npu.dma_memcpy_nd
// (writebd as a blockwrite of 8 BD words, address_patch, push_queue write32)
// and aiex.npu.dma_wait (TCT sync). Parse splits a stream into ops and
// refuses malformed ones; ValidateInstructions adds the semantic checks the
// daemon runs on every binary it loads.
#ifndef NPUK_KERNELS_TOOLS_TXN_TXN_H_
#define NPUK_KERNELS_TOOLS_TXN_TXN_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace npuk::txn {

// Opcodes (XAIE_IO_* in aie-rt) and their sizes in 32-bit words.
inline constexpr uint32_t kOpWrite = 0x00;         // 6 words
inline constexpr uint32_t kOpBlockWrite = 0x01;    // 4 + data words
inline constexpr uint32_t kOpMaskWrite = 0x03;     // 7 words
inline constexpr uint32_t kOpSync = 0x80;          // TCT sync, 4 words
inline constexpr uint32_t kOpAddressPatch = 0x81;  // DDR_PATCH, 12 words

inline constexpr size_t kHeaderWords = 4;
inline constexpr uint8_t kFormatMajor = 0;
inline constexpr uint8_t kFormatMinor = 1;
inline constexpr uint8_t kDevGenNpu1 = 3;  // Phoenix / Hawk Point
inline constexpr uint8_t kDevGenNpu2 = 4;  // Strix

// AIE2 tile address: column and row select the tile, the low 20 bits the
// register or memory offset inside it.
inline constexpr uint32_t kColumnShift = 25;
inline constexpr uint32_t kRowShift = 20;
constexpr uint32_t TileAddress(uint32_t col, uint32_t row, uint32_t offset) {
  return (col << kColumnShift) | (row << kRowShift) | (offset & 0xFFFFF);
}
constexpr uint32_t ColumnOf(uint32_t address) {
  return (address >> kColumnShift) & 0x7F;
}
constexpr uint32_t RowOf(uint32_t address) {
  return (address >> kRowShift) & 0x1F;
}
constexpr uint32_t OffsetOf(uint32_t address) { return address & 0xFFFFF; }

// Shim (row 0) DMA registers of AIE2: 16 buffer descriptors of 8 words and
// one task queue per channel.
inline constexpr uint32_t kShimBdBase = 0x1D000;
inline constexpr uint32_t kShimBdStride = 0x20;
inline constexpr uint32_t kShimBdCount = 16;
inline constexpr uint32_t kShimBdWords = 8;

enum class Direction : uint8_t { kS2MM = 0, kMM2S = 1 };  // to / from DDR

constexpr uint32_t ShimBdAddress(uint32_t col, uint32_t bd_id) {
  return TileAddress(col, 0, kShimBdBase + bd_id * kShimBdStride);
}
// The queue register a push_queue writes: S2MM_0 0x1D204, S2MM_1 0x1D20C,
// MM2S_0 0x1D214, MM2S_1 0x1D21C.
constexpr uint32_t ShimQueueAddress(uint32_t col, Direction dir,
                                    uint32_t channel) {
  return TileAddress(
      col, 0, 0x1D204 + (dir == Direction::kMM2S ? 0x10u : 0u) + channel * 8);
}
inline constexpr uint32_t kQueueIssueToken = 0x80000000u;

struct Header {
  uint8_t major = kFormatMajor;
  uint8_t minor = kFormatMinor;
  uint8_t dev_gen = kDevGenNpu1;
  uint8_t num_rows = 6;  // shim + mem tile + 4 compute rows
  uint8_t num_cols = 1;
  uint8_t num_mem_tile_rows = 1;
  uint32_t op_count = 0;
  uint32_t total_bytes = 0;
};

// One op of a parsed stream; `words` views the op inside the stream.
struct Op {
  uint32_t opcode = 0;
  size_t word_offset = 0;  // of the op's first word in the whole stream
  absl::Span<const uint32_t> words;

  // Field accessors; valid only for the matching opcode.
  uint32_t address() const;  // WRITE, BLOCKWRITE, MASKWRITE, patch reg
  uint32_t value() const;    // WRITE, MASKWRITE
  uint32_t mask() const;     // MASKWRITE
  absl::Span<const uint32_t> block() const;  // BLOCKWRITE data
  uint32_t arg_idx() const;                  // DDR_PATCH
  uint32_t arg_plus() const;                 // DDR_PATCH
  // TCT sync fields.
  Direction sync_direction() const;
  uint32_t sync_row() const;
  uint32_t sync_column() const;
  uint32_t sync_channel() const;
};

struct Program {
  Header header;
  std::vector<Op> ops;
};

// Splits `words` into header and ops. Refuses, naming the word offset: a
// short or inconsistent header, an op that runs past the end, an op whose
// size field disagrees with its opcode, an unknown opcode, trailing words.
// The returned ops view `words`, which must outlive them.
absl::StatusOr<Program> Parse(absl::Span<const uint32_t> words);

// Interprets raw bytes as little-endian words; refuses a length that is not
// a multiple of 4 (aiecc's insts.bin always is).
absl::StatusOr<std::vector<uint32_t>> WordsFromBytes(
    absl::Span<const uint8_t> bytes);

// Appends ops and finishes them with the header.
class Encoder {
 public:
  explicit Encoder(Header header = Header{}) : header_(header) {}

  void Write32(uint32_t address, uint32_t value);
  void MaskWrite32(uint32_t address, uint32_t value, uint32_t mask);
  void BlockWrite(uint32_t address, absl::Span<const uint32_t> data);
  void Sync(uint32_t col, uint32_t row, Direction dir, uint32_t channel,
            uint32_t num_cols = 1, uint32_t num_rows = 1);
  // The firmware adds the device address of runtime-sequence argument
  // `arg_idx` plus `arg_plus` bytes and writes it to register `address`.
  void AddressPatch(uint32_t address, uint32_t arg_idx, uint32_t arg_plus);

  // Header (op count and byte size filled in) followed by the ops.
  std::vector<uint32_t> Finish() const;

 private:
  Header header_;
  uint32_t op_count_ = 0;
  std::vector<uint32_t> body_;
};

// An AIE2 shim buffer descriptor for a transfer of `bytes` (a multiple of
// 4) starting `offset` bytes into its buffer. The base address words stay
// 0 until the address patch fills them in. Linear unless `window_words` is
// set: then the BD reads windows of window_words words, one every
// stride_words words (dma_memcpy_nd sizes [1, 1, bytes / 4 / window,
// window], strides [0, 0, stride, 1]): D0 wrap = window_words with step 1,
// D1 wrap = the window count with step stride_words, in BD words 3 and 4
// (wrap in bits 29:20, step - 1 in bits 19:0, the AIE-ML NoC-module BD
// layout of aie-rt; not yet checked against aiecc output, see
// kernels/README.md).
struct ShimBd {
  uint32_t bytes = 0;
  uint32_t offset = 0;
  uint32_t window_words = 0;  // 0 = linear
  uint32_t stride_words = 0;
};
inline constexpr uint32_t kShimBdMaxWrap = 1023;  // 10-bit wrap fields
std::array<uint32_t, kShimBdWords> EncodeShimBd(const ShimBd& bd);
// Length in bytes and base address (words 0..2) of a shim BD.
uint32_t ShimBdLengthBytes(absl::Span<const uint32_t> bd_words);
uint64_t ShimBdBaseAddress(absl::Span<const uint32_t> bd_words);
// The D0/D1 access pattern of a shim BD in words: window_words 0 for a
// linear BD (D0 wrap 0), else the window size, the window stride and the
// window count (D1 wrap).
struct ShimBdAccess {
  uint32_t window_words = 0;
  uint32_t stride_words = 0;
  uint32_t windows = 0;
};
ShimBdAccess ShimBdPattern(absl::Span<const uint32_t> bd_words);

// One aiex.npu.dma_memcpy_nd of a linear [1,1,1,bytes/4] i32 view of
// runtime-sequence argument `arg_idx`, the way aiecc lowers it: writebd
// (blockwrite of the 8 BD words), address_patch of BD word 1, push_queue
// (write32 of bd_id | 0x80000000 when issuing a token). S2MM always issues a
// token, as aiecc forces.
struct MemcpyNd {
  uint32_t col = 0;
  Direction dir = Direction::kMM2S;
  uint32_t channel = 0;
  uint32_t bd_id = 0;
  uint32_t arg_idx = 0;
  uint32_t arg_offset = 0;  // bytes
  uint32_t bytes = 0;       // moved in all (the windows' bytes when strided)
  bool issue_token = false;
  // Strided windows (ShimBd): 0 = linear.
  uint32_t window_words = 0;
  uint32_t stride_words = 0;
};
absl::Status DmaMemcpyNd(Encoder& encoder, const MemcpyNd& copy);
// aiex.npu.dma_wait on a shim channel: a TCT sync.
void DmaWait(Encoder& encoder, uint32_t col, Direction dir, uint32_t channel);

// What a loader requires of a binary beyond well-formedness.
struct Expectations {
  uint8_t dev_gen = kDevGenNpu1;
  uint8_t num_cols = 1;
  // Runtime-sequence arguments that must be address-patched into a BD that
  // is then pushed; inputs go out on MM2S, outputs come in on S2MM.
  std::vector<uint32_t> input_args;
  std::vector<uint32_t> output_args;
  // Expected transfer size per argument (same order as the lists above);
  // empty = not checked.
  std::vector<uint32_t> input_bytes;
  std::vector<uint32_t> output_bytes;
};

// Parse plus: device generation and column count, every expected argument
// patched into a shim BD that is pushed on a channel of the right direction
// (with the expected size), and every output channel waited on by a TCT
// sync after its push. Errors say what is wrong and at which word.
absl::Status ValidateInstructions(absl::Span<const uint32_t> words,
                                  const Expectations& expect);

}  // namespace npuk::txn

#endif  // NPUK_KERNELS_TOOLS_TXN_TXN_H_
