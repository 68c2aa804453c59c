#include "kernels/vec/cycle_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <utility>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/attention/attention_kernel_vec.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/attention/attention_seq_vec.h"
#include "kernels/common/mel_fft.h"
#include "kernels/common/mel_tables.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/mel/mel_kernel_vec.h"

namespace npuk::vec {
namespace {

bool HasVectorWork(const OpCounts& o) {
  return o.vmac + o.valu + o.vmove + o.loads + o.stores > 0;
}

struct Slots {
  double vmac, valu, vmove, load, store, scalar;
};

Slots SlotCycles(const OpCounts& o, const Aie2Params& p) {
  Slots s{};
  s.vmac = static_cast<double>(o.vmac);
  s.valu = static_cast<double>(o.valu);
  s.vmove = static_cast<double>(o.vmove);
  s.load = std::max(
      static_cast<double>(o.load_bits) / p.load_bits_per_cycle,
      static_cast<double>(o.loads + o.scalar_mem) / p.load_ops_per_cycle);
  s.store = std::max(static_cast<double>(o.store_bits) / p.store_bits_per_cycle,
                     static_cast<double>(o.stores));
  s.scalar = static_cast<double>(o.scalar);
  return s;
}

}  // namespace

double RegionCycles(const OpCounts& o, const Aie2Params& p) {
  const double calls = static_cast<double>(o.muldi3) * p.muldi3_cycles +
                       static_cast<double>(o.udivsi3) * p.udivsi3_cycles;
  if (!HasVectorWork(o) && o.loops == 0) {
    return static_cast<double>(o.scalar + o.scalar_mem) * p.scalar_cpi + calls;
  }
  const Slots s = SlotCycles(o, p);
  const double bound =
      std::max({s.vmac, s.valu, s.vmove, s.load, s.store, s.scalar});
  return bound + static_cast<double>(o.loops) * p.loop_overhead_cycles + calls;
}

std::string_view BoundingSlot(const OpCounts& o, const Aie2Params& p) {
  if (!HasVectorWork(o) && o.loops == 0) return "scalar code";
  const Slots s = SlotCycles(o, p);
  const std::pair<double, std::string_view> slots[] = {
      {s.vmac, "vmac"}, {s.valu, "valu"},   {s.vmove, "vmove"},
      {s.load, "load"}, {s.store, "store"}, {s.scalar, "scalar"}};
  return std::max_element(
             std::begin(slots), std::end(slots),
             [](const auto& a, const auto& b) { return a.first < b.first; })
      ->second;
}

double ProfileCycles(const Profile& profile, const Aie2Params& p) {
  double c = 0;
  for (const OpCounts& r : profile.region) c += RegionCycles(r, p);
  return c;
}

// ------------------------------------------------------------ calibration

namespace {

// mlir-aie aie_kernels/aie2/scale.cc, `scale_vectorized` on int16: 1024
// elements, 32 lanes, one load, mul into acc32, srs and store per
// iteration, one pipelined loop. Written again here in the vocabulary.
void ScaleVectorized(const int16_t* a, int16_t* c, int16_t factor) {
  LoopEntry();
  for (int i = 0; i < 1024; i += 32) {
    const Vec<int16_t, 32> x = Load<32>(a + i);
    Store(c + i, Srs<int16_t>(Mul<32>(x, factor), 0, Round::kFloor));
  }
}

// `scale_scalar`: one load, one multiply, one store per element (the
// loop itself is a zero-overhead hardware loop with post-incrementing
// address registers).
void ScaleScalar(const int16_t* a, int16_t* c, int16_t factor) {
  for (int i = 0; i < 1024; ++i) {
    ScalarMem(2);
    Scalar(1);
    c[i] = static_cast<int16_t>(a[i] * factor);
  }
}

// mlir-aie programming_guide/section-4/section-4c/README.md, measured by
// trace on Phoenix: vectorised with chess_prepare_for_pipelining 72 cycles;
// scalar ~10,250 cycles.
constexpr double kPublishedVectorScale = 72;
constexpr double kPublishedScalarScale = 10250;

}  // namespace

Calibration Calibrate(const Aie2Params& p) {
  std::vector<int16_t> a(1024), c(1024);
  for (int i = 0; i < 1024; ++i)
    a[static_cast<size_t>(i)] = static_cast<int16_t>(i);
  Profile vec_profile, scalar_profile;
  {
    CountScope scope(&vec_profile);
    ScaleVectorized(a.data(), c.data(), 3);
  }
  {
    CountScope scope(&scalar_profile);
    ScaleScalar(a.data(), c.data(), 3);
  }
  Calibration cal;
  Aie2Params no_overhead = p;
  no_overhead.loop_overhead_cycles = 0;
  const OpCounts v = vec_profile.Total();
  cal.derived_loop_overhead =
      (kPublishedVectorScale - ProfileCycles(vec_profile, no_overhead)) /
      static_cast<double>(v.loops);
  const OpCounts s = scalar_profile.Total();
  cal.derived_scalar_cpi =
      kPublishedScalarScale / static_cast<double>(s.scalar + s.scalar_mem);
  auto point = [](const char* name, double published, double model) {
    return CalibrationPoint{name, published, model, model / published - 1};
  };
  cal.vector_scale =
      point("mlir-aie scale_vectorized int16 x1024", kPublishedVectorScale,
            ProfileCycles(vec_profile, p));
  cal.scalar_scale =
      point("mlir-aie scale_scalar int16 x1024", kPublishedScalarScale,
            ProfileCycles(scalar_profile, p));
  return cal;
}

std::string_view VariantName(Variant v) {
  return v == Variant::kVector ? "vector" : "scalar";
}

// ---------------------------------------------------- today's scalar code

namespace {

// The log stage a mel-family kernel ends in (mel_math.h).
enum class LogStage {
  kInt8,  // QuantizeLogMel: mel, mel128
  kQ8,    // LogMelQ8: mel_pcm, mel128_pcm
};

// The FFT of mel_fft.h as mel_math.h's ScalarFftOps runs it on the AIE
// scalar unit, counted by running the template itself: every product of
// an int32 value and a Q30 constant is an int64 multiply (a __muldi3 call)
// plus the constant's load, a 64-bit add, subtract or shift is 2 ops, a
// round-shift 4 (add with carry, two shifts, a merge), a 32-bit add 1, a
// scratch access or output store a scalar_mem. Windowing each sample as
// it is read: the load of x and w, the product, the round-shift.
class CountingFftOps {
 public:
  using V = int32_t;
  using A = int64_t;

  explicit CountingFftOps(OpCounts* o) : o_(o) {}

  V Sample(int /*n*/) {
    o_->muldi3 += 1;
    o_->scalar += 4;
    o_->scalar_mem += 2;
    return 0;
  }
  static V Prep(V v) { return v; }
  A Mul(V /*v*/, int32_t /*c*/) {
    o_->muldi3 += 1;
    o_->scalar_mem += 1;
    return 0;
  }
  A Mac(A /*a*/, V /*v*/, int32_t /*c*/) {
    o_->muldi3 += 1;
    o_->scalar += 2;
    o_->scalar_mem += 1;
    return 0;
  }
  A Lift(V /*v*/) { return Wide(); }
  A AddA(A /*a*/, A /*b*/) { return Wide(); }
  A SubA(A /*a*/, A /*b*/) { return Wide(); }
  V Round(A /*a*/, int /*s*/) {
    o_->scalar += 4;
    return 0;
  }
  V Add(V /*a*/, V /*b*/) { return Narrow(); }
  V Sub(V /*a*/, V /*b*/) { return Narrow(); }
  void Put(int /*i*/, V /*v*/) { o_->scalar_mem += 1; }
  V Get(int /*i*/) {
    o_->scalar_mem += 1;
    return 0;
  }
  void Emit(int /*k*/, V /*re*/, V /*im*/) { o_->scalar_mem += 2; }
  static void Loop() {}

 private:
  A Wide() {
    o_->scalar += 2;
    return 0;
  }
  V Narrow() {
    o_->scalar += 1;
    return 0;
  }

  OpCounts* o_;
};

// Operations of mel_math.h's LogMelFrame / LogMelQ8Frame (the deployed
// scalar kernels of the mel family) for a Bands-band filterbank, stage by
// stage: 64-bit multiplies are __muldi3 calls, everything else 32-bit
// scalar operations (a 64-bit add or shift counts 2-4), loads and stores
// as scalar_mem. None of it is software-pipelined (64-bit arithmetic
// through calls), so it is one scalar region. The window, FFT and power
// stages do not depend on the band count; the filterbank's nonzero weights
// and the log stage do.
template <int Bands>
OpCounts CountScalarMel(LogStage log) {
  constexpr uint64_t kBins = mel::kFftBins;  // 201
  OpCounts o;
  // window and FFT (mel_fft.h), plus the 400 windowed samples' stores and
  // loads between the two loops of LogMelFrame
  CountingFftOps ops(&o);
  mel::fft::Run(ops);
  o.scalar_mem += 2 * mel::kFrameSamples;
  // power: 2 squares (products), a 64-bit add, 2 loads, 1 store (2 words)
  o.muldi3 += kBins * 2;
  o.scalar += kBins * 2;
  o.scalar_mem += kBins * 4;
  // mel: per weight 2 products (high and low halves times the weight), two
  // 64-bit adds, a 64-bit shift/mask (4 ops), 3 loads; per band the
  // recombination (~8 ops)
  constexpr uint64_t kBands = Bands;
  const uint64_t weights =
      static_cast<uint64_t>(mel::kFilterbankOf<Bands>.total);
  o.muldi3 += weights * 2;
  o.scalar += weights * 8 + kBands * 8;
  o.scalar_mem += weights * 3 + kBands * 3;
  // log: per band 2 products (interpolation, log10 scale), msb over two
  // words, 64-bit shifts/adds/round and the clamp to [-96, 127] (~36 ops),
  // or the floor at -2560 only (~32 ops) for the Q8 stage; 2 table loads,
  // 1 store
  o.muldi3 += kBands * 2;
  o.scalar += kBands * (log == LogStage::kInt8 ? 36 : 32);
  o.scalar_mem += kBands * 3;
  return o;
}

// attention_kernel.cc's attention_64x64, loop by loop.
OpCounts CountScalarAttention() {
  constexpr uint64_t n = 64, d = 64;
  OpCounts o;
  o.muldi3 += 1;  // MakeExpParams: multiplier x log2(e) in 64 bits
  o.scalar += 10;
  o.scalar_mem += 2 * n * d;  // k transpose: load + store
  // scores: i, d, j: load kt, load + store score, multiply, add
  o.scalar += n * d * n * 2;
  o.scalar_mem += n * d * n * 3 + n * d;
  // row max: compare + select, one load
  o.scalar += n * n * 2;
  o.scalar_mem += n * n;
  // exponents: subtract, Exponent (a 64-bit product, add, shift, clamp: 1
  // __muldi3 + 6 ops), Exp2NegQ15 (4 Horner steps of mul, add, round-shift:
  // 16 ops, plus 8 for n, r15, the final shift and clamp), sum; 2 mem ops
  o.muldi3 += n * n;
  o.scalar += n * n * (1 + 6 + 24 + 1);
  o.scalar_mem += n * n * 2;
  // reciprocal: one 32-bit division per row
  o.udivsi3 += n;
  o.scalar += n * 2;
  // probabilities: mul, add, shift, clamp; 2 mem ops
  o.scalar += n * n * 4;
  o.scalar_mem += n * n * 2;
  // PV: i, j, c: load v, load + store acc, multiply, add
  o.scalar += n * n * d * 2;
  o.scalar_mem += n * n * d * 3 + n * n;
  // output: round-shift, saturate, store
  o.scalar += n * d * 4;
  o.scalar_mem += n * d * 2;
  return o;
}

// One key tile of the sequence attention's portable row code on a whole
// unmasked tile (every row sees every key: the most work), loop by loop:
// the limits, PrepareTile, and per row the scores, the exponentials, the
// probabilities and P v (attention_seq_rows.inc), before the row's fold.
OpCounts CountScalarKeyTile() {
  constexpr uint64_t n = 64, d = 64;
  OpCounts o;
  // limits: compare with rows, clamp diag, add, min, clamp (~8), store
  o.scalar += n * 8;
  o.scalar_mem += n;
  o.muldi3 += 1;  // MakeExpParams: multiplier x log2(e) in 64 bits
  o.scalar += 10;
  // the keys any row sees: compare + select, one load
  o.scalar += n * 2;
  o.scalar_mem += n;
  // PrepareTile: k^T and v, each element a compare, a select, load, store
  o.scalar += 2 * n * d * 2;
  o.scalar_mem += 2 * n * d * 2;
  // per row: scores cleared, then d, j: load kt, load + store score,
  // multiply, add (and q[d] once per d)
  o.scalar_mem += n * n;
  o.scalar += n * d * n * 2;
  o.scalar_mem += n * d * n * 3 + n * d;
  // row max over the visible keys: compare + select, one load
  o.scalar += n * n * 2;
  o.scalar_mem += n * n;
  // exponents: the j < lim test, subtract, Exponent (a __muldi3 + 6 ops),
  // Exp2NegQ15 (24 ops, as the tile kernel), sum; 2 mem ops
  o.muldi3 += n * n;
  o.scalar += n * n * (1 + 1 + 6 + 24 + 1);
  o.scalar_mem += n * n * 2;
  // reciprocal: one 32-bit division per row
  o.udivsi3 += n;
  o.scalar += n * 2;
  // probabilities: the j < lim test, mul, add, shift, clamp; 2 mem ops
  o.scalar += n * n * 5;
  o.scalar_mem += n * n * 2;
  // PV into the output row: o cleared; j: load p, test p == 0; c: load v,
  // load + store o, multiply, add
  o.scalar_mem += n * d;
  o.scalar += n * n * 2;
  o.scalar_mem += n * n;
  o.scalar += n * n * d * 2;
  o.scalar_mem += n * n * d * 3;
  // m_t and S_t stored
  o.scalar_mem += n * 2;
  return o;
}

// passthrough_4096's byte loop (the host compilers vectorise it; Peano
// does not auto-vectorise by default: llvm-aie's driver passes
// -vectorize-loops=false).
OpCounts CountScalarPassthrough() {
  OpCounts o;
  o.scalar_mem = 2 * 4096;
  return o;
}

Profile OneRegion(const OpCounts& o) {
  Profile p;
  p.region[0] = o;
  return p;
}

// A fixed pseudo-random group of frames through one of the mel family's
// vector kernels (host drivers of kernels/mel/mel_kernel_vec.h); their
// counts depend on data only through the log stage's zero-energy shortcut.
template <typename Out>
Profile CountVectorMel(void (*frames)(const int16_t*, Out*, size_t, Profile*),
                       int bands) {
  std::vector<int16_t> in(static_cast<size_t>(kMelVecLanes) * 400);
  std::mt19937 rng(1);
  for (int16_t& s : in) s = static_cast<int16_t>(rng() % 4001) - 2000;
  std::vector<Out> out(static_cast<size_t>(kMelVecLanes * bands));
  Profile p;
  frames(in.data(), out.data(), kMelVecLanes, &p);
  return p;
}

// n seeded pseudo-random bytes: the attention kernels' counts do not depend
// on them.
std::vector<int8_t> RandomInt8(size_t n, uint32_t seed) {
  std::vector<int8_t> x(n);
  std::mt19937 rng(seed);
  for (int8_t& b : x) b = static_cast<int8_t>(rng());
  return x;
}

Profile CountVectorAttention() {
  const std::vector<int8_t> qkv = RandomInt8(kAttentionInBytes, 2);
  std::vector<int8_t> out(kAttentionOutBytes);
  const ScoreScale scale = QuantizeScoreScale(0.125);
  Profile p;
  {
    CountScope scope(&p);
    attention_64x64_vec(qkv.data(), out.data(), scale.multiplier, scale.shift);
  }
  return p;
}

// attention_stream's unit on the vector kernel (attention_seq_vec_begin,
// _step per key tile, _end): a whole unmasked query tile over one key tile
// (its first step needs no MixWeights) and over two; the difference is a
// further step.
void CountVectorAttentionStream(double* per_unit, double* per_step) {
  constexpr int kD = 64;
  double cycles[2];
  for (int tiles = 1; tiles <= 2; ++tiles) {
    const int lk = 64 * tiles;
    const std::vector<int8_t> q = RandomInt8(64 * kD, 5);
    const std::vector<int8_t> k = RandomInt8(static_cast<size_t>(lk) * kD, 6);
    const std::vector<int8_t> v = RandomInt8(static_cast<size_t>(lk) * kD, 7);
    std::vector<int8_t> out(q.size());
    const SeqAttentionArgs args{
        .q = q.data(),
        .k = k.data(),
        .v = v.data(),
        .out = out.data(),
        .n = 1,
        .lq = 64,
        .lk = lk,
        .causal = false,
        .score_scale = QuantizeScoreScale(0.125),
        .output_scale = online::QuantizeOutputScale(1.0)};
    Profile p;
    {
      CountScope scope(&p);
      attention_vec::AttentionSeqVec(args, 0, 1);
    }
    cycles[tiles - 1] = ProfileCycles(p);
  }
  *per_step = cycles[1] - cycles[0];
  *per_unit = cycles[0];
}

// attention_stream_kernel.cc's attention_stream_step on the scalar unit: a
// full step is one key tile's loops (CountScalarKeyTile) plus the fold of each
// row into the resident state, MixWeights (two 64-bit products) and MixValue
// per value (two 64-bit products, which AIE2 emulates, a rounding shift and a
// store). A unit of one step adds the output stage: OutputValue per value
// (one 64-bit product, round, clamp).
void CountScalarAttentionStream(double* per_unit, double* per_step) {
  constexpr uint64_t n = 64, d = 64;
  OpCounts step = CountScalarKeyTile();
  step.muldi3 += n * 2;
  step.scalar += n * 30;
  step.muldi3 += n * d * 2;
  step.scalar += n * d * 6;
  step.scalar_mem += n * d * 3;
  OpCounts unit;
  unit.muldi3 += n * d;
  unit.scalar += n * d * 6 + n * 4;
  unit.scalar_mem += n * d * 2;
  *per_step = RegionCycles(step);
  *per_unit = RegionCycles(unit) + *per_step;
}

Profile CountVectorPassthrough() {
  // 64 loads and 64 stores of 512 bits in one pipelined loop.
  Profile p;
  p.region[0].loads = 64;
  p.region[0].load_bits = 64 * 512;
  p.region[0].stores = 64;
  p.region[0].store_bits = 64 * 512;
  p.region[0].loops = 1;
  return p;
}

KernelCost Compute(std::string_view name, Variant variant) {
  KernelCost c;
  Profile p;
  const bool vector = variant == Variant::kVector;
  if (vector && (name == "mel" || name == "mel_pcm" || name == "mel128" ||
                 name == "mel128_pcm")) {
    c.items_per_call = kMelVecLanes;
  }
  if (name == "mel") {
    p = vector ? CountVectorMel<int8_t>(cpu::MelFramesVec, mel::kMelBands)
               : OneRegion(CountScalarMel<mel::kMelBands>(LogStage::kInt8));
  } else if (name == "mel_pcm") {
    p = vector ? CountVectorMel<int16_t>(cpu::MelPcmFramesVec, mel::kMelBands)
               : OneRegion(CountScalarMel<mel::kMelBands>(LogStage::kQ8));
  } else if (name == "mel128") {
    p = vector ? CountVectorMel<int8_t>(cpu::Mel128FramesVec, mel::kMel128Bands)
               : OneRegion(CountScalarMel<mel::kMel128Bands>(LogStage::kInt8));
  } else if (name == "mel128_pcm") {
    p = vector ? CountVectorMel<int16_t>(cpu::Mel128PcmFramesVec,
                                         mel::kMel128Bands)
               : OneRegion(CountScalarMel<mel::kMel128Bands>(LogStage::kQ8));
  } else if (name == "attention") {
    p = variant == Variant::kVector ? CountVectorAttention()
                                    : OneRegion(CountScalarAttention());
  } else if (name == "attention_stream") {
    if (vector) {
      CountVectorAttentionStream(&c.cycles_per_call, &c.cycles_per_step);
    } else {
      CountScalarAttentionStream(&c.cycles_per_call, &c.cycles_per_step);
    }
    c.known = true;
    return c;
  } else if (name == "passthrough") {
    p = variant == Variant::kVector ? CountVectorPassthrough()
                                    : OneRegion(CountScalarPassthrough());
  } else {
    return c;
  }
  c.known = true;
  c.cycles_per_call = ProfileCycles(p);
  return c;
}

}  // namespace

KernelCost CostOf(std::string_view name, Variant variant) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* cache =
      new std::map<std::pair<std::string, Variant>, KernelCost>;
  absl::MutexLock lock(&mu);
  const auto key = std::make_pair(std::string(name), variant);
  auto it = cache->find(key);
  if (it == cache->end())
    it = cache->emplace(key, Compute(name, variant)).first;
  return it->second;
}

double StepCycles(const KernelCost& cost, uint64_t rounds,
                  uint64_t round_steps) {
  if (!cost.known) return 0;
  if (round_steps < rounds) return 0;  // not a run of this model
  return static_cast<double>(rounds) * cost.cycles_per_call +
         static_cast<double>(round_steps - rounds) * cost.cycles_per_step;
}

double CoreCycles(const KernelCost& cost, uint64_t items, int cores) {
  if (!cost.known || items == 0) return 0;
  const uint64_t c = cores < 1 ? 1 : static_cast<uint64_t>(cores);
  const uint64_t per_core = (items + c - 1) / c;
  const uint64_t per_call = static_cast<uint64_t>(cost.items_per_call);
  const uint64_t calls = (per_core + per_call - 1) / per_call;
  return static_cast<double>(calls) * cost.cycles_per_call;
}

SeqAttentionModel ModelSeqAttention(int heads, int lq, int lk, bool causal,
                                    int cores, double dma_bytes_per_s,
                                    const Aie2Params& p) {
  SeqAttentionModel m;
  if (heads < 1 || lq < 1 || lk < 1 || cores < 1) return m;
  constexpr int kD = 64;
  // One head with deterministic bytes; the counts do not depend on them.
  std::vector<int8_t> q(static_cast<size_t>(lq) * kD);
  std::vector<int8_t> k(static_cast<size_t>(lk) * kD);
  std::vector<int8_t> v(static_cast<size_t>(lk) * kD);
  std::vector<int8_t> out(q.size());
  std::mt19937 rng(3);
  for (auto* x : {&q, &k, &v}) {
    for (int8_t& b : *x) b = static_cast<int8_t>(rng());
  }
  const SeqAttentionArgs args{.q = q.data(),
                              .k = k.data(),
                              .v = v.data(),
                              .out = out.data(),
                              .n = 1,
                              .lq = lq,
                              .lk = lk,
                              .causal = causal,
                              .score_scale = QuantizeScoreScale(0.125),
                              .output_scale = online::QuantizeOutputScale(1.0)};
  const int units = SeqTiles(lq);
  std::vector<double> unit_cycles(static_cast<size_t>(units));
  for (int u = 0; u < units; ++u) {
    Profile prof;
    {
      CountScope scope(&prof);
      attention_vec::AttentionSeqVec(args, static_cast<size_t>(u), 1);
    }
    unit_cycles[static_cast<size_t>(u)] = ProfileCycles(prof, p);
  }
  // Least loaded core first, the longest units first (LPT).
  std::vector<double> all;
  all.reserve(static_cast<size_t>(heads) * unit_cycles.size());
  for (int h = 0; h < heads; ++h) {
    all.insert(all.end(), unit_cycles.begin(), unit_cycles.end());
  }
  std::sort(all.begin(), all.end(), std::greater<>());
  std::priority_queue<double, std::vector<double>, std::greater<>> load;
  for (int c = 0; c < cores; ++c) load.push(0);
  double total = 0;
  for (double u : all) {
    const double least = load.top();
    load.pop();
    load.push(least + u);
    total += u;
  }
  while (load.size() > 1) load.pop();
  m.core_cycles = load.top();
  m.tile_pairs = static_cast<uint64_t>(heads) * SeqTilePairs(lq, lk, causal);
  m.cycles_per_pair = total / static_cast<double>(m.tile_pairs);
  // Per pair a K and a V tile (4 KB each); per unit Q in and out (4 KB each).
  m.dma_bytes = m.tile_pairs * 2 * kD * kD +
                static_cast<uint64_t>(heads) * units * 2 * kD * kD;
  m.compute_s = m.core_cycles / p.clock_hz;
  m.dma_s = static_cast<double>(m.dma_bytes) / dma_bytes_per_s;
  m.seconds = std::max(m.compute_s, m.dma_s);
  return m;
}

}  // namespace npuk::vec
