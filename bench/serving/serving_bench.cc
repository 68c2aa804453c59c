// One command for issue 3's serving figures: starts npukd (CPU backend) and
// the bare echo server on unix sockets in a temp dir, drives both with the
// same load generator as `npukctl bench`, prints figures and ratios, and
// stops its servers. Bounded at roughly 40 s.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/cpp/client.h"
#include "client/cpp/loadgen.h"
#include "client/cpp/log_mel.h"

extern char** environ;

#ifndef NPUKD_PATH
#define NPUKD_PATH ""
#endif
#ifndef NPUK_ECHO_PATH
#define NPUK_ECHO_PATH ""
#endif

ABSL_FLAG(std::string, npukd, NPUKD_PATH, "npukd binary");
ABSL_FLAG(std::string, echo, NPUK_ECHO_PATH, "npuk_echo_server binary");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(4),
          "measurement time of each scenario");
ABSL_FLAG(int32_t, concurrency, 32, "concurrency of the throughput scenarios");
ABSL_FLAG(int32_t, large_concurrency, 4,
          "concurrency of the 100-frame scenario");
ABSL_FLAG(int32_t, channels, 1, "client connections per scenario");

namespace npuk {
namespace {

// A server process whose output goes to a log file in the bench's temp dir.
class Child {
 public:
  Child(std::string name, std::vector<std::string> argv, std::string log)
      : name_(std::move(name)), argv_(std::move(argv)), log_(std::move(log)) {}
  ~Child() { Stop(); }

  absl::Status Start() {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> argv;
    for (auto& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc =
        posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrFormat("cannot start %s (%s): %s; build it or pass its path",
                          name_, argv_[0], std::strerror(rc)));
    }
    return absl::OkStatus();
  }

  // Waits until the server answers ServerReady(true) on `target`.
  absl::Status WaitReady(const std::string& target,
                         absl::Duration limit = absl::Seconds(30)) {
    auto client =
        Client::Connect({.target = target, .timeout = absl::Seconds(1)});
    if (!client.ok()) return client.status();
    const absl::Time give_up = absl::Now() + limit;
    while (absl::Now() < give_up) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return absl::InternalError(absl::StrFormat(
            "%s exited during start-up; its log:\n%s", name_, Log()));
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
      inference::ServerReadyResponse ready;
      if ((*client)
              ->inference()
              .ServerReady(&ctx, inference::ServerReadyRequest(), &ready)
              .ok() &&
          ready.ready()) {
        return absl::OkStatus();
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError(
        absl::StrFormat("%s not ready within %s; its log:\n%s", name_,
                        absl::FormatDuration(limit), Log()));
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 150; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string name_;
  std::vector<std::string> argv_;
  std::string log_;
  pid_t pid_ = -1;
};

struct Row {
  std::string scenario, server;
  loadgen::Spec spec;
  loadgen::Report report;
};

absl::StatusOr<Row> Measure(const std::string& scenario,
                            const std::string& server,
                            const std::string& target, int64_t frames,
                            int concurrency) {
  std::vector<int16_t> audio(frames * kMelFrameSamples);
  for (size_t i = 0; i < audio.size(); ++i) {
    audio[i] = static_cast<int16_t>(8000 * std::sin(0.17 * i));
  }
  Row row{scenario, server, {}, {}};
  row.spec.target = target;
  row.spec.request = *Client::MelRequest(audio);
  row.spec.frames_per_request = frames;
  row.spec.concurrency = concurrency;
  row.spec.channels = absl::GetFlag(FLAGS_channels);
  row.spec.duration = absl::GetFlag(FLAGS_duration);
  std::cerr << absl::StrFormat("  %-28s %-12s ...", scenario, server);
  auto report = loadgen::Run(row.spec, [](const loadgen::Progress&) {});
  if (!report.ok()) {
    std::cerr << " failed\n";
    return report.status();
  }
  std::cerr << absl::StrFormat(" %.0f req/s\n", report->requests_per_s);
  row.report = *report;
  return row;
}

void PrintRow(const Row& r) {
  std::cout << absl::StrFormat(
      "%-28s %-13s %9.0f %10.0f %8.0f %8.0f %7.1f %7.0f %8.0f %4d\n",
      r.scenario, r.server, r.report.requests_per_s, r.report.frames_per_s,
      absl::ToDoubleMicroseconds(r.report.p50),
      absl::ToDoubleMicroseconds(r.report.p99), r.report.mean_batch_frames,
      absl::ToDoubleMicroseconds(r.report.mean_queue),
      absl::ToDoubleMicroseconds(r.report.mean_compute), r.report.errors);
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "npukd vs a bare gRPC echo server, side by side on unix sockets");
  absl::ParseCommandLine(argc, argv);
  const std::string npukd = absl::GetFlag(FLAGS_npukd);
  const std::string echo = absl::GetFlag(FLAGS_echo);
  if (npukd.empty() || echo.empty()) {
    std::cerr << "serving_bench: pass --npukd=PATH and --echo=PATH (the "
                 "CMake build fills them in when both targets exist)\n";
    return 2;
  }
  char tmpl[] = "/tmp/npuk-serving-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  const std::string dir = tmpl;
  const std::string echo_sock = dir + "/echo.sock";
  const std::string npukd_sock = dir + "/npukd.sock";
  const std::string echo_t = "unix:" + echo_sock;
  const std::string npukd_t = "unix:" + npukd_sock;
  const int conc = absl::GetFlag(FLAGS_concurrency);
  const int large = absl::GetFlag(FLAGS_large_concurrency);
  const absl::Time t0 = absl::Now();

  std::vector<Row> rows;
  absl::Status unbatched_error;
  absl::Status status = [&]() -> absl::Status {
    auto add = [&](absl::StatusOr<Row> r) -> absl::Status {
      if (!r.ok()) return r.status();
      rows.push_back(*std::move(r));
      return absl::OkStatus();
    };
    Child echo_p("echo server", {echo, "--listen=" + echo_t},
                 dir + "/echo.log");
    Child npukd_p("npukd", {npukd, "--listen=" + npukd_t, "--backend=cpu"},
                  dir + "/npukd.log");
    std::cerr << "starting echo server and npukd in " << dir << "\n";
    if (auto s = echo_p.Start(); !s.ok()) return s;
    if (auto s = npukd_p.Start(); !s.ok()) return s;
    if (auto s = echo_p.WaitReady(echo_t); !s.ok()) return s;
    if (auto s = npukd_p.WaitReady(npukd_t); !s.ok()) return s;
    const std::string c = absl::StrFormat("1-frame mel, c=%d", conc);
    for (auto [name, target] :
         {std::pair{"echo", echo_t}, std::pair{"npukd", npukd_t}}) {
      if (auto s = add(Measure(c, name, target, 1, conc)); !s.ok()) return s;
    }
    for (auto [name, target] :
         {std::pair{"echo", echo_t}, std::pair{"npukd", npukd_t}}) {
      if (auto s = add(Measure("1-frame mel, c=1", name, target, 1, 1));
          !s.ok()) {
        return s;
      }
    }
    if (auto s = add(Measure(absl::StrFormat("100-frame mel, c=%d", large),
                             "npukd", npukd_t, 100, large));
        !s.ok()) {
      return s;
    }
    npukd_p.Stop();
    echo_p.Stop();
    // The same daemon with batching off: one frame per device run. A failure
    // here leaves the other figures standing.
    Child unbatched("npukd (mel:1)",
                    {npukd, "--listen=" + npukd_t, "--backend=cpu",
                     "--max_batch_frames=mel:1"},
                    dir + "/npukd-unbatched.log");
    absl::Status s = unbatched.Start();
    if (s.ok()) s = unbatched.WaitReady(npukd_t, absl::Seconds(10));
    if (s.ok()) s = add(Measure(c, "npukd mel:1", npukd_t, 1, conc));
    if (!s.ok()) unbatched_error = s;
    return absl::OkStatus();
  }();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!status.ok()) {
    std::cerr << "serving_bench: " << status << "\n";
    return 1;
  }

  std::cout << absl::StrFormat(
      "\n%-28s %-13s %9s %10s %8s %8s %7s %7s %8s %4s\n", "scenario", "server",
      "req/s", "frames/s", "p50 us", "p99 us", "batch", "queue", "compute",
      "err");
  for (const Row& r : rows) PrintRow(r);
  const auto& echo32 = rows[0].report;
  const auto& npukd32 = rows[1].report;
  const auto& echo1 = rows[2].report;
  const auto& npukd1 = rows[3].report;
  const auto& big = rows[4].report;
  const double thr = npukd32.requests_per_s / echo32.requests_per_s;
  const double lat = absl::FDivDuration(npukd1.p50, echo1.p50);
  std::string batching;
  if (rows.size() > 5) {
    const auto& unb = rows[5].report;
    batching =
        absl::StrFormat("%.2fx (mean batch %.1f vs %.1f)",
                        npukd32.frames_per_s / unb.frames_per_s,
                        npukd32.mean_batch_frames, unb.mean_batch_frames);
  } else {
    // The status ends with the daemon's log; its first line says why.
    std::string why = unbatched_error.ToString();
    const size_t first = why.find('\n');
    if (first != std::string::npos) why.resize(why.find('\n', first + 1));
    batching = absl::StrFormat("not measured: %s", why);
  }
  auto verdict = [](bool ok) { return ok ? "meets target" : "MISSES target"; };
  std::cout << absl::StrFormat(
      "\nratios (same run, same load generator):\n"
      "  npukd/echo requests/s, 1-frame mel at c=%d: %.2f  (target >= 0.70, "
      "%s)\n"
      "  npukd/echo p50 latency, 1-frame mel at c=1: %.2fx (target <= 1.5x, "
      "%s)\n"
      "  100-frame mel over a unix socket: %.0f frames/s (target >= 100000, "
      "%s)\n"
      "  frames/s with batching vs --max_batch_frames=mel:1 at c=%d: %s\n"
      "total bench time %.0f s\n",
      conc, thr, verdict(thr >= 0.70), lat, verdict(lat <= 1.5),
      big.frames_per_s, verdict(big.frames_per_s >= 100000), conc, batching,
      absl::ToDoubleSeconds(absl::Now() - t0));
  return 0;
}

}  // namespace
}  // namespace npuk

int main(int argc, char** argv) { return npuk::Main(argc, argv); }
