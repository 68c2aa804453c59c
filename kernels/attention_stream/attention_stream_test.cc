// attention_stream: whole sequences cut into units (attention_stream_units.h)
// and run through the kernel's reference (the AIE entry, one call per key
// tile, as a core runs it) and its CPU path give exactly
// seq::AttentionSeqReference's bytes, however the units are grouped into
// runs; records out of contract give the same bytes on both faces; the
// stepped layout and its byte counts are what the registry computes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/attention_stream/attention_stream_kernel.h"
#include "kernels/attention_stream/attention_stream_units.h"
#include "kernels/common/cpu_features.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

const KernelSpec& Stream() {
  const KernelSpec* spec = FindKernel("attention_stream");
  EXPECT_NE(spec, nullptr);
  return *spec;
}

struct Case {
  int32_t n, lq, lk;
  bool causal;
  double score_scale, output_scale;
};

struct Data {
  std::vector<int8_t> q, k, v;
  stream::Problem problem;
};

Data Make(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0.0, 40.0);
  auto fill = [&](size_t count) {
    std::vector<int8_t> x(count);
    for (int8_t& b : x) {
      b = static_cast<int8_t>(std::clamp(std::lround(g(rng)), -128L, 127L));
    }
    return x;
  };
  Data d;
  d.q = fill(static_cast<size_t>(c.n) * c.lq * 64);
  d.k = fill(static_cast<size_t>(c.n) * c.lk * 64);
  d.v = fill(static_cast<size_t>(c.n) * c.lk * 64);
  d.problem = {d.q.data(),
               d.k.data(),
               d.v.data(),
               c.n,
               c.lq,
               c.lk,
               c.causal,
               QuantizeScoreScale(c.score_scale),
               online::QuantizeOutputScale(c.output_scale)};
  return d;
}

std::vector<int8_t> Want(const Data& d) {
  std::vector<int8_t> out(d.q.size());
  const stream::Problem& p = d.problem;
  const SeqAttentionArgs args{p.q,           p.k,           p.v,  out.data(),
                              p.n,           p.lq,          p.lk, p.causal,
                              p.score_scale, p.output_scale};
  seq::AttentionSeqReference(args, 0, stream::UnitCount(p));
  return out;
}

// Units [first, first + count) on the kernel's device arguments through
// `fn`, their rows put into `out`.
void RunUnits(const stream::Problem& p, size_t first, size_t count, BatchFn fn,
              int8_t* out) {
  const KernelSpec& spec = Stream();
  const size_t items = stream::UnitItems(count);
  std::vector<uint8_t> q(items * kStreamMatrixBytes);
  std::vector<uint8_t> records(items * kStreamRecordBytes);
  std::vector<uint8_t> kv(stream::UnitStepBytes(p, first, count));
  stream::WriteUnits(p, first, count, q.data(), records.data(), kv.data());
  // The registry's own gathering into device arguments.
  const std::vector<std::span<const uint8_t>> planes = {q, kv, records};
  ASSERT_EQ(StepSpanOfPlanes(spec, planes, items), kv.size());
  std::vector<uint8_t> arg0(spec.arg_span(0, items));
  std::vector<uint8_t> arg1(kv.size());
  GatherArg(spec, 0, planes, 0, items, arg0.data());
  GatherArg(spec, 1, planes, 0, items, arg1.data());
  const uint8_t* in[] = {arg0.data(), arg1.data()};
  ASSERT_EQ(StepSpanOfArgs(spec, in, items), kv.size());
  std::vector<uint8_t> outputs(items * kStreamMatrixBytes, 0xA5);
  fn(in, outputs.data(), items);
  stream::ReadUnits(p, first, count, outputs.data(), out);
}

TEST(AttentionStream, UnitsGiveTheReferenceBytes) {
  const Case cases[] = {
      {1, 64, 64, false, 0.01, 1.0},   {2, 1, 1, false, 0.05, 1.0},
      {3, 70, 130, false, 0.004, 0.5}, {2, 130, 130, true, 0.004, 0.7},
      {1, 1, 300, false, 0.002, 0.3},  {2, 200, 448, true, 0.003, 0.4},
      {1, 5, 700, true, 0.001, 0.25},  {1, 64, 4096, false, 0.0008, 0.2},
      {1, 3, 4096, true, 0.0008, 0.2}, {5, 17, 33, false, 0.02, 1.3},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "n " << c.n << " lq " << c.lq << " lk "
                                    << c.lk << " causal " << c.causal);
    const Data d = Make(c, seed++);
    const std::vector<int8_t> want = Want(d);
    const size_t units = stream::UnitCount(d.problem);
    for (BatchFn fn : {Stream().reference, Stream().cpu}) {
      std::vector<int8_t> got(want.size(), 99);
      RunUnits(d.problem, 0, units, fn, got.data());
      EXPECT_EQ(got, want);
    }
  }
}

TEST(AttentionStream, AnyGroupingIntoRunsGivesTheSameBytes) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 12; ++trial) {
    const Case c{static_cast<int32_t>(1 + rng() % 3),
                 static_cast<int32_t>(1 + rng() % 300),
                 static_cast<int32_t>(1 + rng() % 400),
                 false,
                 0.003,
                 0.6};
    Case cc = c;
    cc.causal = trial % 2 == 1 && c.lq <= c.lk;
    const Data d = Make(cc, 100 + trial);
    const std::vector<int8_t> want = Want(d);
    const size_t units = stream::UnitCount(d.problem);
    std::vector<int8_t> got(want.size(), 99);
    for (size_t first = 0; first < units;) {
      const size_t count = std::min<size_t>(units - first, 1 + rng() % 9);
      RunUnits(d.problem, first, count,
               trial % 3 == 0 ? Stream().reference : Stream().cpu, got.data());
      first += count;
    }
    EXPECT_EQ(got, want) << "trial " << trial;
  }
}

// Both faces on records out of contract (random words), with a kv plane
// of the steps the records give: the same bytes, nothing read past it.
TEST(AttentionStream, RecordsOutOfContractAreTheSameOnBothFaces) {
  const KernelSpec& spec = Stream();
  std::mt19937 rng(11);
  for (int trial = 0; trial < 20; ++trial) {
    const size_t items = 4 * (1 + rng() % 3);
    std::vector<uint8_t> arg0(items * kStreamQrecBytes);
    for (uint8_t& b : arg0) b = static_cast<uint8_t>(rng());
    for (size_t i = 0; i < items; ++i) {
      int32_t* steps = reinterpret_cast<int32_t*>(
          arg0.data() + i * kStreamQrecBytes + kStreamStepsWord * 4);
      if (rng() % 2 == 0) *steps = static_cast<int32_t>(rng() % 6);
    }
    const uint8_t* probe[] = {arg0.data(), nullptr};
    std::vector<uint8_t> arg1(StepSpanOfArgs(spec, probe, items));
    for (uint8_t& b : arg1) b = static_cast<uint8_t>(rng());
    const uint8_t* in[] = {arg0.data(), arg1.data()};
    std::vector<uint8_t> a(items * kStreamMatrixBytes, 1);
    std::vector<uint8_t> b(items * kStreamMatrixBytes, 2);
    spec.reference(in, a.data(), items);
    spec.cpu(in, b.data(), items);
    EXPECT_EQ(a, b) << "trial " << trial;
  }
}

TEST(AttentionStream, ForcedCpuPathsAreTheReference) {
  const Data d = Make({2, 150, 300, true, 0.003, 0.5}, 5);
  const std::vector<int8_t> want = Want(d);
  const stream::Problem& p = d.problem;
  std::vector<int8_t> q(kStreamMatrixBytes), out(kStreamMatrixBytes);
  for (size_t u = 0; u < stream::UnitCount(p); ++u) {
    std::vector<uint8_t> qb(4 * kStreamMatrixBytes);
    std::vector<uint8_t> rec(4 * kStreamRecordBytes);
    std::vector<uint8_t> kv(stream::UnitStepBytes(p, u, 1));
    stream::WriteUnits(p, u, 1, qb.data(), rec.data(), kv.data());
    AttentionStreamRecord r;
    std::memcpy(&r, rec.data(), sizeof r);
    StreamUnitArgs args{reinterpret_cast<const int8_t*>(qb.data()),
                        reinterpret_cast<const int8_t*>(kv.data()),
                        kStreamLanes * kStreamStepBytes,
                        out.data(),
                        r.rows,
                        r.keys,
                        r.diag,
                        r.tiles,
                        p.score_scale,
                        p.output_scale};
    std::vector<int8_t> ref(kStreamMatrixBytes);
    args.out = ref.data();
    seq::AttentionStreamUnitReference(args);
    if (cpu::HasAvx2()) {
      args.out = out.data();
      cpu::AttentionStreamUnitAvx2(args);
      EXPECT_EQ(out, ref) << "avx2, unit " << u;
    }
    if (cpu::HasAvx512Vnni()) {
      args.out = out.data();
      cpu::AttentionStreamUnitAvx512(args);
      EXPECT_EQ(out, ref) << "avx512, unit " << u;
    }
    const size_t rows = static_cast<size_t>(r.rows) * 64;
    const size_t row0 = (u / 3) * 150 * 64 + (u % 3) * 64 * 64;
    EXPECT_TRUE(
        std::equal(ref.begin(), ref.begin() + rows, want.begin() + row0))
        << "unit " << u;
  }
}

// The layout: per round, steps x 4 lanes of 8 KB, step-major; a lane's
// steps past its own tiles are zero; every record of a round has the
// round's steps.
TEST(AttentionStream, RoundsAreStepMajorWithTheLongestUnitsSteps) {
  const Data d = Make({1, 256, 300, true, 0.003, 1.0}, 9);
  const stream::Problem& p = d.problem;
  ASSERT_EQ(stream::UnitCount(p), 4u);
  // Causal, lk - lq = 44: query tile t sees keys < 64 t + 64 + 44.
  EXPECT_EQ(stream::UnitTiles(p, 0), 2);
  EXPECT_EQ(stream::UnitTiles(p, 3), 5);
  std::vector<uint8_t> q(4 * kStreamMatrixBytes), rec(4 * kStreamRecordBytes);
  std::vector<uint8_t> kv(stream::UnitStepBytes(p, 0, 4));
  ASSERT_EQ(kv.size(), 5u * 4 * kStreamStepBytes);
  stream::WriteUnits(p, 0, 4, q.data(), rec.data(), kv.data());
  for (int lane = 0; lane < 4; ++lane) {
    AttentionStreamRecord r;
    std::memcpy(&r, rec.data() + lane * kStreamRecordBytes, sizeof r);
    EXPECT_EQ(r.steps, 5);
    EXPECT_EQ(r.tiles, stream::UnitTiles(p, lane));
    for (int t = 0; t < 5; ++t) {
      const uint8_t* step = kv.data() + (t * 4 + lane) * kStreamStepBytes;
      // Key row 0 of tile t is k[64 t]: present while t < tiles.
      const bool zero = std::all_of(step, step + kStreamStepBytes,
                                    [](uint8_t b) { return b == 0; });
      EXPECT_EQ(zero, t >= r.tiles) << "lane " << lane << " step " << t;
      if (t < r.tiles) {
        EXPECT_EQ(0, std::memcmp(step, d.k.data() + t * 64 * 64, 64))
            << "lane " << lane << " step " << t;
      }
    }
  }
}

}  // namespace
}  // namespace npuk
