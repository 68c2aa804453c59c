#include "kernels/tools/txn/designs.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"

namespace npuk::txn {
namespace {

using ::testing::HasSubstr;

TEST(Designs, EveryRegisteredKernelHasADesign) {
  ASSERT_FALSE(AllKernels().empty());
  for (const KernelSpec* spec : AllKernels()) {
    absl::StatusOr<const Design*> d = DesignFor(spec->name);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ((*d)->kernel, spec->name);
    // One stream per device argument, sized as the declaration says.
    std::vector<uint32_t> want;
    for (size_t bytes : spec->all_arg_bytes()) {
      want.push_back(static_cast<uint32_t>(bytes));
    }
    EXPECT_EQ(ArgBytesPerItem(**d), want) << spec->name;
  }
}

TEST(Designs, EverySequenceValidatesForItsN) {
  for (const KernelSpec* spec : AllKernels()) {
    const Design d = DesignFor(*spec);
    for (uint32_t n : StandardBatchSizes()) {
      absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(d, n);
      ASSERT_TRUE(words.ok()) << words.status();
      EXPECT_TRUE(ValidateInstructions(*words, ExpectationsFor(d, n)).ok())
          << d.kernel << " N=" << n;
    }
  }
}

TEST(Designs, SequenceForOneNFailsAnotherNsExpectations) {
  for (const KernelSpec* spec : AllKernels()) {
    const Design d = DesignFor(*spec);
    absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(d, 4);
    ASSERT_TRUE(words.ok());
    absl::Status s = ValidateInstructions(*words, ExpectationsFor(d, 16));
    // Inputs are checked first: argument 0 moves 4 items, 16 are expected
    // (a windowed argument moves its whole window per item).
    uint32_t arg0 = 0;
    for (const Stream& st : d.streams) {
      if (st.arg_idx == 0) arg0 = st.window_bytes();
    }
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(absl::StrCat("argument 0 moves ", 4 * arg0,
                                       " bytes, expected ", 16 * arg0)))
        << d.kernel;
  }
}

// A windowed input's BD reads strided windows: D0 = the window, D1 = the
// item count at the item stride, and the length is every window's bytes.
TEST(Designs, MelPcmInputReadsStridedWindows) {
  absl::StatusOr<const Design*> d = DesignFor("mel_pcm");
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(**d, 16);
  ASSERT_TRUE(words.ok()) << words.status();
  absl::StatusOr<Program> p = Parse(*words);
  ASSERT_TRUE(p.ok()) << p.status();
  int strided = 0;
  for (const Op& op : p->ops) {
    if (op.opcode != kOpBlockWrite) continue;
    const ShimBdAccess a = ShimBdPattern(op.block());
    if (a.window_words == 0) {
      // The output: 80 int16 values per item.
      EXPECT_EQ(ShimBdLengthBytes(op.block()), 16u * 160);
      continue;
    }
    ++strided;
    EXPECT_EQ(a.window_words, 200u);
    EXPECT_EQ(a.stride_words, 80u);
    EXPECT_EQ(a.windows, 16u);
    EXPECT_EQ(ShimBdLengthBytes(op.block()), 16u * 800);
  }
  EXPECT_EQ(strided, 1);
  EXPECT_TRUE(ValidateInstructions(*words, ExpectationsFor(**d, 16)).ok());
}

// The concrete words of the first kernel, checked by hand: a regression in
// DesignFor (argument or size mix-up) shows here even if every sequence is
// self-consistent.
TEST(Designs, MelSequenceShape) {
  absl::StatusOr<const Design*> mel = DesignFor("mel");
  ASSERT_TRUE(mel.ok()) << mel.status();
  absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(**mel, 16);
  ASSERT_TRUE(words.ok());
  absl::StatusOr<Program> p = Parse(*words);
  ASSERT_TRUE(p.ok());
  // out: blockwrite, patch, push; in: blockwrite, patch, push; one sync.
  ASSERT_EQ(p->ops.size(), 7u);
  EXPECT_EQ(p->ops[6].opcode, kOpSync);
  EXPECT_EQ(ShimBdLengthBytes(p->ops[0].block()), 16u * 80);
  EXPECT_EQ(ShimBdLengthBytes(p->ops[3].block()), 16u * 800);
  EXPECT_EQ(p->ops[1].arg_idx(), 1u);
  EXPECT_EQ(p->ops[4].arg_idx(), 0u);
}

TEST(Designs, AttentionParamsTravelAsTheirOwnArgument) {
  absl::StatusOr<const Design*> att = DesignFor("attention");
  ASSERT_TRUE(att.ok()) << att.status();
  EXPECT_EQ(ArgBytesPerItem(**att), (std::vector<uint32_t>{12288, 8, 4096}));
  const Expectations e = ExpectationsFor(**att, 4);
  EXPECT_EQ(e.input_args, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(e.input_bytes, (std::vector<uint32_t>{4 * 12288, 4 * 8}));
  EXPECT_EQ(e.output_args, (std::vector<uint32_t>{2}));
}

TEST(Designs, PassthroughMovesTheSameBytesBothWays) {
  absl::StatusOr<const Design*> pt = DesignFor("passthrough");
  ASSERT_TRUE(pt.ok()) << pt.status();
  EXPECT_EQ(ArgBytesPerItem(**pt), (std::vector<uint32_t>{4096, 4096}));
  ASSERT_EQ((*pt)->streams.size(), 2u);
  EXPECT_EQ((*pt)->streams[0].dir, Direction::kS2MM);  // armed first
  EXPECT_EQ((*pt)->streams[0].arg_idx, 1u);
}

// Nothing is looked up by name: any declaration gives its design, with
// each argument's bytes from its planes.
TEST(Designs, BuiltFromAnyDeclaration) {
  KernelSpec spec;
  spec.name = "two_in";
  spec.inputs = {{"a", DType::kInt16, {10}}, {"b", DType::kInt8, {3, 4}}};
  spec.output = {"y", DType::kInt32, {5}};
  spec.device_args = {{1}, {0}};
  spec.design.streams = {{"of_y", 2, false, 0, 0},
                         {"of_b", 0, true, 0, 1},
                         {"of_a", 1, true, 1, 2}};
  spec.design.cores = 1;  // a single core: any N
  const Design d = DesignFor(spec);
  EXPECT_EQ(d.kernel, "two_in");
  EXPECT_EQ(ArgBytesPerItem(d), (std::vector<uint32_t>{12, 20, 20}));
  ASSERT_EQ(d.streams.size(), 3u);
  EXPECT_EQ(d.streams[0].dir, Direction::kS2MM);
  EXPECT_EQ(d.streams[2].channel, 1u);
  EXPECT_EQ(d.streams[2].bd_id, 2u);
  absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(d, 7);
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_TRUE(ValidateInstructions(*words, ExpectationsFor(d, 7)).ok());
}

// The registered designs are whole columns: runs come in rounds of one
// item per core, and a run of another size is refused with the sizes.
TEST(Designs, ColumnDesignRunsWholeRounds) {
  const Design d = DesignFor(*FindKernel("mel"));
  EXPECT_EQ(d.cores, 4u);
  EXPECT_EQ(d.columns, 1u);
  EXPECT_EQ(BatchSizesFor(d), StandardBatchSizes());
  for (const KernelSpec* spec : AllKernels()) {
    EXPECT_EQ(DesignFor(*spec).granule(), 4u) << spec->name;
  }
  absl::Status s = BuildSequence(d, 6).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a multiple of 4"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("4, 8, 12"));
}

// Several columns: each column's shim moves its share of the items from
// its offset in the buffers, and every column's output is waited on.
TEST(Designs, SeveralColumnsSplitTheItems) {
  Design d = DesignFor(*FindKernel("mel"));
  d.columns = 2;
  absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(d, 16);
  ASSERT_TRUE(words.ok()) << words.status();
  absl::StatusOr<Program> p = Parse(*words);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::pair<uint32_t, uint32_t>> patches;  // (column, offset)
  int syncs = 0;
  for (const Op& op : p->ops) {
    if (op.opcode == kOpAddressPatch) {
      patches.push_back(
          {ColumnOf(op.address()), static_cast<uint32_t>(op.arg_plus())});
    }
    syncs += op.opcode == kOpSync;
  }
  // Per stream (output, then input) column 0 at 0 and column 1 at 8 items.
  EXPECT_EQ(patches, (std::vector<std::pair<uint32_t, uint32_t>>{
                         {0, 0}, {1, 8 * 80}, {0, 0}, {1, 8 * 800}}));
  EXPECT_EQ(syncs, 2);
  EXPECT_FALSE(BuildSequence(d, 4).ok());  // 8 items a round
}

TEST(Designs, UnknownKernel) {
  absl::Status s = DesignFor("fft").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("mel"));
  EXPECT_EQ(BuildSequence(DesignFor(*FindKernel("mel")), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Designs, BatchTooLargeForOneBdIsRefused) {
  const Design d = DesignFor(*FindKernel("attention"));
  absl::Status s = BuildSequence(d, 1u << 20).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("more than one BD"));
}

}  // namespace
}  // namespace npuk::txn
