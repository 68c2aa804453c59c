// Attention over whole sequences (issue 15): the online softmax composed
// from 64x64 tiles. At Lq = Lk = 64 without mask its bytes are
// attention_64x64's (goldens and random tiles); the CPU path equals the
// reference on mixed shapes; against exact float softmax on the same int8
// inputs it is within one output unit, masks and output scale included.
#include "kernels/attention/attention_seq.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/attention/attention_seq_request.h"
#include "kernels/attention/attention_seq_vec.h"
#include "kernels/common/cpu_features.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

constexpr int kD = 64;

struct Problem {
  int32_t n, lq, lk;
  bool causal;
  double score_scale;
  double output_scale;
  std::vector<int8_t> q, k, v;
};

Problem Random(std::mt19937& rng, int32_t n, int32_t lq, int32_t lk,
               bool causal, double score_scale, double output_scale,
               int amplitude = 127) {
  Problem p{n, lq, lk, causal, score_scale, output_scale, {}, {}, {}};
  std::uniform_int_distribution<int> byte(-amplitude, amplitude);
  auto fill = [&](std::vector<int8_t>& x, size_t size) {
    x.resize(size);
    for (int8_t& b : x) b = static_cast<int8_t>(byte(rng));
  };
  fill(p.q, static_cast<size_t>(n) * lq * kD);
  fill(p.k, static_cast<size_t>(n) * lk * kD);
  fill(p.v, static_cast<size_t>(n) * lk * kD);
  return p;
}

// Case t of a mixed-shape sweep: lengths 1 ... 300 (partial tiles), causal
// on odd t (lq <= lk), 1 to 3 heads, score scales 2^-12 ... 1, output
// scales 2^-4 ... 2.
Problem MixedShape(std::mt19937& rng, int t, int amplitude = 127) {
  std::uniform_int_distribution<int32_t> length(1, 300);
  std::uniform_real_distribution<double> log_scale(-12, 0);
  std::uniform_real_distribution<double> log_out(-4, 1);
  const int32_t lk = length(rng);
  const bool causal = t % 2 == 1;
  const int32_t lq =
      causal ? std::uniform_int_distribution<int32_t>(1, lk)(rng) : length(rng);
  const double ss = std::exp2(log_scale(rng));
  const double os = std::exp2(log_out(rng));
  return Random(rng, 1 + t % 3, lq, lk, causal, ss, os, amplitude);
}

SeqAttentionArgs Args(const Problem& p, std::vector<int8_t>& out) {
  out.assign(static_cast<size_t>(p.n) * p.lq * kD, 0);
  return SeqAttentionArgs{
      .q = p.q.data(),
      .k = p.k.data(),
      .v = p.v.data(),
      .out = out.data(),
      .n = p.n,
      .lq = p.lq,
      .lk = p.lk,
      .causal = p.causal,
      .score_scale = QuantizeScoreScale(p.score_scale),
      .output_scale = online::QuantizeOutputScale(p.output_scale)};
}

size_t Units(const Problem& p) {
  return static_cast<size_t>(p.n) * SeqTiles(p.lq);
}

std::vector<int8_t> Reference(const Problem& p) {
  std::vector<int8_t> out;
  const SeqAttentionArgs a = Args(p, out);
  seq::AttentionSeqReference(a, 0, Units(p));
  return out;
}

std::vector<int8_t> Cpu(const Problem& p) {
  std::vector<int8_t> out;
  const SeqAttentionArgs a = Args(p, out);
  cpu::AttentionSeq(a, 0, Units(p));
  return out;
}

// Every CPU path this machine can run, the AVX ones forced: each is
// checked where the CPU has it, whichever one the dispatch picks.
using SeqPath = void (*)(const SeqAttentionArgs&, size_t, size_t);
struct NamedPath {
  const char* name;
  SeqPath run;
};

std::vector<NamedPath> CpuPaths() {
  std::vector<NamedPath> paths;
  if (cpu::HasAvx2()) paths.push_back({"avx2", cpu::AttentionSeqAvx2});
  if (cpu::HasAvx512Vnni()) {
    paths.push_back({"avx512vnni", cpu::AttentionSeqAvx512});
  }
  paths.push_back({"dispatched", cpu::AttentionSeq});
  return paths;
}

std::vector<int8_t> RunPath(const Problem& p, SeqPath run) {
  std::vector<int8_t> out;
  const SeqAttentionArgs a = Args(p, out);
  run(a, 0, Units(p));
  return out;
}

std::vector<int8_t> Vector(const Problem& p) {
  std::vector<int8_t> out;
  const SeqAttentionArgs a = Args(p, out);
  attention_vec::AttentionSeqVec(a, 0, Units(p));
  return out;
}

// softmax(q k^T s) v / os in double on the int8 inputs, with s the
// quantised score scale (what the kernel means), before output rounding.
std::vector<double> Exact(const Problem& p) {
  const double s = ScoreScaleValue(QuantizeScoreScale(p.score_scale));
  std::vector<double> out(static_cast<size_t>(p.n) * p.lq * kD);
  std::vector<double> w(p.lk);
  for (int32_t h = 0; h < p.n; ++h) {
    const int8_t* q = &p.q[static_cast<size_t>(h) * p.lq * kD];
    const int8_t* k = &p.k[static_cast<size_t>(h) * p.lk * kD];
    const int8_t* v = &p.v[static_cast<size_t>(h) * p.lk * kD];
    for (int32_t i = 0; i < p.lq; ++i) {
      const int32_t keys = p.causal ? i + p.lk - p.lq + 1 : p.lk;
      double m = -1e300;
      for (int32_t j = 0; j < keys; ++j) {
        int32_t dot = 0;
        for (int d = 0; d < kD; ++d) dot += q[i * kD + d] * k[j * kD + d];
        w[j] = dot * s;
        m = std::max(m, w[j]);
      }
      double sum = 0;
      for (int32_t j = 0; j < keys; ++j) sum += (w[j] = std::exp(w[j] - m));
      for (int c = 0; c < kD; ++c) {
        double acc = 0;
        for (int32_t j = 0; j < keys; ++j) acc += w[j] * v[j * kD + c];
        out[(static_cast<size_t>(h) * p.lq + i) * kD + c] =
            acc / sum / p.output_scale;
      }
    }
  }
  return out;
}

// Max |kernel - exact| over outputs that do not saturate.
double MaxError(const std::vector<int8_t>& got,
                const std::vector<double>& ref) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double r = std::clamp(ref[i], -128.0, 127.0);
    worst = std::max(worst, std::abs(got[i] - r));
  }
  return worst;
}

TEST(OnlineSoftmaxTest, OutputScaleOneIsTheTileRounding) {
  const online::OutputScale one = online::QuantizeOutputScale(1.0);
  EXPECT_EQ(one.multiplier, int32_t{1} << 30);
  EXPECT_EQ(one.shift, 1);
  for (int32_t o = -(1 << 23); o <= (1 << 23); o += 37) {
    ASSERT_EQ(online::OutputValue(o, one), softmax::OutputValue(o)) << o;
  }
}

TEST(OnlineSoftmaxTest, OutputScaleRangeAndValue) {
  EXPECT_FALSE(online::OutputScaleInRange(0.0));
  EXPECT_FALSE(online::OutputScaleInRange(-1.0));
  EXPECT_FALSE(online::OutputScaleInRange(std::nan("")));
  EXPECT_FALSE(online::OutputScaleInRange(INFINITY));
  EXPECT_TRUE(online::OutputScaleInRange(0.01));
  for (double os : {1.0 / 65536, 0.013, 0.25, 1.0, 3.7, 65536.0}) {
    const online::OutputScale q = online::QuantizeOutputScale(os);
    const double inv = std::ldexp(q.multiplier, q.shift - 31);
    EXPECT_NEAR(inv * os, 1.0, 1e-9) << os;
  }
}

TEST(OnlineSoftmaxTest, MixKeepsEqualValuesAndSumsWeights) {
  const softmax::ExpParams params = softmax::MakeExpParams(
      QuantizeScoreScale(0.01).multiplier, QuantizeScoreScale(0.01).shift);
  const online::Mix mix = online::MixWeights(1000, 40000, 1200, 50000, params);
  EXPECT_EQ(mix.max, 1200);
  EXPECT_EQ(mix.alpha + mix.beta, int64_t{1} << 30);
  EXPECT_EQ(online::MixValue(-12345, -12345, mix), -12345);
  // exp(-200 * 0.01) of 40000 joins 50000.
  EXPECT_NEAR(mix.weight, 50000 + 40000 * std::exp(-2.0), 2.0);
}

// Lq = Lk = 64 without mask: the bytes of the tile kernel, on the goldens.
TEST(AttentionSeqTest, GoldenTilesAreTheTileKernelBytes) {
  const KernelSpec* spec = FindKernel("attention");
  ASSERT_NE(spec, nullptr);
  const Golden& g = spec->golden;
  const uint8_t* qkv = g.inputs[0].bytes.data();
  const uint8_t* rec = g.inputs[1].bytes.data();
  for (size_t t = 0; t < g.items; ++t) {
    ScoreScale scale;
    std::memcpy(&scale, rec + t * sizeof(ScoreScale), sizeof(ScoreScale));
    const int8_t* tile =
        reinterpret_cast<const int8_t*>(qkv + t * kAttentionInBytes);
    std::vector<int8_t> out(kAttentionOutBytes);
    attention_seq(tile, tile + 4096, tile + 8192, out.data(), 1, 64, 64, 0,
                  scale.multiplier, scale.shift, int32_t{1} << 30, 1);
    EXPECT_EQ(0, std::memcmp(out.data(),
                             g.output.bytes.data() + t * kAttentionOutBytes,
                             kAttentionOutBytes))
        << "golden tile " << t;
  }
}

TEST(AttentionSeqTest, RandomSingleTilesAreTheTileKernelBytes) {
  std::mt19937 rng(15);
  std::uniform_real_distribution<double> log_scale(-16, 2);
  for (int t = 0; t < 200; ++t) {
    Problem p = Random(rng, 1, 64, 64, false, std::exp2(log_scale(rng)), 1.0,
                       t % 3 == 0 ? 127 : 40);
    std::vector<int8_t> qkv(p.q);
    qkv.insert(qkv.end(), p.k.begin(), p.k.end());
    qkv.insert(qkv.end(), p.v.begin(), p.v.end());
    std::vector<int8_t> tile(kAttentionOutBytes);
    const ScoreScale s = QuantizeScoreScale(p.score_scale);
    attention_64x64(qkv.data(), tile.data(), s.multiplier, s.shift);
    ASSERT_EQ(Reference(p), tile) << "tile " << t;
    for (const NamedPath& path : CpuPaths()) {
      ASSERT_EQ(RunPath(p, path.run), tile) << path.name << " tile " << t;
    }
  }
}

TEST(AttentionSeqTest, CpuEqualsReferenceOnMixedShapes) {
  std::mt19937 rng(1500);
  for (int t = 0; t < 60; ++t) {
    const Problem p = MixedShape(rng, t);
    const std::vector<int8_t> want = Reference(p);
    for (const NamedPath& path : CpuPaths()) {
      ASSERT_EQ(RunPath(p, path.run), want)
          << path.name << " lq " << p.lq << " lk " << p.lk << " causal "
          << p.causal;
    }
  }
  // Long and at the bound.
  for (const auto& [lq, lk, causal] :
       {std::tuple{1500, 1500, false}, std::tuple{1, 4096, false},
        std::tuple{448, 448, true}, std::tuple{130, 4096, true}}) {
    const Problem p = Random(rng, 1, lq, lk, causal, 1.0 / 512, 0.2);
    const std::vector<int8_t> want = Reference(p);
    for (const NamedPath& path : CpuPaths()) {
      ASSERT_EQ(RunPath(p, path.run), want)
          << path.name << " lq " << lq << " lk " << lk;
    }
  }
}

// Lengths across the whole range, 1 ... 4096, causal and not, several heads
// in one call (what a batch of mixed requests becomes per request).
TEST(AttentionSeqTest, CpuEqualsReferenceOnRandomLengthsTo4096) {
  std::mt19937 rng(4096);
  std::uniform_int_distribution<int32_t> length(1, 4096);
  std::uniform_real_distribution<double> log_scale(-14, -4);
  for (int t = 0; t < 6; ++t) {
    const int32_t lk = length(rng);
    const bool causal = t % 2 == 0;
    // Keep lq * lk moderate so the test stays within seconds.
    const int32_t most = std::max<int32_t>(1, (1 << 19) / lk);
    int32_t lq = std::uniform_int_distribution<int32_t>(1, most)(rng);
    if (causal) lq = std::min(lq, lk);
    const Problem p =
        Random(rng, 2, lq, lk, causal, std::exp2(log_scale(rng)), 0.25);
    const std::vector<int8_t> want = Reference(p);
    for (const NamedPath& path : CpuPaths()) {
      ASSERT_EQ(RunPath(p, path.run), want)
          << path.name << " lq " << lq << " lk " << lk << " causal " << causal;
    }
  }
}

// The vector kernel's host face (what the AIE core runs) against the
// reference: mixed shapes with partial tiles, causal and not, score and
// output scales across their range; then the long shapes and the bound.
TEST(AttentionSeqTest, VectorFaceEqualsReferenceOnMixedShapes) {
  std::mt19937 rng(1501);
  for (int t = 0; t < 40; ++t) {
    const Problem p = MixedShape(rng, t, t % 4 == 0 ? 8 : 127);
    ASSERT_EQ(Vector(p), Reference(p))
        << "lq " << p.lq << " lk " << p.lk << " causal " << p.causal;
  }
  for (const auto& [lq, lk, causal] :
       {std::tuple{64, 64, false}, std::tuple{1, 1500, false},
        std::tuple{200, 1500, false}, std::tuple{448, 448, true},
        std::tuple{70, 4096, true}}) {
    const Problem p = Random(rng, 1, lq, lk, causal, 1.0 / 512, 0.2);
    ASSERT_EQ(Vector(p), Reference(p)) << "lq " << lq << " lk " << lk;
  }
}

// Output scales at both ends of the range (the output stage's widest and
// narrowest shifts) and the score scale's bounds, on the vector face and
// every CPU path.
TEST(AttentionSeqTest, VectorFaceEqualsReferenceAtTheScaleBounds) {
  std::mt19937 rng(1502);
  for (const double os : {online::kMinOutputScale, 1.0 / 3.0, 1.0, 7.0,
                          online::kMaxOutputScale}) {
    for (const double ss : {std::exp2(-14.0), 1.0 / 64, 1.0}) {
      const Problem p = Random(rng, 2, 90, 150, false, ss, os);
      const std::vector<int8_t> want = Reference(p);
      ASSERT_EQ(Vector(p), want) << "os " << os << " ss " << ss;
      for (const NamedPath& path : CpuPaths()) {
        ASSERT_EQ(RunPath(p, path.run), want)
            << path.name << " os " << os << " ss " << ss;
      }
    }
  }
  // Out of contract (causal, lq > lk): zeros where the reference has them.
  const Problem p = Random(rng, 1, 100, 30, true, 1.0 / 256, 1.0);
  EXPECT_EQ(Vector(p), Reference(p));
}

// Any split into units gives the same bytes as one call.
TEST(AttentionSeqTest, UnitsAreIndependent) {
  std::mt19937 rng(7);
  const Problem p = Random(rng, 3, 170, 200, true, 1.0 / 256, 0.5);
  const std::vector<int8_t> whole = Reference(p);
  std::vector<int8_t> out;
  const SeqAttentionArgs a = Args(p, out);
  for (size_t u = Units(p); u-- > 0;) cpu::AttentionSeq(a, u, 1);
  EXPECT_EQ(out, whole);
}

// Out of contract (causal, lq > lk): rows that see no key are zeros, the
// others as defined; never undefined bytes (the daemon refuses such input).
TEST(AttentionSeqTest, RowsWithoutKeysAreZero) {
  std::mt19937 rng(8);
  const Problem p = Random(rng, 1, 100, 30, true, 1.0 / 256, 1.0);
  const std::vector<int8_t> want = Reference(p);
  for (size_t i = 0; i < 70 * kD; ++i) ASSERT_EQ(want[i], 0) << i;
  for (const NamedPath& path : CpuPaths()) {
    EXPECT_EQ(RunPath(p, path.run), want) << path.name;
  }
  for (int c = 0; c < kD; ++c) EXPECT_EQ(want[70 * kD + c], p.v[c]);
}

TEST(AttentionSeqTest, WithinOneUnitOfExactSoftmax) {
  std::mt19937 rng(42);
  for (const auto& [n, lq, lk, causal, os] :
       {std::tuple{2, 64, 64, false, 1.0}, std::tuple{1, 100, 65, false, 1.0},
        std::tuple{1, 1, 1500, false, 0.1},
        std::tuple{1, 300, 1500, false, 0.1},
        std::tuple{1, 448, 448, true, 0.25}, std::tuple{2, 7, 200, true, 0.5},
        std::tuple{1, 1, 1, false, 1.0}}) {
    for (double scale : {1.0 / 65536, 1.0 / 2048, 1.0 / 256, 1.0 / 32}) {
      const Problem p = Random(rng, n, lq, lk, causal, scale, os);
      const double err = MaxError(Cpu(p), Exact(p));
      EXPECT_LE(err, 1.0) << "n " << n << " lq " << lq << " lk " << lk
                          << " causal " << causal << " scale " << scale;
    }
  }
}

// Causal row 0 of a square problem sees key 0 only: out = v_0 (p = 32767
// of 32768 rounds back to v for any int8).
TEST(AttentionSeqTest, CausalFirstRowIsFirstValue) {
  std::mt19937 rng(3);
  const Problem p = Random(rng, 2, 150, 150, true, 1.0 / 64, 1.0);
  const std::vector<int8_t> out = Cpu(p);
  for (int h = 0; h < 2; ++h) {
    for (int c = 0; c < kD; ++c) {
      EXPECT_EQ(out[static_cast<size_t>(h) * 150 * kD + c],
                p.v[static_cast<size_t>(h) * 150 * kD + c]);
    }
  }
}

// Padding keys do not count: keys equal to a row's visible prefix with
// extra copies beyond Lk change nothing, and identical keys average v.
TEST(AttentionSeqTest, AllEqualScoresAverageValues) {
  std::mt19937 rng(5);
  Problem p = Random(rng, 1, 3, 1500, false, 1.0 / 64, 1.0 / 16);
  for (int32_t j = 0; j < p.lk; ++j) {
    std::memcpy(&p.k[j * kD], &p.k[0], kD);
  }
  const std::vector<int8_t> out = Cpu(p);
  const std::vector<double> ref = Exact(p);  // the mean of v, times 16
  EXPECT_LE(MaxError(out, ref), 1.0);
}

TEST(AttentionSeqTest, OneDominantKey) {
  std::mt19937 rng(9);
  Problem p = Random(rng, 1, 64, 1500, false, 1.0 / 16, 1.0, 20);
  // Key 1234 is q's direction at full scale: its score dominates by far.
  for (int32_t i = 0; i < p.lq; ++i) {
    for (int d = 0; d < kD; ++d) p.q[i * kD + d] = p.q[d];
  }
  for (int d = 0; d < kD; ++d) {
    p.k[1234 * kD + d] = static_cast<int8_t>(p.q[d] >= 0 ? 127 : -127);
  }
  const std::vector<int8_t> out = Cpu(p);
  for (int32_t i = 0; i < p.lq; ++i) {
    for (int c = 0; c < kD; ++c) {
      ASSERT_EQ(out[i * kD + c], p.v[1234 * kD + c]) << i << " " << c;
    }
  }
}

TEST(AttentionSeqTest, TilePairsCountTheVisibleKeyTiles) {
  EXPECT_EQ(SeqTilePairs(64, 64, false), 1u);
  EXPECT_EQ(SeqTilePairs(1500, 1500, false), 24u * 24u);
  EXPECT_EQ(SeqTilePairs(1, 1500, false), 24u);
  EXPECT_EQ(SeqTilePairs(128, 128, true), 1u + 2u);
  EXPECT_EQ(SeqTilePairs(448, 448, true), 7u * 8u / 2u);
  EXPECT_EQ(SeqTilePairs(1, 1500, true), 24u);
}

using ::testing::HasSubstr;

struct Case {
  std::vector<int64_t> q, k, v;
  double score_scale = 0.125;
  double output_scale = 1.0;
  bool causal = false;
  const char* expect;  // a substring of the message
};

absl::Status Check(const Case& c) {
  return CheckSeqAttention(c.q, c.k, c.v, c.score_scale, c.output_scale,
                           c.causal)
      .status();
}

TEST(SeqAttentionRequestTest, AcceptsTheContract) {
  for (const Case& c :
       {Case{{8, 64, 64}, {8, 64, 64}, {8, 64, 64}, 0.125, 1.0, false, ""},
        Case{{8, 1500, 64}, {8, 1500, 64}, {8, 1500, 64}, 1e-3, 0.1, false, ""},
        Case{{1, 1, 64}, {1, 4096, 64}, {1, 4096, 64}, 1e-3, 0.1, true, ""},
        Case{
            {6, 448, 64}, {6, 448, 64}, {6, 448, 64}, 1e-3, 65536, true, ""}}) {
    absl::StatusOr<SeqAttentionShape> s = CheckSeqAttention(
        c.q, c.k, c.v, c.score_scale, c.output_scale, c.causal);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->n, c.q[0]);
    EXPECT_EQ(s->lq, c.q[1]);
    EXPECT_EQ(s->lk, c.k[1]);
  }
}

TEST(SeqAttentionRequestTest, RefusesEachBadInputWithItsReason) {
  const double nan = std::nan("");
  for (const Case& c : {
           Case{{8, 64, 64},
                {4, 64, 64},
                {4, 64, 64},
                0.125,
                1,
                false,
                "the same N (batch x heads); q has 8, k has 4"},
           Case{{8, 64, 64},
                {8, 64, 64},
                {7, 64, 64},
                0.125,
                1,
                false,
                "v has 7"},
           Case{{1, 0, 64},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                1,
                false,
                "Lq = 0 tokens; it must be in [1, 4096]"},
           Case{{1, 4097, 64},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                1,
                false,
                "Lq = 4097 tokens"},
           Case{{1, 64, 64},
                {1, 0, 64},
                {1, 0, 64},
                0.125,
                1,
                false,
                "Lk = 0 tokens"},
           Case{{1, 64, 64},
                {1, 5000, 64},
                {1, 5000, 64},
                0.125,
                1,
                false,
                "Lk = 5000 tokens"},
           Case{{1, 64, 64},
                {1, 100, 64},
                {1, 99, 64},
                0.125,
                1,
                false,
                "k has 100 tokens and v has 99"},
           Case{{1, 64, 64},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                0,
                false,
                "'output_scale' is 0"},
           Case{{1, 64, 64},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                -2,
                false,
                "'output_scale' is -2"},
           Case{{1, 64, 64},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                nan,
                false,
                "'output_scale' is nan"},
           Case{{1, 64, 64},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                INFINITY,
                false,
                "'output_scale' is inf"},
           Case{{1, 64, 64},
                {1, 64, 64},
                {1, 64, 64},
                0,
                1,
                false,
                "'score_scale' is 0"},
           Case{{1, 500, 64},
                {1, 448, 64},
                {1, 448, 64},
                0.125,
                1,
                true,
                "causal attention needs Lq <= Lk"},
           Case{{64, 64},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                1,
                false,
                "input 'q' has shape [64, 64]; it must be [N, Lq, 64]"},
           Case{{1, 64, 32},
                {1, 64, 64},
                {1, 64, 64},
                0.125,
                1,
                false,
                "input 'q' has shape [1, 64, 32]"},
           Case{{1, 64, 64},
                {1, 64, 64, 1},
                {1, 64, 64},
                0.125,
                1,
                false,
                "input 'k' has shape [1, 64, 64, 1]"},
           Case{{0, 64, 64},
                {0, 64, 64},
                {0, 64, 64},
                0.125,
                1,
                false,
                "N = batch x heads >= 1"},
       }) {
    const absl::Status s = Check(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.expect;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.expect));
  }
}

}  // namespace
}  // namespace npuk
