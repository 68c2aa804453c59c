// Single-thread throughput of the kernels: the kernel entries (portable
// scalar, what the AIE build compiles) and the CPU backend's dispatched
// path. Prints one JSON object; bench/kernels/run.py runs it next to
// PyTorch on the same inputs and prints the ratios.
//
//   npuk_kernels_bench [--mel FILE] [--attention FILE] [--seconds S]
//
// FILE holds raw device-layout items (800-byte frames, 12288-byte tiles);
// without one, seeded random items are used.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention/attention_kernel.h"
#include "kernels/common/score_scale.h"
#include "kernels/mel/mel_kernel.h"
#include "server/device/cpu/cpu_kernels.h"

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

}  // namespace

int main(int argc, char** argv) {
  std::string mel_path, attention_path;
  double seconds = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--mel" && i + 1 < argc) {
      mel_path = argv[++i];
    } else if (arg == "--attention" && i + 1 < argc) {
      attention_path = argv[++i];
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--mel FILE] [--attention FILE] [--seconds S]\n",
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
  std::printf(
      "{\"simd\": \"%s\", \"mel_frames\": %zu, \"attention_tiles\": %zu, "
      "\"mel_entry_per_s\": %.1f, \"mel_cpu_per_s\": %.1f, "
      "\"attention_entry_per_s\": %.1f, \"attention_cpu_per_s\": %.1f}\n",
      npuk::cpu::SimdLevel(), frames, tiles, mel_entry, mel_cpu, att_entry,
      att_cpu);
  return 0;
}
