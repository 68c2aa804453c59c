// Single-thread throughput of the kernels: the kernel entries (portable
// scalar, what the AIE build compiles) and the CPU backend's dispatched
// path. Prints one JSON object; bench/kernels/run.py runs it next to
// PyTorch on the same inputs and prints the ratios.
//
//   npuk_kernels_bench [--mel FILE] [--attention FILE] [--seconds S]
//                      [--threads N]
//
// --threads N (N > 1) adds the CPU backend's paths on N threads, the items
// split in N contiguous chunks, in items per wall-clock second
// ("*_cpu_per_s_threads").
//
// FILE holds raw device-layout items (800-byte frames, 12288-byte tiles);
// without one, seeded random items are used. "registry" in the output has
// the reference and CPU path of every registered kernel (KernelSpec) on
// seeded random tensors with the default parameters.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/attention/attention_cpu.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/common/cpu_features.h"
#include "kernels/common/score_scale.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/mel/mel_kernel.h"
#include "kernels/registry/registry.h"

namespace {

// Thread CPU time, not wall time: the benchmark machines are shared, and
// run.py times PyTorch the same way (time.thread_time).
double ThreadSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s: check the path\n", path.c_str());
    std::exit(2);
  }
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Items per CPU second of fn(count) over the whole input, repeated for at
// least `seconds` of CPU time.
template <typename Fn>
double Throughput(size_t items, double seconds, Fn fn) {
  fn(items);  // warm up caches and lazily built tables
  size_t done = 0;
  const double start = ThreadSeconds();
  double elapsed = 0;
  do {
    fn(items);
    done += items;
    elapsed = ThreadSeconds() - start;
  } while (elapsed < seconds);
  return static_cast<double>(done) / elapsed;
}

// Items per wall-clock second of fn(begin, count) on `threads` threads,
// each repeating its own contiguous chunk of the items until `seconds` of
// wall time have passed (thread CPU time would hide contention).
template <typename Fn>
double ThreadedThroughput(size_t items, double seconds, int threads, Fn fn) {
  const auto chunk = [&](int t) {
    const size_t b = items * static_cast<size_t>(t) / threads;
    return std::pair<size_t, size_t>(
        b, items * static_cast<size_t>(t + 1) / threads - b);
  };
  for (int t = 0; t < threads; ++t) fn(chunk(t).first, chunk(t).second);
  using Clock = std::chrono::steady_clock;
  std::vector<size_t> done(threads, 0);
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(seconds));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const auto [b, n] = chunk(t);
      do {
        fn(b, n);
        done[t] += n;
      } while (Clock::now() < end);
    });
  }
  for (std::thread& th : pool) th.join();
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  size_t total = 0;
  for (size_t d : done) total += d;
  return static_cast<double>(total) / elapsed;
}

// "name": {"reference_per_s": R, "cpu_per_s": C} for every registered
// kernel, over `items` random items per call.
std::string RegistryThroughput(size_t items, double seconds) {
  std::vector<std::string> rows;
  uint32_t seed = 10;
  for (const npuk::KernelSpec* spec : npuk::AllKernels()) {
    std::vector<uint8_t> record(spec->param_bytes);
    if (spec->param_bytes > 0 &&
        !spec->encode_params(npuk::DefaultParams(*spec), record).ok()) {
      std::fprintf(stderr, "%s refuses its default parameters\n",
                   spec->name.c_str());
      std::exit(1);
    }
    std::vector<std::vector<uint8_t>> planes;
    for (size_t p = 0; p < spec->plane_count(); ++p) {
      if (p < spec->inputs.size()) {
        planes.push_back(RandomBytes(spec->plane_span(p, items), seed++));
      } else {
        planes.emplace_back();
        for (size_t i = 0; i < items; ++i) {
          planes.back().insert(planes.back().end(), record.begin(),
                               record.end());
        }
      }
    }
    const std::vector<std::span<const uint8_t>> views(planes.begin(),
                                                      planes.end());
    std::vector<std::vector<uint8_t>> args(spec->device_args.size());
    std::vector<const uint8_t*> in;
    for (size_t a = 0; a < args.size(); ++a) {
      args[a].resize(spec->arg_span(a, items));
      npuk::GatherArg(*spec, a, views, 0, items, args[a].data());
      in.push_back(args[a].data());
    }
    std::vector<uint8_t> out(items * spec->output_bytes());
    const double ref = Throughput(items, seconds, [&](size_t n) {
      spec->reference(in.data(), out.data(), n);
    });
    const double cpu = Throughput(
        items, seconds, [&](size_t n) { spec->cpu(in.data(), out.data(), n); });
    rows.push_back(absl::StrCat("\"", spec->name, "\": {\"", spec->units,
                                "\": ", items, ", \"reference_per_s\": ", ref,
                                ", \"cpu_per_s\": ", cpu, "}"));
  }
  return absl::StrCat("{", absl::StrJoin(rows, ", "), "}");
}

}  // namespace

int main(int argc, char** argv) {
  std::string mel_path, attention_path;
  double seconds = 1.0;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--mel" && i + 1 < argc) {
      mel_path = argv[++i];
    } else if (arg == "--attention" && i + 1 < argc) {
      attention_path = argv[++i];
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
      if (threads < 1 || threads > 1024) {
        std::fprintf(stderr, "--threads %s: give a thread count in [1, 1024]\n",
                     argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--mel FILE] [--attention FILE] [--seconds S] "
                   "[--threads N]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<uint8_t> mel_bytes =
      mel_path.empty() ? RandomBytes(2048 * 800, 1) : ReadFile(mel_path);
  std::vector<uint8_t> att_bytes = attention_path.empty()
                                       ? RandomBytes(64 * 12288, 2)
                                       : ReadFile(attention_path);
  const size_t frames = mel_bytes.size() / npuk::kMelFrameInBytes;
  const size_t tiles = att_bytes.size() / npuk::kAttentionInBytes;
  if (frames == 0 || tiles == 0) {
    std::fprintf(stderr, "inputs hold no whole frame or tile\n");
    return 2;
  }
  std::vector<int16_t> mel_in(frames * npuk::kMelFrameSamples);
  std::memcpy(mel_in.data(), mel_bytes.data(), mel_in.size() * 2);
  std::vector<int8_t> mel_out(frames * npuk::kMelBands);
  const auto* qkv = reinterpret_cast<const int8_t*>(att_bytes.data());
  std::vector<int8_t> att_out(tiles * npuk::kAttentionOutBytes);
  const std::vector<npuk::ScoreScale> scales(tiles,
                                             npuk::QuantizeScoreScale(0.0125));

  const double mel_entry = Throughput(frames, seconds, [&](size_t n) {
    npuk::cpu::MelFramesPortable(mel_in.data(), mel_out.data(), n);
  });
  const double mel_cpu = Throughput(frames, seconds, [&](size_t n) {
    npuk::cpu::MelFrames(mel_in.data(), mel_out.data(), n);
  });
  const double att_entry = Throughput(tiles, seconds, [&](size_t n) {
    npuk::cpu::AttentionTilesPortable(qkv, att_out.data(), n, scales.data());
  });
  const double att_cpu = Throughput(tiles, seconds, [&](size_t n) {
    npuk::cpu::AttentionTiles(qkv, att_out.data(), n, scales.data());
  });
  // The AVX2 path too where dispatch picks a better one: what CPUs without
  // AVX-512 (VNNI for attention) run.
  std::string avx2;
  if (npuk::cpu::HasAvx2() &&
      std::string(npuk::cpu::AttentionPath()) != "avx2") {
    const double att_avx2 = Throughput(tiles, seconds, [&](size_t n) {
      npuk::cpu::AttentionTilesAvx2(qkv, att_out.data(), n, scales.data());
    });
    avx2 = absl::StrCat("\"attention_avx2_per_s\": ", att_avx2, ", ");
  }
  // Likewise mel's AVX2 path where dispatch takes AVX-512.
  if (npuk::cpu::HasAvx2() && npuk::cpu::HasAvx512Mel()) {
    const double mel_avx2 = Throughput(frames, seconds, [&](size_t n) {
      npuk::cpu::MelFramesAvx2(mel_in.data(), mel_out.data(), n);
    });
    absl::StrAppend(&avx2, "\"mel_avx2_per_s\": ", mel_avx2, ", ");
  }
  std::string threaded;
  if (threads > 1) {
    const double mel_mt =
        ThreadedThroughput(frames, seconds, threads, [&](size_t b, size_t n) {
          npuk::cpu::MelFrames(mel_in.data() + b * npuk::kMelFrameSamples,
                               mel_out.data() + b * npuk::kMelBands, n);
        });
    const double att_mt =
        ThreadedThroughput(tiles, seconds, threads, [&](size_t b, size_t n) {
          npuk::cpu::AttentionTiles(
              qkv + b * npuk::kAttentionInBytes,
              att_out.data() + b * npuk::kAttentionOutBytes, n, &scales[b]);
        });
    threaded = absl::StrCat(
        "\"threads\": ", threads, ", \"mel_cpu_per_s_threads\": ", mel_mt,
        ", \"attention_cpu_per_s_threads\": ", att_mt, ", ");
  }
  const std::string registry = RegistryThroughput(64, seconds);
  std::printf(
      "{\"simd\": \"%s\", \"mel_path\": \"%s\", \"attention_path\": \"%s\", "
      "\"mel_frames\": %zu, "
      "\"attention_tiles\": %zu, "
      "\"mel_entry_per_s\": %.1f, \"mel_cpu_per_s\": %.1f, "
      "\"attention_entry_per_s\": %.1f, \"attention_cpu_per_s\": %.1f, "
      "%s%s\"registry\": %s}\n",
      npuk::cpu::SimdLevel(), npuk::cpu::MelSimdLevel(),
      npuk::cpu::AttentionPath(), frames, tiles, mel_entry, mel_cpu, att_entry,
      att_cpu, avx2.c_str(), threaded.c_str(), registry.c_str());
  return 0;
}
