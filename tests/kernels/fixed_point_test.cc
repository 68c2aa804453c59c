// Unit tests of the fixed-point pieces in kernels/common: the score-scale
// function every backend and client shares, the exponential and softmax
// helpers, the log quantiser and the constant tables.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>

#include "gtest/gtest.h"
#include "kernels/common/mel_math.h"
#include "kernels/common/mel_tables.h"
#include "kernels/common/score_scale.h"
#include "kernels/common/softmax.h"

namespace npuk {
namespace {

// gemmlowp's QuantizeMultiplier restated with frexp/ldexp (exact for
// doubles): an independent implementation of the documented function.
ScoreScale Independent(double s) {
  int shift = 0;
  const double q = std::frexp(s, &shift);
  int64_t m = static_cast<int64_t>(std::floor(std::ldexp(q, 31) + 0.5));
  if (m == (int64_t{1} << 31)) {
    m /= 2;
    ++shift;
  }
  return ScoreScale{static_cast<int32_t>(m), shift};
}

TEST(ScoreScaleTest, RangeCheck) {
  EXPECT_TRUE(ScoreScaleInRange(kMinScoreScale));
  EXPECT_TRUE(ScoreScaleInRange(kMaxScoreScale));
  EXPECT_TRUE(ScoreScaleInRange(0.125));
  EXPECT_FALSE(ScoreScaleInRange(0.0));
  EXPECT_FALSE(ScoreScaleInRange(-0.125));
  EXPECT_FALSE(ScoreScaleInRange(std::nextafter(kMinScoreScale, 0.0)));
  EXPECT_FALSE(ScoreScaleInRange(std::nextafter(kMaxScoreScale, 8.0)));
  EXPECT_FALSE(ScoreScaleInRange(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(ScoreScaleInRange(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(ScoreScaleInRange(-std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(ScoreScaleInRange(std::numeric_limits<double>::denorm_min()));
}

TEST(ScoreScaleTest, KnownValues) {
  static_assert(QuantizeScoreScale(0.125).multiplier == (1 << 30));
  static_assert(QuantizeScoreScale(0.125).shift == -2);
  constexpr ScoreScale four = QuantizeScoreScale(4.0);
  EXPECT_EQ(four.multiplier, 1 << 30);
  EXPECT_EQ(four.shift, 3);
  constexpr ScoreScale tiny = QuantizeScoreScale(kMinScoreScale);
  EXPECT_EQ(tiny.multiplier, 1 << 30);
  EXPECT_EQ(tiny.shift, -15);
  // 0.0125 = 0.8 * 2^-6; 0.8 * 2^31 = 1717986918.4 rounds down.
  EXPECT_EQ(QuantizeScoreScale(0.0125).multiplier, 1717986918);
  EXPECT_EQ(QuantizeScoreScale(0.0125).shift, -6);
}

TEST(ScoreScaleTest, RoundingCarryMovesToNextShift) {
  // Just below 0.5: q * 2^31 rounds up to 2^31.
  const double s = std::nextafter(0.5, 0.0);
  const ScoreScale r = QuantizeScoreScale(s);
  EXPECT_EQ(r.multiplier, 1 << 30);
  EXPECT_EQ(r.shift, 0);
  EXPECT_DOUBLE_EQ(ScoreScaleValue(r), 0.5);
}

TEST(ScoreScaleTest, MatchesIndependentImplementationAndIsAccurate) {
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> log_s(std::log(kMinScoreScale),
                                               std::log(kMaxScoreScale));
  for (int i = 0; i < 100000; ++i) {
    double s = std::exp(log_s(rng));
    if (!ScoreScaleInRange(s)) continue;
    const ScoreScale got = QuantizeScoreScale(s);
    const ScoreScale want = Independent(s);
    ASSERT_EQ(got.multiplier, want.multiplier) << s;
    ASSERT_EQ(got.shift, want.shift) << s;
    ASSERT_GE(got.multiplier, 1 << 30);
    ASSERT_GE(got.shift, kMinScoreShift);
    ASSERT_LE(got.shift, kMaxScoreShift);
    ASSERT_LE(std::fabs(ScoreScaleValue(got) / s - 1.0), std::ldexp(1.0, -31))
        << s;
  }
}

TEST(ScoreScaleTest, OutOfRangeInputIsClampedNotUndefined) {
  const ScoreScale lo = QuantizeScoreScale(kMinScoreScale);
  const ScoreScale hi = QuantizeScoreScale(kMaxScoreScale);
  for (double s :
       {0.0, -1.0, 1e-300, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_EQ(QuantizeScoreScale(s).multiplier, lo.multiplier);
    EXPECT_EQ(QuantizeScoreScale(s).shift, lo.shift);
  }
  EXPECT_EQ(QuantizeScoreScale(1e300).shift, hi.shift);
}

TEST(SoftmaxTest, Exp2NegFollowsExp2) {
  for (uint32_t y = 0; y <= softmax::kMaxExponent; y += 997) {
    const double want = std::min(
        32767.0,
        std::round(32768.0 * std::exp2(-static_cast<double>(y) / 1048576.0)));
    ASSERT_NEAR(softmax::Exp2NegQ15(y), want, 1.0 + want * 4e-5) << y;
  }
  EXPECT_EQ(softmax::Exp2NegQ15(0), 32767);
  EXPECT_EQ(softmax::Exp2NegQ15(softmax::kMaxExponent), 0);
}

// The Horner rounding can lift a value by one unit over its neighbour;
// more would distort the softmax ordering.
TEST(SoftmaxTest, Exp2NegIsMonotoneWithinOneUnit) {
  int32_t prev = softmax::Exp2NegQ15(0);
  for (uint32_t y = 1; y <= (20u << 20); y += 13) {
    const int32_t e = softmax::Exp2NegQ15(y);
    ASSERT_LE(e, prev + 1) << y;
    prev = e;
  }
}

TEST(SoftmaxTest, ExponentIsScaleTimesLog2e) {
  for (double s : {kMinScoreScale, 0.0125, 0.125, 1.0, kMaxScoreScale}) {
    const ScoreScale q = QuantizeScoreScale(s);
    const auto p = softmax::MakeExpParams(q.multiplier, q.shift);
    for (uint32_t a : {0u, 1u, 100u, 4096u, 1u << 20}) {
      const double want = std::min<double>(
          softmax::kMaxExponent, a * s * std::log2(std::exp(1.0)) * 1048576.0);
      EXPECT_NEAR(softmax::Exponent(a, p), want, 1.0 + want * 1e-8)
          << "s=" << s << " a=" << a;
    }
  }
}

TEST(SoftmaxTest, ProbabilitiesSumToOne) {
  const int32_t e[4] = {32767, 20000, 5, 0};
  uint32_t sum = 0;
  for (int32_t v : e) sum += static_cast<uint32_t>(v);
  const uint32_t r = softmax::Reciprocal(sum);
  int32_t total = 0;
  for (int32_t v : e) total += softmax::Probability(v, r);
  EXPECT_NEAR(total, 32768, 2);
  EXPECT_EQ(softmax::Probability(32767, softmax::Reciprocal(32767)), 32767);
}

TEST(SoftmaxTest, OutputRoundsAndSaturates) {
  EXPECT_EQ(softmax::OutputValue(3 << 15), 3);
  EXPECT_EQ(softmax::OutputValue((5 << 15) + (1 << 14)), 6);  // tie up
  EXPECT_EQ(softmax::OutputValue(-(5 << 15) - (1 << 14)), -5);
  EXPECT_EQ(softmax::OutputValue(200 << 15), 127);
  EXPECT_EQ(softmax::OutputValue(-200 << 15), -128);
}

TEST(MelMathTest, Log2IsAccurate) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t e = rng() >> (rng() % 63);
    if (e == 0) continue;
    const double want = std::log2(static_cast<double>(e));
    ASSERT_NEAR(mel::Log2Q30(e) / 1073741824.0, want, 2e-5) << e;
  }
}

TEST(MelMathTest, QuantizeLogMel) {
  EXPECT_EQ(mel::QuantizeLogMel(0), -96);
  EXPECT_EQ(mel::QuantizeLogMel(1), -96);  // below the 1e-10 floor
  EXPECT_EQ(mel::QuantizeLogMel(~uint64_t{0}), 127);
  std::mt19937_64 rng(4);
  int near_tie = 0;
  for (int i = 0; i < 100000; ++i) {
    const uint64_t e = (rng() >> (rng() % 64)) | 1;
    const double v = 16.0 * (std::log10(static_cast<double>(e)) -
                             44.0 * std::log10(2.0) + 4.0);
    const double want = std::clamp(std::round(v), -96.0, 127.0);
    const int got = mel::QuantizeLogMel(e);
    if (std::fabs(v - std::floor(v) - 0.5) < 1e-3) {
      ++near_tie;  // within the log's error of a rounding boundary
      ASSERT_NEAR(got, want, 1) << e;
    } else {
      ASSERT_EQ(got, want) << e;
    }
  }
  EXPECT_LT(near_tie, 500);
}

TEST(MelTablesTest, PeriodicHann) {
  EXPECT_EQ(mel::kWindow.w[0], 0);  // periodic: w[0] = 0, w[200] = 1
  EXPECT_EQ(mel::kWindow.w[200], 1 << 30);
  for (int n = 1; n < 400; ++n) {
    ASSERT_EQ(mel::kWindow.w[n], mel::kWindow.w[400 - n]) << n;
    const double want =
        (0.5 - 0.5 * std::cos(2 * std::numbers::pi * n / 400)) * (1 << 30);
    ASSERT_NEAR(mel::kWindow.w[n], want, 1.0) << n;
  }
}

TEST(MelTablesTest, CosTableIsExactlySymmetric) {
  for (int j = 0; j < 400; ++j) {
    ASSERT_EQ(mel::kCos.v[j], mel::kCos.v[(400 - j) % 400]) << j;
    ASSERT_EQ(mel::kCos.v[(200 - j + 400) % 400], -mel::kCos.v[j]) << j;
    ASSERT_NEAR(mel::kCos.v[j],
                std::cos(2 * std::numbers::pi * j / 400) * (1 << 30), 1.0);
  }
}

TEST(MelTablesTest, SlaneyFilterbank) {
  EXPECT_LE(mel::kFilterbank.total, mel::kMaxFilterWeights);
  for (int m = 0; m < mel::kMelBands; ++m) {
    int64_t sum = 0;
    for (int i = 0; i < mel::kFilterbank.count[m]; ++i) {
      const int32_t w = mel::kFilterbank.weight[mel::kFilterbank.offset[m] + i];
      ASSERT_GE(w, 0);
      ASSERT_LT(w, 1 << 15);  // fits the documented 15 bits
      sum += w;
    }
    // Slaney area normalisation: sum over 40 Hz bins ~ 1/40 of the peak
    // area, so about 2^20 / 40 per band.
    EXPECT_NEAR(sum / 1048576.0, 1.0 / 40.0, 0.4 / 40.0) << m;
  }
}

}  // namespace
}  // namespace npuk
