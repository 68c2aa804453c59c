// attention_pair: the reference (the AIE entry) and the CPU path give the
// same bytes on random pairs and records; the pairs of whole sequences,
// combined on the host in key order by online::MixWeights / MixValue and
// OutputValue, give exactly seq::AttentionSeqReference's output (the
// contract the attention model is built on); rows that see no key are
// zero and the others carry S_t >= 32767; the vector face equals the
// entry; and the declaration says what the model and the design rely on.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/attention_pair/attention_pair_kernel.h"
#include "kernels/attention_pair/attention_pair_vec.h"
#include "kernels/common/cpu_features.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/common/softmax.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

constexpr int kT = 64;
constexpr int kRow = 2 + kT;  // m_t, S_t, o_t[64]
constexpr size_t kQkv = 3 * kT * kT;
constexpr size_t kOutWords = kT * kRow;

const KernelSpec& Pair() {
  const KernelSpec* spec = FindKernel("attention_pair");
  EXPECT_NE(spec, nullptr);
  return *spec;
}

// The limit as the contract states it, in 64-bit arithmetic.
int32_t WantLimit(int32_t r, int32_t rows, int32_t keys, int32_t diag) {
  if (r >= rows) return 0;
  const int64_t lim = std::min<int64_t>(keys, int64_t{r} + diag);
  return static_cast<int32_t>(std::clamp<int64_t>(lim, 0, kT));
}

// A batch of pairs on the device layouts, run through a BatchFn.
struct Batch {
  std::vector<int8_t> qkv;  // n x 12288
  std::vector<AttentionPairRecord> records;

  void Add(const int8_t* pair, const AttentionPairRecord& r) {
    qkv.insert(qkv.end(), pair, pair + kQkv);
    records.push_back(r);
  }
  std::vector<int32_t> Run(BatchFn fn) const {
    const uint8_t* in[] = {reinterpret_cast<const uint8_t*>(qkv.data()),
                           reinterpret_cast<const uint8_t*>(records.data())};
    std::vector<int32_t> out(records.size() * kOutWords, 0x5A5A5A5A);
    fn(in, reinterpret_cast<uint8_t*>(out.data()), records.size());
    return out;
  }
};

// The batch through one forced CPU path of cpu::AttentionPair, with the
// limits of each record's contract.
using PairPath = void (*)(const int8_t*, const int32_t*, ScoreScale, int32_t*);
std::vector<int32_t> RunPath(const Batch& b, PairPath path) {
  std::vector<int32_t> out(b.records.size() * kOutWords);
  int32_t limit[kT];
  for (size_t i = 0; i < b.records.size(); ++i) {
    const AttentionPairRecord& r = b.records[i];
    for (int32_t row = 0; row < kT; ++row) {
      limit[row] = AttentionPairLimit(row, r.rows, r.keys, r.diag);
    }
    path(&b.qkv[i * kQkv], limit, ScoreScale{r.score_multiplier, r.score_shift},
         &out[i * kOutWords]);
  }
  return out;
}

std::vector<int8_t> RandomBytes(std::mt19937_64& rng, size_t n, int spread) {
  std::vector<int8_t> x(n);
  std::uniform_int_distribution<int> d(-spread, spread);
  for (int8_t& b : x) b = static_cast<int8_t>(std::clamp(d(rng), -128, 127));
  return x;
}

ScoreScale RandomScale(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> e(-16, 2);
  return QuantizeScoreScale(std::exp2(e(rng)));
}

AttentionPairRecord RandomRecord(std::mt19937_64& rng) {
  const ScoreScale s = RandomScale(rng);
  std::uniform_int_distribution<int32_t> len(1, kT), diag(-70, 70);
  return AttentionPairRecord{s.multiplier,
                             s.shift,
                             len(rng),
                             len(rng),
                             rng() % 4 == 0 ? kT : diag(rng),
                             0};
}

TEST(AttentionPair, DeclarationIsTheModelsContract) {
  const KernelSpec& s = Pair();
  EXPECT_TRUE(s.internal);
  EXPECT_EQ(s.unit, "tile pair");
  EXPECT_EQ(s.units, "tile pairs");
  ASSERT_EQ(s.inputs.size(), 3u);
  EXPECT_EQ(s.arg_bytes(0), kQkv);
  EXPECT_EQ(s.arg_bytes(1), 24u);
  EXPECT_EQ(s.output.dtype, DType::kInt32);
  EXPECT_EQ(s.output.item_dims, (std::vector<int64_t>{64, 66}));
  EXPECT_EQ(s.output_bytes(), 16896u);
  std::vector<uint8_t> record(s.param_bytes);
  ASSERT_TRUE(s.encode_params(DefaultParams(s), record).ok());
  int32_t words[6];
  std::memcpy(words, record.data(), sizeof(words));
  const ScoreScale want = QuantizeScoreScale(0.125);
  EXPECT_EQ(words[0], want.multiplier);
  EXPECT_EQ(words[1], want.shift);
  EXPECT_EQ(words[2], 64);
  EXPECT_EQ(words[3], 64);
  EXPECT_EQ(words[4], 64);
  EXPECT_EQ(words[5], 0);
  for (double bad : {0.0, -1.0, 5.0, 1e-9}) {
    const std::vector<ParamValue> values = {bad};
    const absl::Status st = s.encode_params(values, record);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("score_scale"), std::string::npos);
  }
}

TEST(AttentionPair, LimitIsTheContractsFormula) {
  const int32_t extremes[] = {
      INT32_MIN, INT32_MIN + 1, -65,      -64, -63, -1, 0, 1, 63, 64,
      65,        100,           INT32_MAX};
  for (int32_t r = 0; r < kT; ++r) {
    for (int32_t rows : extremes) {
      for (int32_t keys : extremes) {
        for (int32_t diag : extremes) {
          ASSERT_EQ(AttentionPairLimit(r, rows, keys, diag),
                    WantLimit(r, rows, keys, diag))
              << r << " " << rows << " " << keys << " " << diag;
        }
      }
    }
  }
}

// (1) and (3): the two host paths agree on random pairs with random
// records (and on out-of-contract ones); a row is all zero exactly when
// its limit is 0, and otherwise its S_t is at least the max key's 32767.
TEST(AttentionPair, CpuEqualsReferenceAndUnseenRowsAreZero) {
  std::mt19937_64 rng(11);
  Batch b;
  for (int i = 0; i < 160; ++i) {
    // Small and full-range values; bytes beyond rows and keys are left
    // non-zero: the limits alone must hide them.
    const std::vector<int8_t> pair = RandomBytes(rng, kQkv, i % 2 ? 128 : 24);
    b.Add(pair.data(), RandomRecord(rng));
  }
  const std::vector<int8_t> pair = RandomBytes(rng, kQkv, 128);
  for (const AttentionPairRecord& r : {
           AttentionPairRecord{INT32_MIN, INT32_MAX, 64, 64, 64, 7},
           AttentionPairRecord{0, -100, INT32_MAX, INT32_MAX, INT32_MAX, 0},
           AttentionPairRecord{1 << 30, 3, 64, 64, INT32_MIN, 0},
           AttentionPairRecord{1 << 30, 3, -5, 64, 64, 0},
           AttentionPairRecord{1 << 30, 3, 64, -5, 64, 0},
           AttentionPairRecord{1 << 30, 3, 64, 200, -63, 0},
       }) {
    b.Add(pair.data(), r);
  }
  const std::vector<int32_t> ref = b.Run(Pair().reference);
  const std::vector<int32_t> cpu = b.Run(Pair().cpu);
  ASSERT_EQ(ref, cpu) << cpu::AttentionSeqPath();
  {
    // An output buffer that is not 4-byte aligned takes the copying path.
    const uint8_t* in[] = {reinterpret_cast<const uint8_t*>(b.qkv.data()),
                           reinterpret_cast<const uint8_t*>(b.records.data())};
    std::vector<uint8_t> bytes(ref.size() * sizeof(int32_t) + 1);
    Pair().cpu(in, bytes.data() + 1, b.records.size());
    ASSERT_EQ(std::memcmp(bytes.data() + 1, ref.data(), bytes.size() - 1), 0);
  }
  // Each AVX path this machine has, whichever the dispatch picks.
  if (cpu::HasAvx2()) {
    ASSERT_EQ(RunPath(b, cpu::AttentionPairAvx2), ref) << "avx2";
  }
  if (cpu::HasAvx512Vnni()) {
    ASSERT_EQ(RunPath(b, cpu::AttentionPairAvx512), ref) << "avx512vnni";
  }
  size_t zero_rows = 0, seen_rows = 0;
  for (size_t i = 0; i < b.records.size(); ++i) {
    const AttentionPairRecord& rec = b.records[i];
    for (int32_t r = 0; r < kT; ++r) {
      const int32_t* row = &ref[i * kOutWords + r * kRow];
      if (WantLimit(r, rec.rows, rec.keys, rec.diag) == 0) {
        ++zero_rows;
        for (int c = 0; c < kRow; ++c) {
          ASSERT_EQ(row[c], 0) << "pair " << i << " row " << r;
        }
      } else {
        ++seen_rows;
        ASSERT_GE(row[1], softmax::kOneQ15) << "pair " << i << " row " << r;
      }
    }
  }
  EXPECT_GT(zero_rows, 1000u);
  EXPECT_GT(seen_rows, 1000u);
}

// (2) The contract: a sequence cut into pairs as the attention model cuts
// it, the partials folded in key order, is seq::AttentionSeqReference.
void CombineEqualsSequenceReference(std::mt19937_64& rng, int32_t heads,
                                    int32_t lq, int32_t lk, bool causal,
                                    const char* what) {
  SCOPED_TRACE(testing::Message() << what << ": " << heads << " x " << lq
                                  << " x " << lk << (causal ? " causal" : ""));
  std::uniform_int_distribution<int> spread(8, 128);
  const int s = spread(rng);
  const std::vector<int8_t> q = RandomBytes(rng, size_t(heads) * lq * kT, s);
  const std::vector<int8_t> k = RandomBytes(rng, size_t(heads) * lk * kT, s);
  const std::vector<int8_t> v = RandomBytes(rng, size_t(heads) * lk * kT, 127);
  const ScoreScale score = RandomScale(rng);
  std::uniform_real_distribution<double> os(0.05, 2.0);
  const online::OutputScale output = online::QuantizeOutputScale(os(rng));
  std::vector<int8_t> want(q.size());
  const SeqAttentionArgs args{.q = q.data(),
                              .k = k.data(),
                              .v = v.data(),
                              .out = want.data(),
                              .n = heads,
                              .lq = lq,
                              .lk = lk,
                              .causal = causal,
                              .score_scale = score,
                              .output_scale = output};
  seq::AttentionSeqReference(args, 0, size_t(heads) * SeqTiles(lq));

  // Every (head, query tile, key tile) pair, in that order; key tiles no
  // row sees are sent too (their rows are all zero and are skipped).
  Batch b;
  std::vector<int8_t> pair(kQkv);
  for (int32_t h = 0; h < heads; ++h) {
    for (int32_t q0 = 0; q0 < lq; q0 += kT) {
      for (int32_t k0 = 0; k0 < lk; k0 += kT) {
        const int32_t rows = std::min(kT, lq - q0);
        const int32_t keys = std::min(kT, lk - k0);
        std::fill(pair.begin(), pair.end(), int8_t{0});
        std::memcpy(&pair[0], &q[(size_t(h) * lq + q0) * kT], rows * kT);
        std::memcpy(&pair[kT * kT], &k[(size_t(h) * lk + k0) * kT], keys * kT);
        std::memcpy(&pair[2 * kT * kT], &v[(size_t(h) * lk + k0) * kT],
                    keys * kT);
        b.Add(pair.data(), {score.multiplier, score.shift, rows, keys,
                            causal ? q0 + lk - lq + 1 - k0 : kT, 0});
      }
    }
  }
  const std::vector<int32_t> partials = b.Run(Pair().cpu);

  const softmax::ExpParams exp =
      softmax::MakeExpParams(score.multiplier, score.shift);
  std::vector<int8_t> got(q.size(), 0x11);
  size_t item = 0;
  for (int32_t h = 0; h < heads; ++h) {
    for (int32_t q0 = 0; q0 < lq; q0 += kT) {
      int32_t max[kT];
      uint32_t weight[kT];
      bool seen[kT] = {};
      int32_t acc[kT][kT];
      for (int32_t k0 = 0; k0 < lk; k0 += kT, ++item) {
        for (int r = 0; r < kT; ++r) {
          const int32_t* row = &partials[item * kOutWords + r * kRow];
          const auto sum = static_cast<uint32_t>(row[1]);
          if (sum == 0) continue;  // the row sees no key of this tile
          if (!seen[r]) {
            seen[r] = true;
            max[r] = row[0];
            weight[r] = sum;
            std::copy(row + 2, row + kRow, acc[r]);
            continue;
          }
          const online::Mix mix =
              online::MixWeights(max[r], weight[r], row[0], sum, exp);
          max[r] = mix.max;
          weight[r] = mix.weight;
          for (int c = 0; c < kT; ++c) {
            acc[r][c] = online::MixValue(acc[r][c], row[2 + c], mix);
          }
        }
      }
      for (int r = 0; r < std::min(kT, lq - q0); ++r) {
        for (int c = 0; c < kT; ++c) {
          got[(size_t(h) * lq + q0 + r) * kT + c] =
              seen[r] ? online::OutputValue(acc[r][c], output) : int8_t{0};
        }
      }
    }
  }
  ASSERT_EQ(item, b.records.size());
  EXPECT_EQ(got, want);
}

TEST(AttentionPair, PairsCombineToSequenceAttention) {
  std::mt19937_64 rng(5);
  // Edges: one tile, exact tile multiples, one query, one key.
  CombineEqualsSequenceReference(rng, 2, 64, 64, false, "edge");
  CombineEqualsSequenceReference(rng, 1, 128, 192, true, "edge");
  CombineEqualsSequenceReference(rng, 3, 1, 300, false, "edge");
  CombineEqualsSequenceReference(rng, 1, 1, 1, true, "edge");
  CombineEqualsSequenceReference(rng, 2, 300, 1, false, "edge");
  std::uniform_int_distribution<int32_t> len(1, 300), heads(1, 4);
  for (int i = 0; i < 60; ++i) {
    int32_t lq = len(rng), lk = len(rng);
    const bool causal = i % 2 == 0;
    if (causal && lq > lk) std::swap(lq, lk);
    CombineEqualsSequenceReference(rng, heads(rng), lq, lk, causal, "random");
  }
}

// The single unmasked tile is the tile kernel after its output rounding:
// sat8(round(o_t / 2^15)) of each row is attention_64x64's byte.
TEST(AttentionPair, WholeTileIsTheTileKernel) {
  std::mt19937_64 rng(8);
  for (int i = 0; i < 8; ++i) {
    const std::vector<int8_t> pair = RandomBytes(rng, kQkv, 40);
    const ScoreScale s = RandomScale(rng);
    Batch b;
    b.Add(pair.data(), {s.multiplier, s.shift, 64, 64, 64, 0});
    const std::vector<int32_t> partials = b.Run(Pair().reference);
    std::vector<int8_t> tile(kAttentionOutBytes);
    attention_64x64(pair.data(), tile.data(), s.multiplier, s.shift);
    for (int r = 0; r < kT; ++r) {
      for (int c = 0; c < kT; ++c) {
        ASSERT_EQ(softmax::OutputValue(partials[r * kRow + 2 + c]),
                  tile[r * kT + c])
            << "tile " << i << " (" << r << ", " << c << ")";
      }
    }
  }
}

// (4) The vector face (host build of attention_pair_vec) is the entry.
TEST(AttentionPair, VectorFaceEqualsTheEntry) {
  std::mt19937_64 rng(9);
  std::vector<int32_t> got(kOutWords), want(kOutWords);
  for (int i = 0; i < 120; ++i) {
    const std::vector<int8_t> pair = RandomBytes(rng, kQkv, i % 2 ? 128 : 24);
    AttentionPairRecord r = RandomRecord(rng);
    if (i < 4) r.rows = r.keys = r.diag = 64;
    if (i == 4) r.diag = -70;  // no row sees a key
    attention_pair_64x64(pair.data(), want.data(), r.score_multiplier,
                         r.score_shift, r.rows, r.keys, r.diag);
    std::fill(got.begin(), got.end(), 0x77);
    attention_vec::AttentionPairVec(pair.data(), r, got.data());
    ASSERT_EQ(got, want) << "pair " << i << ": rows " << r.rows << " keys "
                         << r.keys << " diag " << r.diag;
  }
}

}  // namespace
}  // namespace npuk
