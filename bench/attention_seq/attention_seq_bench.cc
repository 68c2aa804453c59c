// The CPU backend's sequence attention on random int8 inputs: calls per
// second over `--seconds`, the units of one call split over `--threads`
// threads. Prints one JSON line; bench/attention_seq/run.py puts it beside
// PyTorch in the same run. Two paths:
//   default   the kernel library, cpu::AttentionSeq (each head's key tiles
//             prepared once per thread);
//   --stream  what the daemon's CPU backend runs: the attention model's
//             units (attention_stream_units.h: q tiles and records
//             gathered into the kernel's first device argument, each
//             unit's own copy of its key tiles written into the second, in
//             rounds of 4) run by the attention_stream kernel's CPU
//             function, the rows put back; packing included, gRPC not.
//
//   npuk_attention_seq_bench [--n 8] [--lq 1500] [--lk 1500] [--causal]
//                            [--threads 1] [--seconds 2] [--stream]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "kernels/attention/attention_seq.h"
#include "kernels/attention_stream/attention_stream_units.h"
#include "kernels/common/cpu_features.h"
#include "kernels/registry/kernel_spec.h"
#include "kernels/registry/registry.h"

namespace {

constexpr char kUsage[] =
    "usage: npuk_attention_seq_bench [--n N] [--lq L] [--lk L] [--causal] "
    "[--threads T] [--seconds S] [--stream]\n";

int Usage(const char* why) {
  std::fprintf(stderr, "npuk_attention_seq_bench: %s\n%s", why, kUsage);
  return 2;
}

// Units [first, first + count) of `p` as the daemon's CPU backend runs them:
// in pieces of the kernel's default run (16 units), the q tiles and records
// packed into buffers reused across pieces and calls (the daemon's piece
// pool) and gathered, the key tiles written straight into the run's
// argument (the executor buffer, InferTask::write_stepped), run and read
// back.
class StreamRunner {
 public:
  explicit StreamRunner(const npuk::KernelSpec& spec) : spec_(spec) {}

  void Run(const npuk::stream::Problem& p, size_t first, size_t count,
           int8_t* out) {
    const size_t per_run = spec_.default_max_batch;
    for (size_t at = first; at < first + count; at += per_run) {
      const size_t units = std::min(per_run, first + count - at);
      const size_t items = npuk::stream::UnitItems(units);
      q_.resize(items * npuk::kStreamMatrixBytes);
      records_.resize(items * npuk::kStreamRecordBytes);
      npuk::stream::WriteUnits(p, at, units, q_.data(), records_.data(),
                               nullptr);
      const std::vector<std::span<const uint8_t>> planes = {q_, {}, records_};
      arg0_.resize(items * spec_.arg_bytes(0));
      npuk::GatherArg(spec_, 0, planes, 0, items, arg0_.data());
      arg1_.resize(npuk::StepSpanOfPlanes(spec_, planes, items));
      npuk::stream::WriteUnits(p, at, units, nullptr, nullptr, arg1_.data());
      const uint8_t* in[] = {arg0_.data(), arg1_.data()};
      results_.resize(items * npuk::kStreamMatrixBytes);
      spec_.cpu(in, results_.data(), items);
      npuk::stream::ReadUnits(p, at, units, results_.data(), out);
    }
  }

 private:
  const npuk::KernelSpec& spec_;
  std::vector<uint8_t> q_, records_, arg0_, arg1_, results_;
};

}  // namespace

int main(int argc, char** argv) {
  int n = 8, lq = 1500, lk = 1500, threads = 1;
  double seconds = 2;
  bool causal = false;
  bool stream = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--causal" || a == "--stream") {
      (a == "--causal" ? causal : stream) = true;
      continue;
    }
    if (i + 1 >= argc) return Usage("missing value");
    const char* v = argv[++i];
    if (a == "--n") {
      n = std::atoi(v);
    } else if (a == "--lq") {
      lq = std::atoi(v);
    } else if (a == "--lk") {
      lk = std::atoi(v);
    } else if (a == "--threads") {
      threads = std::atoi(v);
    } else if (a == "--seconds") {
      seconds = std::atof(v);
    } else {
      return Usage("unknown option");
    }
  }
  if (n < 1 || lq < 1 || lk < 1 || lq > npuk::kAttentionMaxSequence ||
      lk > npuk::kAttentionMaxSequence || threads < 1 || (causal && lq > lk)) {
    return Usage(
        "need n, threads >= 1, 1 <= lq, lk <= 4096, lq <= lk "
        "when causal");
  }
  std::mt19937 rng(15);
  std::normal_distribution<double> g(0, 40);
  auto fill = [&](std::vector<int8_t>& x, size_t size) {
    x.resize(size);
    for (int8_t& b : x) {
      b = static_cast<int8_t>(std::clamp(g(rng), -127.0, 127.0));
    }
  };
  std::vector<int8_t> q, k, v, out(static_cast<size_t>(n) * lq * 64);
  fill(q, out.size());
  fill(k, static_cast<size_t>(n) * lk * 64);
  fill(v, k.size());
  const npuk::SeqAttentionArgs args{
      .q = q.data(),
      .k = k.data(),
      .v = v.data(),
      .out = out.data(),
      .n = n,
      .lq = lq,
      .lk = lk,
      .causal = causal,
      .score_scale = npuk::QuantizeScoreScale(1.0 / 2048),
      .output_scale = npuk::online::QuantizeOutputScale(0.25)};
  const size_t units = static_cast<size_t>(n) * npuk::SeqTiles(lq);
  const npuk::KernelSpec* spec = npuk::FindKernel("attention_stream");
  if (stream && spec == nullptr) return Usage("no attention_stream kernel");
  const npuk::stream::Problem problem{
      args.q, args.k,           args.v,           n, lq, lk,
      causal, args.score_scale, args.output_scale};
  // Threads take whole runs of the stream kernel (16 units).
  const size_t round = stream ? size_t{spec->default_max_batch} : 1;
  std::vector<StreamRunner> runners;
  for (int t = 0; stream && t < threads; ++t) runners.emplace_back(*spec);
  auto run = [&](int thread, size_t first, size_t count) {
    if (count == 0) return;
    if (stream) {
      runners[static_cast<size_t>(thread)].Run(problem, first, count,
                                               out.data());
    } else {
      npuk::cpu::AttentionSeq(args, first, count);
    }
  };
  auto call = [&] {
    std::vector<std::thread> pool;
    const size_t per =
        ((units + threads - 1) / threads + round - 1) / round * round;
    for (int t = 1; t < threads; ++t) {
      const size_t first = std::min(units, t * per);
      const size_t count = std::min(per, units - first);
      pool.emplace_back([&, t, first, count] { run(t, first, count); });
    }
    run(0, 0, std::min(per, units));
    for (std::thread& t : pool) t.join();
  };
  call();  // warm-up
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  size_t calls = 0;
  double elapsed = 0;
  do {
    call();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  const size_t pairs =
      static_cast<size_t>(n) * npuk::SeqTilePairs(lq, lk, causal);
  std::printf(
      "{\"n\": %d, \"lq\": %d, \"lk\": %d, \"causal\": %s, \"threads\": %d, "
      "\"path\": \"%s\", \"simd\": \"%s\", \"ms_per_call\": %.3f, "
      "\"tile_pairs_per_s\": %.1f}\n",
      n, lq, lk, causal ? "true" : "false", threads,
      stream ? "attention_stream" : "AttentionSeq",
      npuk::cpu::AttentionSeqPath(), 1e3 * elapsed / calls,
      pairs * calls / elapsed);
  return 0;
}
