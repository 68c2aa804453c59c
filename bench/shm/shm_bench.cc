// Shared-memory bench (issue 12): 100-frame mel requests to one npukd (CPU
// backend, unix socket in a temp dir) through npuk::Client with plain gRPC
// and with Triton's system shared memory, interleaved in blocks so both see
// the same machine; prints per-request round trip (median, p90), requests/s
// and the ratios. Also a 3000-frame (30 s window) case. Sequential, c=1.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/cpp/client.h"

extern char** environ;

#ifndef NPUKD_PATH
#define NPUKD_PATH ""
#endif

ABSL_FLAG(std::string, npukd, NPUKD_PATH, "npukd binary");
ABSL_FLAG(int32_t, requests, 3000, "requests per transport (100 frames)");
ABSL_FLAG(int32_t, large_requests, 200, "requests per transport (3000 frames)");

namespace npuk {
namespace {

struct Figures {
  double median_us = 0, p90_us = 0, per_s = 0;
};

Figures Summarize(std::vector<double> us, absl::Duration wall) {
  std::sort(us.begin(), us.end());
  Figures f;
  f.median_us = us[us.size() / 2];
  f.p90_us = us[us.size() * 9 / 10];
  f.per_s = static_cast<double>(us.size()) / absl::ToDoubleSeconds(wall);
  return f;
}

// Sends `n` requests of `frames` frames through each client, alternating in
// blocks of 50. False (after printing why) on any error or mismatch.
bool Run(Client& plain, Client& shm, size_t frames, int n, const char* label) {
  std::vector<int16_t> audio(frames * 400);
  std::mt19937 rng(7);
  for (auto& s : audio) s = static_cast<int16_t>(rng() & 0xffff);
  auto want = plain.Mel(audio);
  if (!want.ok()) {
    std::fprintf(stderr, "plain mel: %s\n", want.status().ToString().c_str());
    return false;
  }
  std::vector<double> t_plain, t_shm;
  absl::Duration wall_plain, wall_shm;
  for (int done = 0; done < n;) {
    const int block = std::min(50, n - done);
    for (int which = 0; which < 2; ++which) {
      Client& c = which == 0 ? plain : shm;
      auto& times = which == 0 ? t_plain : t_shm;
      const absl::Time start = absl::Now();
      for (int i = 0; i < block; ++i) {
        auto r = c.Mel(audio);
        if (!r.ok() || r->log_mel != want->log_mel) {
          std::fprintf(stderr, "%s mel: %s\n", which == 0 ? "plain" : "shm",
                       r.ok() ? "bytes differ from plain gRPC"
                              : r.status().ToString().c_str());
          return false;
        }
        times.push_back(absl::ToDoubleMicroseconds(r->timing.round_trip));
      }
      (which == 0 ? wall_plain : wall_shm) += absl::Now() - start;
    }
    done += block;
  }
  const Figures p = Summarize(t_plain, wall_plain);
  const Figures s = Summarize(t_shm, wall_shm);
  std::printf(
      "%s, %d requests each, c=1:\n"
      "  plain gRPC     median %8.1f us  p90 %8.1f us  %8.1f req/s\n"
      "  shared memory  median %8.1f us  p90 %8.1f us  %8.1f req/s\n"
      "  ratio (plain/shm): median latency %.2fx, throughput %.2fx\n",
      label, n, p.median_us, p.p90_us, p.per_s, s.median_us, s.p90_us, s.per_s,
      p.median_us / s.median_us, s.per_s / p.per_s);
  return true;
}

int Main() {
  const std::string dir = std::filesystem::temp_directory_path() /
                          absl::StrFormat("npuk-shm-bench-%d", getpid());
  std::filesystem::create_directories(dir);
  const std::string target = "unix:" + dir + "/npukd.sock";
  std::string bin = absl::GetFlag(FLAGS_npukd);
  std::vector<std::string> args = {bin, "--listen=" + target, "--backend=cpu",
                                   "--max_batch_frames=mel:3000"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string log = dir + "/npukd.log";
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    std::fprintf(stderr, "cannot start npukd (%s): %s; pass --npukd\n",
                 bin.c_str(), std::strerror(rc));
    return 1;
  }
  int status = 1;
  {
    auto plain = Client::Connect({.target = target,
                                  .timeout = absl::Seconds(30),
                                  .shared_memory = false});
    auto shm = Client::Connect({.target = target,
                                .timeout = absl::Seconds(30),
                                .shared_memory = true});
    bool ready = false;
    for (int i = 0; i < 600 && !ready; ++i) {
      auto h = (*plain)->Health();
      ready = h.ok() && *h == grpc::health::v1::HealthCheckResponse::SERVING;
      if (!ready) absl::SleepFor(absl::Milliseconds(50));
    }
    if (!ready) {
      std::fprintf(stderr, "npukd not serving within 30 s; log in %s\n",
                   log.c_str());
    } else {
      std::printf(
          "npukd --backend=cpu on a unix socket; npuk::Client Mel(); round "
          "trip includes the CPU backend's compute\n");
      if (Run(**plain, **shm, 100, absl::GetFlag(FLAGS_requests),
              "mel 100 frames (80 KB in, 8 KB out)") &&
          Run(**plain, **shm, 3000, absl::GetFlag(FLAGS_large_requests),
              "mel 3000 frames (2.4 MB in, 240 KB out)")) {
        const ShmTransport* t = (*shm)->shared_memory();
        std::printf(
            "shared-memory client: %lld requests by region, %lld "
            "plain fallbacks\n",
            static_cast<long long>(t->shm_requests()),
            static_cast<long long>(t->fallbacks()));
        status = t->fallbacks() == 0 ? 0 : 1;
      }
    }
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  return status;
}

}  // namespace
}  // namespace npuk

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "100-frame mel through npuk::Client, plain gRPC vs system shared "
      "memory, one run; prints medians, throughput and ratios");
  absl::ParseCommandLine(argc, argv);
  return npuk::Main();
}
