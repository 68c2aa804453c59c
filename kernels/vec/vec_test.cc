// The vocabulary's host face (exact lane semantics, counting), the cycle
// model's calibration against mlir-aie's published figures, and the
// properties npu-sim relies on (deterministic, data-independent counts).
#include "kernels/vec/vec.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/mel/mel_kernel.h"
#include "kernels/mel/mel_kernel_vec.h"
#include "kernels/vec/cycle_model.h"

namespace npuk::vec {
namespace {

TEST(VecTest, SrsRoundsHalfUpOrFloorsAndSaturates) {
  Acc<64, 4> a{{5, -5, 6, int64_t{1} << 40}};
  const Vec<int32_t, 4> up = Srs<int32_t>(a, 1, Round::kPosInf);
  EXPECT_EQ(up.v[0], 3);   // 2.5 -> 3
  EXPECT_EQ(up.v[1], -2);  // -2.5 -> -2 (ties toward +inf)
  EXPECT_EQ(up.v[2], 3);
  EXPECT_EQ(up.v[3], INT32_MAX);  // saturated
  const Vec<int32_t, 4> down = Srs<int32_t>(a, 1, Round::kFloor);
  EXPECT_EQ(down.v[0], 2);
  EXPECT_EQ(down.v[1], -3);
}

TEST(VecTest, UpsThenSrsIsExactAndCounted) {
  Profile p;
  CountScope scope(&p);
  const Vec<int16_t, 16> x = Broadcast<16>(int16_t{-1234});
  const Acc<64, 16> a = Mac(Ups<64>(x, 16), x, int16_t{7});
  const Vec<int32_t, 16> r = Srs<int32_t>(a, 0, Round::kFloor);
  EXPECT_EQ(r.v[3], -1234 * 65536 + -1234 * 7);
  EXPECT_EQ(p.region[0].vmac, 1u);
  EXPECT_EQ(p.region[0].vmove, 2u);
  EXPECT_EQ(p.region[0].valu, 1u);
}

TEST(VecTest, MmulIsABlockProduct) {
  Mmul<4, 8, 8, int8_t, int8_t> m;
  Vec<int8_t, 32> a;
  Vec<int8_t, 64> b;
  for (int i = 0; i < 32; ++i) a.v[i] = static_cast<int8_t>(i - 16);
  for (int i = 0; i < 64; ++i) b.v[i] = static_cast<int8_t>(3 * i - 90);
  m.Mac(a, b);
  m.Mac(a, b);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 8; ++j) {
      int64_t s = 0;
      for (int k = 0; k < 8; ++k) s += a.v[i * 8 + k] * b.v[k * 8 + j];
      EXPECT_EQ(m.c.v[i * 8 + j], 2 * s);
    }
  }
}

TEST(VecTest, TransposeIsABlockTransposeAndOneShuffle) {
  Vec<int8_t, 64> a;
  for (int i = 0; i < 64; ++i) a.v[i] = static_cast<int8_t>(i * 3 - 90);
  Profile p;
  Vec<int8_t, 64> t;
  {
    CountScope scope(&p);
    t = Transpose<8, 8>(a);
  }
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 8; ++c) EXPECT_EQ(t.v[c * 8 + r], a.v[r * 8 + c]);
  }
  EXPECT_EQ(p.region[0].valu, 1u);
  const Vec<int8_t, 64> back = Transpose<8, 8>(t);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(back.v[i], a.v[i]);
}

TEST(VecTest, WideScalarProductsAreExact) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t a = static_cast<uint32_t>(rng());
    const uint32_t b = static_cast<uint32_t>(rng());
    ASSERT_EQ(MulWideU32(a, b), uint64_t{a} * b);
    const int32_t c = static_cast<int32_t>(rng() >> 33);
    const int32_t d = -static_cast<int32_t>(rng() >> 34);
    ASSERT_EQ(MulWideS32(c, d), int64_t{c} * d);
  }
}

// The model's two calibrated parameters are what the published figures
// give for the reference kernels counted through the vocabulary.
TEST(CycleModelTest, CalibrationReproducesPublishedFigures) {
  const Calibration cal = Calibrate();
  std::printf("%s: published %.0f, model %.0f, residual %+.2f%%\n",
              cal.vector_scale.name.c_str(), cal.vector_scale.published_cycles,
              cal.vector_scale.model_cycles, 100 * cal.vector_scale.residual);
  std::printf("%s: published %.0f, model %.0f, residual %+.2f%%\n",
              cal.scalar_scale.name.c_str(), cal.scalar_scale.published_cycles,
              cal.scalar_scale.model_cycles, 100 * cal.scalar_scale.residual);
  EXPECT_DOUBLE_EQ(cal.derived_loop_overhead, kAie2.loop_overhead_cycles);
  EXPECT_NEAR(cal.derived_scalar_cpi, kAie2.scalar_cpi, 1e-12);
  EXPECT_NEAR(cal.vector_scale.residual, 0.0, 1e-9);
  EXPECT_NEAR(cal.scalar_scale.residual, 0.0, 1e-9);
}

TEST(CycleModelTest, SlotRules) {
  OpCounts o;
  o.stores = 32;
  o.store_bits = 32 * 512;  // 512-bit stores take two cycles each
  o.loads = 32;
  o.load_bits = 32 * 512;
  o.vmac = 32;
  EXPECT_EQ(BoundingSlot(o), "store");
  EXPECT_DOUBLE_EQ(RegionCycles(o), 64);
  o.loops = 2;
  EXPECT_DOUBLE_EQ(RegionCycles(o), 64 + 2 * kAie2.loop_overhead_cycles);
  OpCounts s;
  s.scalar = 100;
  s.muldi3 = 3;
  EXPECT_EQ(BoundingSlot(s), "scalar code");
  EXPECT_DOUBLE_EQ(RegionCycles(s),
                   100 * kAie2.scalar_cpi + 3 * kAie2.muldi3_cycles);
}

// npu-sim prices items from one counted group: the counts must not depend
// on the samples (beyond the log stage's zero-energy shortcut, absent
// unless a band is exactly silent).
TEST(CycleModelTest, MelVectorCountsAreDataIndependent) {
  std::mt19937 rng(9);
  std::vector<int16_t> a(16 * 400), b(16 * 400);
  for (int16_t& s : a) s = static_cast<int16_t>(rng());
  for (int16_t& s : b)
    s = static_cast<int16_t>(static_cast<int>(rng() % 200) - 100);
  std::vector<int8_t> out(16 * 80);
  Profile pa, pb;
  cpu::MelFramesVec(a.data(), out.data(), 16, &pa);
  cpu::MelFramesVec(b.data(), out.data(), 16, &pb);
  EXPECT_DOUBLE_EQ(ProfileCycles(pa), ProfileCycles(pb));
  EXPECT_EQ(g_acc32_overflows, 0u);
}

TEST(CycleModelTest, VectorMelIsPricedBelowScalarMel) {
  const KernelCost vec = CostOf("mel", Variant::kVector);
  const KernelCost scalar = CostOf("mel", Variant::kScalar);
  ASSERT_TRUE(vec.known);
  ASSERT_TRUE(scalar.known);
  EXPECT_EQ(vec.items_per_call, kMelVecLanes);
  const double vec_per_frame = vec.cycles_per_call / vec.items_per_call;
  std::printf("mel cycles/frame: vector %.0f, scalar %.0f (%.0fx)\n",
              vec_per_frame, scalar.cycles_per_call,
              scalar.cycles_per_call / vec_per_frame);
  EXPECT_LT(vec_per_frame * 10, scalar.cycles_per_call);
  // Items split over cores in whole calls.
  EXPECT_DOUBLE_EQ(CoreCycles(vec, 17, 4), vec.cycles_per_call);
  EXPECT_DOUBLE_EQ(CoreCycles(vec, 65, 4), 2 * vec.cycles_per_call);
  EXPECT_DOUBLE_EQ(CoreCycles(scalar, 17, 4), 5 * scalar.cycles_per_call);
  EXPECT_FALSE(CostOf("no-such-kernel", Variant::kVector).known);
}

// attention_stream's price: a unit of one key tile costs cycles_per_call,
// each further tile cycles_per_step. On the vector kernel the one-tile unit
// is ModelSeqAttention's (the same host face counted) and a further step
// mixes into the state; on the scalar unit a step is above the tile
// kernel's loops (the fold's 64-bit products come on top). StepCycles
// prices a run: every core of a round runs the round's steps.
TEST(CycleModelTest, AttentionStreamIsAUnitThenItsSteps) {
  const KernelCost vec = CostOf("attention_stream", Variant::kVector);
  const KernelCost scalar = CostOf("attention_stream", Variant::kScalar);
  ASSERT_TRUE(vec.known);
  ASSERT_TRUE(scalar.known);
  const double unit = ModelSeqAttention(1, 64, 64, false, 1, 8e9).core_cycles;
  const double two = ModelSeqAttention(1, 64, 128, false, 1, 8e9).core_cycles;
  const double tile = CostOf("attention", Variant::kScalar).cycles_per_call;
  std::printf(
      "attention_stream cycles: vector %.0f per one-tile unit + %.0f per "
      "further step, scalar %.0f + %.0f (tile kernel %.0f)\n",
      vec.cycles_per_call, vec.cycles_per_step, scalar.cycles_per_call,
      scalar.cycles_per_step, tile);
  EXPECT_DOUBLE_EQ(vec.cycles_per_call, unit);
  EXPECT_DOUBLE_EQ(vec.cycles_per_call + vec.cycles_per_step, two);
  EXPECT_GT(scalar.cycles_per_step, tile);
  EXPECT_LT(scalar.cycles_per_call, 1.1 * scalar.cycles_per_step);
  EXPECT_DOUBLE_EQ(StepCycles(vec, 3, 24),
                   3 * vec.cycles_per_call + 21 * vec.cycles_per_step);
  EXPECT_DOUBLE_EQ(StepCycles(vec, 2, 0), 0);
}

}  // namespace
// The sequence attention model: every key-tile step is counted (the pairs
// are SeqTilePairs per head), the busiest of 4 cores carries at least a
// quarter of the work and at most a quarter plus one unit, a causal layer
// costs less than a full one, and a one-row decoder step is far cheaper
// per pair than a full tile (its other 63 rows are skipped).
TEST(CycleModelTest, SeqAttentionCountsEveryStepAndSplitsUnits) {
  const SeqAttentionModel full = ModelSeqAttention(8, 448, 448, false, 4, 8e9);
  const SeqAttentionModel causal = ModelSeqAttention(8, 448, 448, true, 4, 8e9);
  const SeqAttentionModel step = ModelSeqAttention(8, 1, 448, false, 4, 8e9);
  EXPECT_EQ(full.tile_pairs, 8 * SeqTilePairs(448, 448, false));
  EXPECT_EQ(causal.tile_pairs, 8 * SeqTilePairs(448, 448, true));
  EXPECT_LT(causal.tile_pairs, full.tile_pairs);
  EXPECT_LT(causal.core_cycles, full.core_cycles);
  const double total = full.cycles_per_pair * full.tile_pairs;
  const double per_unit = total / (8 * SeqTiles(448));
  EXPECT_GE(full.core_cycles, total / 4 - 1);
  EXPECT_LE(full.core_cycles, total / 4 + per_unit + 1);
  EXPECT_LT(step.cycles_per_pair * 4, full.cycles_per_pair);
  EXPECT_DOUBLE_EQ(full.seconds, std::max(full.compute_s, full.dma_s));
  EXPECT_GT(full.dma_bytes, 0u);
}

}  // namespace npuk::vec
