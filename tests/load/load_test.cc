// Sustained load on the real npukd: 64 concurrent clients over 8 channels,
// mixed models and request sizes (1 frame to a whole 30 s Whisper window,
// 1 to 16 attention tiles), every output compared with the CPU reference.
// Bounded: NPUK_LOAD_SECONDS (default 20; 60 for the full minute) per
// backend. Fails on any lost or wrong answer, and when the daemon's
// resident memory grows beyond noise (30% + 20 MB) between the end of the
// warm-up and the end of the run.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <mutex>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using inference::ModelInferResponse;
using Clock = std::chrono::steady_clock;

int LoadSeconds() {
  const char* v = std::getenv("NPUK_LOAD_SECONDS");
  const int s = v != nullptr ? std::atoi(v) : 20;
  return std::clamp(s, 2, 600);
}

// Inputs and their references, made once: the clients only compare bytes,
// so checking costs the daemon's CPU nothing.
struct Pool {
  std::vector<Sample> mel_small, mel_medium, mel_large, attention;
};

Pool MakePool() {
  std::mt19937 rng(7);
  Pool p;
  for (size_t frames : {1, 1, 2, 3, 4, 5, 6, 8}) {
    p.mel_small.push_back(MelSample(rng, frames));
  }
  for (size_t frames : {16, 32, 64, 120}) {
    p.mel_medium.push_back(MelSample(rng, frames));
  }
  for (size_t frames : {500, 3000}) {
    p.mel_large.push_back(MelSample(rng, frames));
  }
  for (size_t tiles : {1, 1, 2, 3, 4, 4, 8, 16}) {
    p.attention.push_back(AttentionSample(rng, tiles));
  }
  return p;
}

const Sample& Pick(const Pool& p, std::mt19937& rng) {
  const unsigned r = rng() % 1000;
  auto from = [&](const std::vector<Sample>& v) -> const Sample& {
    return v[rng() % v.size()];
  };
  if (r < 600) return from(p.mel_small);
  if (r < 760) return from(p.mel_medium);
  if (r < 770) return from(p.mel_large);
  return from(p.attention);
}

class LoadTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoadTest, SixtyFourClientsMixedModelsNothingLostNothingWrong) {
  const int seconds = LoadSeconds();
  const Pool pool = MakePool();
  DaemonProcess d({"--backend=" + GetParam()});
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 8; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("npuk.load.channel", i);  // distinct subchannels
    channels.push_back(grpc::CreateCustomChannel(
        d.target(), grpc::InsecureChannelCredentials(), args));
  }

  constexpr int kClients = 64;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> requests{0}, mel_frames{0}, tiles{0}, mel_requests{0},
      attention_requests{0}, lost{0}, wrong{0};
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(1000 + c);
      auto stub = inference::GRPCInferenceService::NewStub(channels[c % 8]);
      std::vector<double> mine;
      mine.reserve(4096);
      while (!stop.load()) {
        const Sample& s = Pick(pool, rng);
        ModelInferResponse resp;
        const auto t = Clock::now();
        const grpc::Status st = Infer(*stub, s.request, &resp, 120000);
        mine.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t)
                .count());
        const bool mel = s.request.model_name() == "mel";
        ++requests;
        ++(mel ? mel_requests : attention_requests);
        (mel ? mel_frames : tiles) += s.items;
        if (!st.ok()) {
          ++lost;
          std::lock_guard<std::mutex> lock(mu);
          if (failures.size() < 10) {
            failures.push_back(std::to_string(st.error_code()) + " " +
                               st.error_message());
          }
        } else if (resp.raw_output_contents_size() != 1 ||
                   resp.raw_output_contents(0) != s.expected) {
          ++wrong;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }

  // Warm-up: the first tenth of the run (at least 2 s) settles buffers,
  // gRPC's arenas and the allocator; resident memory is measured after it.
  const auto start = Clock::now();
  const auto warm = std::chrono::milliseconds(std::max(2000, seconds * 100));
  std::this_thread::sleep_for(warm);
  const long rss_start_kb = ResidentKb(d.pid());
  const uint64_t requests_at_warm = requests.load();
  long rss_peak_kb = rss_start_kb;
  while (Clock::now() - start < std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    rss_peak_kb = std::max(rss_peak_kb, ResidentKb(d.pid()));
  }
  const long rss_end_kb = ResidentKb(d.pid());
  stop.store(true);
  for (auto& t : clients) t.join();
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();

  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double q) {
    if (latencies_ms.empty()) return 0.0;
    const size_t i = std::min(latencies_ms.size() - 1,
                              static_cast<size_t>(q * latencies_ms.size()));
    return latencies_ms[i];
  };
  auto stub = d.stub();
  const inference::ModelStatistics mel_stats = Stats(*stub, "mel");
  const inference::ModelStatistics att_stats = Stats(*stub, "attention");
  std::cout << std::fixed << std::setprecision(1) << "[ load " << GetParam()
            << " ] " << kClients << " clients, " << elapsed
            << " s: " << requests << " requests (" << mel_requests << " mel, "
            << attention_requests << " attention), " << mel_frames
            << " mel frames + " << tiles << " attention tiles ("
            << static_cast<double>(mel_frames) / elapsed << " frames/s), lost "
            << lost << ", wrong " << wrong << "; latency p50 " << pct(0.50)
            << " ms, p99 " << pct(0.99) << " ms, max "
            << (latencies_ms.empty() ? 0 : latencies_ms.back())
            << " ms; server mel runs " << mel_stats.execution_count()
            << " (mean batch "
            << static_cast<double>(mel_stats.inference_count()) /
                   std::max<uint64_t>(1, mel_stats.execution_count())
            << " frames); VmRSS after warm-up " << rss_start_kb / 1024.0
            << " MB (" << requests_at_warm << " requests in), peak "
            << rss_peak_kb / 1024.0 << " MB, end " << rss_end_kb / 1024.0
            << " MB\n";
  for (const std::string& f : failures) std::cout << "  failure: " << f << "\n";

  EXPECT_GT(requests.load(), static_cast<uint64_t>(kClients));
  EXPECT_EQ(lost.load(), 0u);
  EXPECT_EQ(wrong.load(), 0u);
  // The server counted exactly what the clients got back (canaries apart).
  EXPECT_EQ(mel_stats.inference_count(), mel_frames.load());
  EXPECT_EQ(att_stats.inference_count(), tiles.load());
  EXPECT_EQ(mel_stats.inference_stats().success().count(), mel_requests.load());
  EXPECT_EQ(att_stats.inference_stats().success().count(),
            attention_requests.load());
  ASSERT_GT(rss_start_kb, 0);
  EXPECT_LE(rss_end_kb, rss_start_kb * 13 / 10 + 20 * 1024)
      << "resident memory grew from " << rss_start_kb << " kB to " << rss_end_kb
      << " kB";
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
}

INSTANTIATE_TEST_SUITE_P(Backends, LoadTest, ::testing::ValuesIn(Backends()),
                         [](const auto& info) {
                           return BackendName(info.param);
                         });

}  // namespace
}  // namespace npuk::testing
