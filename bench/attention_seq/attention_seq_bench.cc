// The CPU backend's sequence attention (cpu::AttentionSeq) on random int8
// inputs: calls per second over `--seconds`, the units of one call split
// over `--threads` threads. Prints one JSON line; bench/attention_seq/run.py
// puts it beside PyTorch in the same run.
//
//   npuk_attention_seq_bench [--n 8] [--lq 1500] [--lk 1500] [--causal]
//                            [--threads 1] [--seconds 2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/attention/attention_seq.h"
#include "kernels/common/cpu_features.h"

namespace {

constexpr char kUsage[] =
    "usage: npuk_attention_seq_bench [--n N] [--lq L] [--lk L] [--causal] "
    "[--threads T] [--seconds S]\n";

int Usage(const char* why) {
  std::fprintf(stderr, "npuk_attention_seq_bench: %s\n%s", why, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 8, lq = 1500, lk = 1500, threads = 1;
  double seconds = 2;
  bool causal = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--causal") {
      causal = true;
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
  auto call = [&] {
    std::vector<std::thread> pool;
    const size_t per = (units + threads - 1) / threads;
    for (int t = 1; t < threads; ++t) {
      const size_t first = std::min(units, t * per);
      const size_t count = std::min(per, units - first);
      pool.emplace_back(
          [&, first, count] { npuk::cpu::AttentionSeq(args, first, count); });
    }
    npuk::cpu::AttentionSeq(args, 0, std::min(per, units));
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
      "\"simd\": \"%s\", \"ms_per_call\": %.3f, \"tile_pairs_per_s\": %.1f}\n",
      n, lq, lk, causal ? "true" : "false", threads,
      npuk::cpu::AttentionSeqPath(), 1e3 * elapsed / calls,
      pairs * calls / elapsed);
  return 0;
}
