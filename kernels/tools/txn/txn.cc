#include "kernels/tools/txn/txn.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace npuk::txn {
namespace {

// Words of the fixed-size ops. aiecc also stores each op's byte size in the
// op (word 5 of WRITE, 6 of MASKWRITE, 1 of TCT and DDR_PATCH); we write
// those fields but only trust BLOCKWRITE's (word 3), the one variable-size
// op, because the other positions are not in the reference and a wrong
// guess must not make us refuse a real aiecc binary.
constexpr size_t kWriteWords = 6;
constexpr size_t kMaskWriteWords = 7;
constexpr size_t kSyncWords = 4;
constexpr size_t kPatchWords = 12;
constexpr size_t kBlockWriteHeaderWords = 4;

std::string OpName(uint32_t opcode) {
  switch (opcode) {
    case kOpWrite:
      return "WRITE";
    case kOpBlockWrite:
      return "BLOCKWRITE";
    case kOpMaskWrite:
      return "MASKWRITE";
    case kOpSync:
      return "TCT sync";
    case kOpAddressPatch:
      return "DDR_PATCH";
  }
  return absl::StrFormat("0x%02x", opcode);
}

absl::Status Refuse(size_t word, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "instruction binary, word ", word, " (byte ", word * 4, "): ", what,
      "; regenerate it with aiecc --aie-generate-npu-insts for npu1_1col "
      "(kernels/README.md)"));
}

std::string DirName(Direction dir) {
  return dir == Direction::kMM2S ? "MM2S" : "S2MM";
}

}  // namespace

uint32_t Op::address() const {
  return opcode == kOpAddressPatch ? words[6] : words[2];
}
uint32_t Op::value() const { return words[4]; }
uint32_t Op::mask() const { return words[5]; }
absl::Span<const uint32_t> Op::block() const {
  return words.subspan(kBlockWriteHeaderWords);
}
uint32_t Op::arg_idx() const { return words[8]; }
uint32_t Op::arg_plus() const { return words[10]; }
Direction Op::sync_direction() const {
  return (words[2] & 0xFF) == 0 ? Direction::kS2MM : Direction::kMM2S;
}
uint32_t Op::sync_row() const { return (words[2] >> 8) & 0xFF; }
uint32_t Op::sync_column() const { return (words[2] >> 16) & 0xFF; }
uint32_t Op::sync_channel() const { return (words[3] >> 24) & 0xFF; }

absl::StatusOr<std::vector<uint32_t>> WordsFromBytes(
    absl::Span<const uint8_t> bytes) {
  if (bytes.size() % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "instruction binary is ", bytes.size(),
        " bytes, not a whole number of 32-bit words; it is truncated or not "
        "an insts.bin (aiecc --aie-output-binary writes raw words)"));
  }
  std::vector<uint32_t> words(bytes.size() / 4);
  for (size_t i = 0; i < words.size(); ++i) {
    words[i] = uint32_t{bytes[4 * i]} | uint32_t{bytes[4 * i + 1]} << 8 |
               uint32_t{bytes[4 * i + 2]} << 16 |
               uint32_t{bytes[4 * i + 3]} << 24;
  }
  return words;
}

absl::StatusOr<Program> Parse(absl::Span<const uint32_t> words) {
  if (words.size() < kHeaderWords) {
    return Refuse(0, absl::StrCat("only ", words.size(),
                                  " words, shorter than the 4-word header"));
  }
  Program program;
  Header& h = program.header;
  h.major = words[0] & 0xFF;
  h.minor = (words[0] >> 8) & 0xFF;
  h.dev_gen = (words[0] >> 16) & 0xFF;
  h.num_rows = (words[0] >> 24) & 0xFF;
  h.num_cols = words[1] & 0xFF;
  h.num_mem_tile_rows = (words[1] >> 8) & 0xFF;
  h.op_count = words[2];
  h.total_bytes = words[3];
  if (h.major != kFormatMajor || h.minor != kFormatMinor) {
    return Refuse(
        0, absl::StrFormat("header version %d.%d is not the TXN %d.%d format "
                           "(header word 0x%08x; older mlir-aie emitted 1.0 "
                           "with 3-word writes)",
                           h.major, h.minor, kFormatMajor, kFormatMinor,
                           words[0]));
  }
  if (h.num_cols == 0 || h.num_rows == 0) {
    return Refuse(1, "header has zero rows or columns");
  }
  if (h.total_bytes != words.size() * 4) {
    return Refuse(3, absl::StrCat("header says the binary is ", h.total_bytes,
                                  " bytes but it is ", words.size() * 4,
                                  " (truncated or padded)"));
  }
  size_t at = kHeaderWords;
  while (at < words.size()) {
    const uint32_t opcode = words[at] & 0xFF;
    size_t size = 0;
    switch (opcode) {
      case kOpWrite:
        size = kWriteWords;
        break;
      case kOpMaskWrite:
        size = kMaskWriteWords;
        break;
      case kOpSync:
        size = kSyncWords;
        break;
      case kOpAddressPatch:
        size = kPatchWords;
        break;
      case kOpBlockWrite: {
        if (at + kBlockWriteHeaderWords > words.size()) {
          return Refuse(at, "BLOCKWRITE runs past the end of the binary");
        }
        const uint32_t bytes = words[at + 3];
        if (bytes % 4 != 0 || bytes / 4 <= kBlockWriteHeaderWords) {
          return Refuse(at, absl::StrCat("BLOCKWRITE size field ", bytes,
                                         " is not 4 header words plus data"));
        }
        size = bytes / 4;
        break;
      }
      default:
        return Refuse(at, absl::StrFormat("unknown opcode 0x%02x (word 0x%08x)",
                                          opcode, words[at]));
    }
    if (at + size > words.size()) {
      return Refuse(at, absl::StrCat(OpName(opcode), " needs ", size,
                                     " words but only ", words.size() - at,
                                     " remain: the binary is truncated"));
    }
    program.ops.push_back(Op{opcode, at, words.subspan(at, size)});
    at += size;
  }
  if (program.ops.size() != h.op_count) {
    return Refuse(2, absl::StrCat("header says ", h.op_count,
                                  " ops but the "
                                  "binary holds ",
                                  program.ops.size()));
  }
  return program;
}

void Encoder::Write32(uint32_t address, uint32_t value) {
  body_.insert(body_.end(), {kOpWrite, 0, address, 0, value,
                             static_cast<uint32_t>(kWriteWords * 4)});
  ++op_count_;
}

void Encoder::MaskWrite32(uint32_t address, uint32_t value, uint32_t mask) {
  body_.insert(body_.end(), {kOpMaskWrite, 0, address, 0, value, mask,
                             static_cast<uint32_t>(kMaskWriteWords * 4)});
  ++op_count_;
}

void Encoder::BlockWrite(uint32_t address, absl::Span<const uint32_t> data) {
  body_.insert(
      body_.end(),
      {kOpBlockWrite, 0, address,
       static_cast<uint32_t>((kBlockWriteHeaderWords + data.size()) * 4)});
  body_.insert(body_.end(), data.begin(), data.end());
  ++op_count_;
}

void Encoder::Sync(uint32_t col, uint32_t row, Direction dir, uint32_t channel,
                   uint32_t num_cols, uint32_t num_rows) {
  body_.insert(body_.end(), {kOpSync, static_cast<uint32_t>(kSyncWords * 4),
                             static_cast<uint32_t>(dir) | (row & 0xFF) << 8 |
                                 (col & 0xFF) << 16,
                             (num_rows & 0xFF) << 8 | (num_cols & 0xFF) << 16 |
                                 (channel & 0xFF) << 24});
  ++op_count_;
}

void Encoder::AddressPatch(uint32_t address, uint32_t arg_idx,
                           uint32_t arg_plus) {
  body_.insert(body_.end(),
               {kOpAddressPatch, static_cast<uint32_t>(kPatchWords * 4), 0, 0,
                0, 0, address, 0, arg_idx, 0, arg_plus, 0});
  ++op_count_;
}

std::vector<uint32_t> Encoder::Finish() const {
  std::vector<uint32_t> out;
  out.reserve(kHeaderWords + body_.size());
  out.push_back(uint32_t{header_.num_rows} << 24 |
                uint32_t{header_.dev_gen} << 16 | uint32_t{header_.minor} << 8 |
                header_.major);
  out.push_back(uint32_t{header_.num_mem_tile_rows} << 8 | header_.num_cols);
  out.push_back(op_count_);
  out.push_back(static_cast<uint32_t>((kHeaderWords + body_.size()) * 4));
  out.insert(out.end(), body_.begin(), body_.end());
  return out;
}

std::array<uint32_t, kShimBdWords> EncodeShimBd(const ShimBd& bd) {
  std::array<uint32_t, kShimBdWords> w{};
  w[0] = bd.bytes / 4;  // buffer length, 32-bit words
  w[1] = bd.offset;     // base address low; the patch adds the arg address
  if (bd.window_words > 0) {
    const uint32_t windows = bd.bytes / 4 / bd.window_words;
    w[3] = bd.window_words << 20;  // D0: wrap, step 1 (encoded 0)
    w[4] = windows << 20 | ((bd.stride_words - 1) & 0xFFFFF);  // D1
  }
  w[7] = 1u << 25;  // valid BD, no next BD, no locks
  return w;
}

ShimBdAccess ShimBdPattern(absl::Span<const uint32_t> bd) {
  ShimBdAccess a;
  a.window_words = (bd[3] >> 20) & 0x3FF;
  if (a.window_words == 0) return a;
  a.windows = (bd[4] >> 20) & 0x3FF;
  a.stride_words = (bd[4] & 0xFFFFF) + 1;
  return a;
}

uint32_t ShimBdLengthBytes(absl::Span<const uint32_t> bd) { return bd[0] * 4; }

uint64_t ShimBdBaseAddress(absl::Span<const uint32_t> bd) {
  return (uint64_t{bd[2] & 0xFFFF} << 32) | (bd[1] & ~3u);
}

absl::Status DmaMemcpyNd(Encoder& encoder, const MemcpyNd& copy) {
  if (copy.bd_id >= kShimBdCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("BD id ", copy.bd_id, " out of range; the shim has ",
                     kShimBdCount, " BDs"));
  }
  if (copy.bytes == 0 || copy.bytes % 4 != 0 || copy.arg_offset % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "transfer of ", copy.bytes, " bytes at offset ", copy.arg_offset,
        ": shim DMA moves whole 32-bit words from 4-byte aligned offsets"));
  }
  if (copy.window_words > 0 &&
      (copy.window_words > kShimBdMaxWrap || copy.stride_words == 0 ||
       copy.bytes % (4 * copy.window_words) != 0 ||
       copy.bytes / 4 / copy.window_words > kShimBdMaxWrap)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strided transfer of ", copy.bytes, " bytes in windows of ",
        copy.window_words, " words at a stride of ", copy.stride_words,
        ": a shim BD takes whole windows, at most ", kShimBdMaxWrap,
        " words each and at most ", kShimBdMaxWrap, " of them"));
  }
  const auto bd = EncodeShimBd(
      {copy.bytes, copy.arg_offset, copy.window_words, copy.stride_words});
  const uint32_t bd_address = ShimBdAddress(copy.col, copy.bd_id);
  encoder.BlockWrite(bd_address, bd);
  encoder.AddressPatch(bd_address + 4, copy.arg_idx, copy.arg_offset);
  const bool token = copy.issue_token || copy.dir == Direction::kS2MM;
  encoder.Write32(ShimQueueAddress(copy.col, copy.dir, copy.channel),
                  copy.bd_id | (token ? kQueueIssueToken : 0u));
  return absl::OkStatus();
}

void DmaWait(Encoder& encoder, uint32_t col, Direction dir, uint32_t channel) {
  encoder.Sync(col, 0, dir, channel);
}

absl::Status ValidateInstructions(absl::Span<const uint32_t> words,
                                  const Expectations& expect) {
  absl::StatusOr<Program> program = Parse(words);
  if (!program.ok()) return program.status();
  const Header& h = program->header;
  if (h.dev_gen != expect.dev_gen) {
    return Refuse(0, absl::StrCat("built for device generation ", h.dev_gen,
                                  " (3 = NPU1 Phoenix/Hawk Point, 4 = NPU2 "
                                  "Strix) but this device is generation ",
                                  expect.dev_gen));
  }
  if (h.num_cols != expect.num_cols) {
    return Refuse(
        1, absl::StrCat("built for ", h.num_cols,
                        " columns but the design uses ", expect.num_cols));
  }

  struct BdState {
    std::array<uint32_t, kShimBdWords> words{};
    std::optional<uint32_t> patched_arg;
  };
  struct Push {
    size_t word;
    Direction dir;
    uint32_t col, channel, bytes;
    std::optional<uint32_t> arg;
    bool token;
    bool waited = false;
  };
  std::map<std::pair<uint32_t, uint32_t>, BdState> bds;  // (col, bd)
  std::vector<Push> pushes;

  auto shim_bd = [](uint32_t address) -> std::optional<uint32_t> {
    const uint32_t off = OffsetOf(address);
    if (RowOf(address) != 0 || off < kShimBdBase ||
        off >= kShimBdBase + kShimBdCount * kShimBdStride) {
      return std::nullopt;
    }
    return off;
  };

  for (const Op& op : program->ops) {
    switch (op.opcode) {
      case kOpBlockWrite:
        if (auto off = shim_bd(op.address())) {
          const uint32_t bd = (*off - kShimBdBase) / kShimBdStride;
          const uint32_t first = (*off - kShimBdBase) % kShimBdStride / 4;
          BdState& s = bds[{ColumnOf(op.address()), bd}];
          for (size_t i = 0; i < op.block().size(); ++i) {
            if (first + i < kShimBdWords) s.words[first + i] = op.block()[i];
          }
          s.patched_arg.reset();  // reprogrammed: needs a fresh patch
        }
        break;
      case kOpAddressPatch: {
        auto off = shim_bd(op.address());
        if (!off || (*off - kShimBdBase) % kShimBdStride != 4) {
          return Refuse(op.word_offset,
                        absl::StrFormat("DDR_PATCH targets 0x%08x, which is "
                                        "not word 1 of a shim BD",
                                        op.address()));
        }
        const uint32_t bd = (*off - kShimBdBase) / kShimBdStride;
        bds[{ColumnOf(op.address()), bd}].patched_arg = op.arg_idx();
        break;
      }
      case kOpWrite: {
        const uint32_t off = OffsetOf(op.address());
        if (RowOf(op.address()) != 0 || off < 0x1D204 || off > 0x1D21C ||
            (off - 0x1D204) % 8 != 0) {
          break;  // not a queue push (e.g. an RTP or lock write)
        }
        const Direction dir =
            off >= 0x1D214 ? Direction::kMM2S : Direction::kS2MM;
        const uint32_t channel = ((off - 0x1D204) % 0x10) / 8;
        const uint32_t bd = op.value() & 0xF;
        const uint32_t col = ColumnOf(op.address());
        auto it = bds.find({col, bd});
        if (it == bds.end()) {
          return Refuse(
              op.word_offset,
              absl::StrCat("push on ", DirName(dir), " channel ", channel,
                           " starts BD ", bd, " which was never written"));
        }
        if (!it->second.patched_arg) {
          return Refuse(op.word_offset,
                        absl::StrCat("push on ", DirName(dir), " channel ",
                                     channel, " starts BD ", bd,
                                     " with no address patch: the DMA would "
                                     "use a raw address instead of a buffer "
                                     "argument"));
        }
        pushes.push_back({op.word_offset, dir, col, channel,
                          ShimBdLengthBytes(it->second.words),
                          it->second.patched_arg,
                          (op.value() & kQueueIssueToken) != 0});
        break;
      }
      case kOpSync: {
        bool matched = false;
        for (Push& p : pushes) {
          if (p.token && !p.waited && p.dir == op.sync_direction() &&
              p.col == op.sync_column() && p.channel == op.sync_channel()) {
            p.waited = matched = true;
          }
        }
        if (!matched) {
          return Refuse(
              op.word_offset,
              absl::StrCat("sync waits on ", DirName(op.sync_direction()),
                           " channel ", op.sync_channel(),
                           " where no transfer issued a token: the "
                           "run would hang"));
        }
        break;
      }
      default:
        break;
    }
  }

  auto check = [&](const std::vector<uint32_t>& args,
                   const std::vector<uint32_t>& sizes, Direction dir,
                   bool must_wait) -> absl::Status {
    for (size_t i = 0; i < args.size(); ++i) {
      const Push* found = nullptr;
      for (const Push& p : pushes) {
        if (p.arg == args[i] && p.dir == dir) found = &p;
      }
      if (found == nullptr) {
        return Refuse(
            kHeaderWords,
            absl::StrCat("no ", DirName(dir),
                         " transfer is address-patched to data "
                         "argument ",
                         args[i], " (the buffer would never be ",
                         dir == Direction::kMM2S ? "read" : "written", ")"));
      }
      if (i < sizes.size() && found->bytes != sizes[i]) {
        return Refuse(
            found->word,
            absl::StrCat("transfer of argument ", args[i], " moves ",
                         found->bytes, " bytes, expected ", sizes[i]));
      }
      if (must_wait && !found->waited) {
        return Refuse(found->word,
                      absl::StrCat("output argument ", args[i],
                                   " is never waited on (no TCT sync / "
                                   "dma_wait on S2MM channel ",
                                   found->channel,
                                   "): the run could complete before the data "
                                   "lands"));
      }
    }
    return absl::OkStatus();
  };
  if (absl::Status s =
          check(expect.input_args, expect.input_bytes, Direction::kMM2S, false);
      !s.ok()) {
    return s;
  }
  return check(expect.output_args, expect.output_bytes, Direction::kS2MM, true);
}

}  // namespace npuk::txn
