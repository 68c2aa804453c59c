#include "kernels/tools/txn/txn.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk::txn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A well-formed one-input one-output stream: in (arg 0) on MM2S 0 BD 1,
// out (arg 1) on S2MM 0 BD 0, wait on the output.
std::vector<uint32_t> GoodStream(bool wait = true) {
  Encoder e;
  EXPECT_TRUE(DmaMemcpyNd(e, {0, Direction::kS2MM, 0, 0, 1, 0, 80, true}).ok());
  EXPECT_TRUE(DmaMemcpyNd(e, {0, Direction::kMM2S, 0, 1, 0, 0, 800}).ok());
  if (wait) DmaWait(e, 0, Direction::kS2MM, 0);
  return e.Finish();
}

Expectations GoodExpect() {
  Expectations x;
  x.input_args = {0};
  x.output_args = {1};
  x.input_bytes = {800};
  x.output_bytes = {80};
  return x;
}

TEST(TxnHeader, OneColumnNpu1MatchesPublishedLeadingBytes) {
  // reference/mlir_aie.md §3.1: a 1-column npu1 file starts with
  // 00 01 03 06 01 01 00 00.
  const std::vector<uint32_t> words = Encoder().Finish();
  uint8_t bytes[8];
  std::memcpy(bytes, words.data(), 8);
  EXPECT_THAT(bytes,
              ElementsAre(0x00, 0x01, 0x03, 0x06, 0x01, 0x01, 0x00, 0x00));
  EXPECT_EQ(words[2], 0u);   // op count
  EXPECT_EQ(words[3], 16u);  // total bytes
}

TEST(TxnEncoder, OpSizesAndPatchFieldPositions) {
  Encoder e;
  e.Write32(0x1D214, 1);
  e.BlockWrite(0x1D000, std::vector<uint32_t>{1, 2, 3});
  e.MaskWrite32(0x10, 1, 0xF);
  e.Sync(0, 0, Direction::kS2MM, 0);
  e.AddressPatch(0x1D004, 7, 64);
  const std::vector<uint32_t> words = e.Finish();
  absl::StatusOr<Program> p = Parse(words);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->ops.size(), 5u);
  EXPECT_EQ(p->header.op_count, 5u);
  EXPECT_EQ(p->ops[0].words.size(), 6u);
  EXPECT_EQ(p->ops[1].words.size(), 7u);
  EXPECT_THAT(p->ops[1].block(), ElementsAre(1, 2, 3));
  EXPECT_EQ(p->ops[2].words.size(), 7u);
  EXPECT_EQ(p->ops[3].words.size(), 4u);
  EXPECT_EQ(p->ops[4].words.size(), 12u);
  EXPECT_EQ(p->ops[4].words[8], 7u);    // arg_idx at word 8
  EXPECT_EQ(p->ops[4].words[10], 64u);  // arg_plus at word 10
  EXPECT_EQ(p->ops[4].address(), 0x1D004u);
  EXPECT_EQ(p->ops[2].mask(), 0xFu);
}

TEST(TxnEncoder, MemcpyLowersToBlockwritePatchPush) {
  Encoder e;
  ASSERT_TRUE(
      DmaMemcpyNd(e, {0, Direction::kMM2S, 1, 3, 2, 16, 64, true}).ok());
  const std::vector<uint32_t> words = e.Finish();
  absl::StatusOr<Program> p = Parse(words);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->ops.size(), 3u);
  EXPECT_EQ(p->ops[0].opcode, kOpBlockWrite);
  EXPECT_EQ(p->ops[0].address(), ShimBdAddress(0, 3));
  EXPECT_EQ(p->ops[0].block().size(), kShimBdWords);
  EXPECT_EQ(ShimBdLengthBytes(p->ops[0].block()), 64u);
  EXPECT_EQ(p->ops[1].opcode, kOpAddressPatch);
  EXPECT_EQ(p->ops[1].address(), ShimBdAddress(0, 3) + 4);
  EXPECT_EQ(p->ops[1].arg_idx(), 2u);
  EXPECT_EQ(p->ops[1].arg_plus(), 16u);
  EXPECT_EQ(p->ops[2].opcode, kOpWrite);
  EXPECT_EQ(p->ops[2].address(), 0x1D21Cu);  // MM2S_1 task queue
  EXPECT_EQ(p->ops[2].value(), 3u | kQueueIssueToken);
}

TEST(TxnEncoder, S2mmAlwaysIssuesAToken) {
  Encoder e;
  ASSERT_TRUE(
      DmaMemcpyNd(e, {0, Direction::kS2MM, 0, 0, 1, 0, 80, false}).ok());
  const std::vector<uint32_t> words = e.Finish();
  absl::StatusOr<Program> p = Parse(words);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->ops[2].value(), kQueueIssueToken);
  EXPECT_EQ(p->ops[2].address(), 0x1D204u);
}

TEST(TxnEncoder, RefusesUnalignedOrBadBd) {
  Encoder e;
  EXPECT_FALSE(DmaMemcpyNd(e, {0, Direction::kMM2S, 0, 16, 0, 0, 64}).ok());
  EXPECT_FALSE(DmaMemcpyNd(e, {0, Direction::kMM2S, 0, 1, 0, 0, 62}).ok());
  EXPECT_FALSE(DmaMemcpyNd(e, {0, Direction::kMM2S, 0, 1, 0, 2, 64}).ok());
}

TEST(TxnValidate, AcceptsGoodStream) {
  EXPECT_TRUE(ValidateInstructions(GoodStream(), GoodExpect()).ok());
}

void ExpectRefused(const std::vector<uint32_t>& words, const Expectations& x,
                   const std::string& what) {
  absl::Status s = ValidateInstructions(words, x);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(what));
  EXPECT_THAT(std::string(s.message()), HasSubstr("word "));
}

TEST(TxnValidate, RefusesShortHeader) {
  ExpectRefused({0x06030100, 0x101}, GoodExpect(), "shorter than the 4-word");
}

TEST(TxnValidate, RefusesOldFormatVersion) {
  std::vector<uint32_t> w = GoodStream();
  w[0] = (w[0] & ~0xFFFFu) | 0x0001;  // major 1, minor 0
  ExpectRefused(w, GoodExpect(), "header version 1.0");
}

TEST(TxnValidate, RefusesWrongDeviceGeneration) {
  std::vector<uint32_t> w = GoodStream();
  w[0] = (w[0] & ~0xFF0000u) | (uint32_t{kDevGenNpu2} << 16);
  ExpectRefused(w, GoodExpect(), "device generation 4");
}

TEST(TxnValidate, RefusesWrongColumnCount) {
  std::vector<uint32_t> w = GoodStream();
  w[1] = (w[1] & ~0xFFu) | 4;
  ExpectRefused(w, GoodExpect(), "built for 4 columns");
}

TEST(TxnValidate, RefusesTruncatedBinary) {
  std::vector<uint32_t> w = GoodStream();
  w.pop_back();
  ExpectRefused(w, GoodExpect(), "truncated or padded");
  w[3] = static_cast<uint32_t>(w.size() * 4);  // consistent header, cut op
  ExpectRefused(w, GoodExpect(), "truncated");
}

TEST(TxnValidate, RefusesOpCountMismatch) {
  std::vector<uint32_t> w = GoodStream();
  w[2] += 1;
  ExpectRefused(w, GoodExpect(), "header says 8 ops");
}

TEST(TxnValidate, RefusesUnknownOpcode) {
  std::vector<uint32_t> w = GoodStream();
  w[4] = 0x42;
  ExpectRefused(w, GoodExpect(), "unknown opcode 0x42");
}

TEST(TxnValidate, RefusesMissingAddressPatchForDataArgument) {
  Expectations x = GoodExpect();
  x.input_args = {0, 2};
  x.input_bytes = {800, 8};
  ExpectRefused(GoodStream(), x, "data argument 2");
}

TEST(TxnValidate, RefusesPushOfUnpatchedBd) {
  Encoder e;
  e.BlockWrite(ShimBdAddress(0, 1), EncodeShimBd({800, 0}));
  e.Write32(ShimQueueAddress(0, Direction::kMM2S, 0), 1);
  ExpectRefused(e.Finish(), Expectations{}, "no address patch");
}

TEST(TxnValidate, RefusesMissingOutputSync) {
  ExpectRefused(GoodStream(/*wait=*/false), GoodExpect(), "never waited on");
}

TEST(TxnValidate, RefusesSyncWithoutToken) {
  Encoder e;
  ASSERT_TRUE(DmaMemcpyNd(e, {0, Direction::kMM2S, 0, 1, 0, 0, 800}).ok());
  DmaWait(e, 0, Direction::kMM2S, 0);
  ExpectRefused(e.Finish(), Expectations{}, "would hang");
}

TEST(TxnValidate, RefusesWrongTransferSize) {
  Expectations x = GoodExpect();
  x.output_bytes = {160};
  ExpectRefused(GoodStream(), x, "moves 80 bytes, expected 160");
}

TEST(TxnValidate, RefusesPatchOutsideBd) {
  Encoder e;
  e.AddressPatch(0x1D000, 0, 0);  // word 0 of BD 0, not the address word
  ExpectRefused(e.Finish(), Expectations{}, "not word 1 of a shim BD");
}

TEST(TxnWords, RefusesPartialWord) {
  const std::vector<uint8_t> bytes(7);
  EXPECT_FALSE(WordsFromBytes(bytes).ok());
  absl::StatusOr<std::vector<uint32_t>> w =
      WordsFromBytes(std::vector<uint8_t>{0x00, 0x01, 0x03, 0x06});
  ASSERT_TRUE(w.ok());
  EXPECT_THAT(*w, ElementsAre(0x06030100u));
}

// A strided BD: D0 wrap = the window, D1 wrap = the window count with step
// stride - 1, in words 3 and 4; refused beyond the 10-bit wraps.
TEST(Txn, StridedShimBdEncodesWindows) {
  const auto bd = EncodeShimBd({.bytes = 16 * 800,
                                .offset = 64,
                                .window_words = 200,
                                .stride_words = 80});
  EXPECT_EQ(bd[0], 16u * 200);
  EXPECT_EQ(bd[3], 200u << 20);
  EXPECT_EQ(bd[4], (16u << 20) | 79u);
  const ShimBdAccess a = ShimBdPattern(bd);
  EXPECT_EQ(a.window_words, 200u);
  EXPECT_EQ(a.stride_words, 80u);
  EXPECT_EQ(a.windows, 16u);
  EXPECT_EQ(ShimBdPattern(EncodeShimBd({800, 0})).window_words, 0u);
  Encoder e;
  MemcpyNd copy;
  copy.bytes = 2000 * 800;
  copy.window_words = 200;
  copy.stride_words = 80;
  EXPECT_FALSE(DmaMemcpyNd(e, copy).ok());  // 2000 windows > 1023
  copy.bytes = 10 * 800 + 4;
  EXPECT_FALSE(DmaMemcpyNd(e, copy).ok());  // not whole windows
  copy.bytes = 10 * 800;
  EXPECT_TRUE(DmaMemcpyNd(e, copy).ok());
}

}  // namespace
}  // namespace npuk::txn
