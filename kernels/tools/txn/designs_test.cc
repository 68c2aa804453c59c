#include "kernels/tools/txn/designs.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk::txn {
namespace {

TEST(Designs, EverySequenceValidatesForItsN) {
  for (const Design* d : {&MelDesign(), &AttentionDesign()}) {
    for (uint32_t n : StandardBatchSizes()) {
      absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(*d, n);
      ASSERT_TRUE(words.ok()) << words.status();
      EXPECT_TRUE(ValidateInstructions(*words, ExpectationsFor(*d, n)).ok())
          << d->kernel << " N=" << n;
    }
  }
}

TEST(Designs, SequenceForOneNFailsAnotherNsExpectations) {
  absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(MelDesign(), 4);
  ASSERT_TRUE(words.ok());
  absl::Status s =
      ValidateInstructions(*words, ExpectationsFor(MelDesign(), 16));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("3200 bytes"));
}

TEST(Designs, MelSequenceShape) {
  absl::StatusOr<std::vector<uint32_t>> words = BuildSequence(MelDesign(), 16);
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

TEST(Designs, UnknownKernel) {
  EXPECT_EQ(DesignFor("fft").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(BuildSequence(MelDesign(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace npuk::txn
