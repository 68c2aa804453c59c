// REST beside gRPC on one npukd (CPU backend): the same mel request, sent
// over gRPC by the load generator of `npukctl bench` (client/cpp/loadgen)
// and over HTTP/1.1 by a closed loop on libcurl's multi interface (binary
// tensor data, Inference-Header-Content-Length), at concurrency 1 and 32.
// Prints requests/s and p50 of each, and REST/gRPC ratios measured in the
// same run. Bounded at roughly 40 s.
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/cpp/client.h"
#include "client/cpp/loadgen.h"
#include "client/cpp/log_mel.h"

extern char** environ;

#ifndef NPUKD_PATH
#define NPUKD_PATH ""
#endif

ABSL_FLAG(std::string, npukd, NPUKD_PATH, "npukd binary");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(3),
          "measurement time of each scenario");

namespace npuk {
namespace {

struct Result {
  double requests_per_s = 0;
  double p50_us = 0;
  int64_t errors = 0;
};

// Closed loop over HTTP: `concurrency` transfers always in flight on as many
// kept-alive connections; each completion starts the next.
Result RestLoad(int port, const std::string& body, size_t header_length,
                int concurrency, absl::Duration warmup,
                absl::Duration duration) {
  const std::string url =
      absl::StrFormat("http://127.0.0.1:%d/v2/models/mel/infer", port);
  const std::string header =
      absl::StrFormat("Inference-Header-Content-Length: %d", header_length);
  curl_slist* headers = curl_slist_append(nullptr, header.c_str());
  headers =
      curl_slist_append(headers, "Content-Type: application/octet-stream");
  headers = curl_slist_append(headers, "Expect:");
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(concurrency));
  struct Slot {
    CURL* easy;
    std::chrono::steady_clock::time_point start;
  };
  std::vector<Slot> slots(static_cast<size_t>(concurrency));
  auto sink = +[](char*, size_t size, size_t n, void*) { return size * n; };
  auto begin = [&](Slot& s) {
    s.start = std::chrono::steady_clock::now();
    curl_multi_add_handle(multi, s.easy);
  };
  for (Slot& s : slots) {
    s.easy = curl_easy_init();
    curl_easy_setopt(s.easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(s.easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(s.easy, CURLOPT_PRIVATE, &s);
    curl_easy_setopt(s.easy, CURLOPT_TCP_NODELAY, 1L);
    begin(s);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto measure_from = t0 + absl::ToChronoNanoseconds(warmup);
  const auto end = measure_from + absl::ToChronoNanoseconds(duration);
  std::vector<double> latencies;
  Result r;
  int in_flight = concurrency;
  while (in_flight > 0) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    bool restarted = false;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL* easy = m->easy_handle;
      const CURLcode result = m->data.result;
      Slot* s = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &s);
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      const auto now = std::chrono::steady_clock::now();
      if (s->start >= measure_from && now <= end) {
        if (result == CURLE_OK && status == 200) {
          latencies.push_back(
              std::chrono::duration<double, std::micro>(now - s->start)
                  .count());
        } else {
          ++r.errors;
        }
      }
      curl_multi_remove_handle(multi, easy);
      if (now < end) {
        begin(*s);
        restarted = true;  // drive it at once, without waiting in poll
      } else {
        --in_flight;
      }
    }
    if (in_flight > 0 && !restarted) {
      curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
  }
  for (Slot& s : slots) curl_easy_cleanup(s.easy);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  std::sort(latencies.begin(), latencies.end());
  r.requests_per_s =
      static_cast<double>(latencies.size()) / absl::ToDoubleSeconds(duration);
  r.p50_us = latencies.empty() ? 0 : latencies[latencies.size() / 2];
  return r;
}

// The binary-data REST body of a mel request: JSON header + raw audio.
std::string RestBody(const std::vector<int16_t>& audio, size_t frames,
                     size_t* header_length) {
  const std::string header = absl::StrFormat(
      "{\"inputs\":[{\"name\":\"audio\",\"datatype\":\"INT16\",\"shape\":[%d,"
      "%d],\"parameters\":{\"binary_data_size\":%d}}],\"parameters\":{"
      "\"binary_data_output\":true}}",
      frames, kMelFrameSamples, audio.size() * 2);
  *header_length = header.size();
  return header + std::string(reinterpret_cast<const char*>(audio.data()),
                              audio.size() * 2);
}

int PortFromLog(const std::string& log, const std::string& pattern) {
  for (int i = 0; i < 600; ++i) {
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    std::smatch m;
    const std::string text = s.str();
    if (std::regex_search(text, m, std::regex(pattern))) {
      return std::atoi(m[1].str().c_str());
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return -1;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "REST vs gRPC on one npukd: requests/s and p50 at c=1 and c=32");
  absl::ParseCommandLine(argc, argv);
  const std::string npukd = absl::GetFlag(FLAGS_npukd);
  if (npukd.empty()) {
    std::cerr << "rest_bench: pass --npukd=PATH\n";
    return 2;
  }
  char tmpl[] = "/tmp/npuk-rest-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  const std::string dir = tmpl;
  const std::string log = dir + "/npukd.log";
  const std::string target = "unix:" + dir + "/npukd.sock";
  std::vector<std::string> args = {npukd, "--backend=cpu", "--listen=" + target,
                                   "--http=127.0.0.1:0"};
  std::vector<char*> argv_c;
  for (auto& a : args) argv_c.push_back(a.data());
  argv_c.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv_c[0], &fa, nullptr, argv_c.data(), environ) != 0) {
    std::cerr << "cannot start " << npukd << "\n";
    return 2;
  }
  posix_spawn_file_actions_destroy(&fa);
  const int port =
      PortFromLog(log, "REST \\(KServe v2\\) on .* \\(port (\\d+)\\)");
  PortFromLog(log, "serving on (unix)");
  if (port <= 0) {
    std::cerr << "npukd did not start its REST listener; log in " << log
              << "\n";
    kill(pid, SIGKILL);
    return 1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::cout << absl::StrFormat(
      "REST vs gRPC, one npukd (cpu backend), mel requests, %s per "
      "scenario\n%-22s %11s %9s %11s %9s %9s %9s\n",
      absl::FormatDuration(absl::GetFlag(FLAGS_duration)), "scenario",
      "gRPC req/s", "gRPC p50", "REST req/s", "REST p50", "req/s x", "p50 x");
  for (const int frames : {1, 100}) {
    std::vector<int16_t> audio(static_cast<size_t>(frames) * kMelFrameSamples);
    for (size_t i = 0; i < audio.size(); ++i) {
      audio[i] = static_cast<int16_t>(8000 * std::sin(0.17 * i));
    }
    size_t header_length = 0;
    const std::string body =
        RestBody(audio, static_cast<size_t>(frames), &header_length);
    for (const int c : {1, 32}) {
      loadgen::Spec spec;
      spec.target = target;
      spec.request = *Client::MelRequest(audio);
      spec.frames_per_request = frames;
      spec.concurrency = c;
      spec.duration = absl::GetFlag(FLAGS_duration);
      auto grpc = loadgen::Run(spec, [](const loadgen::Progress&) {});
      const Result rest =
          RestLoad(port, body, header_length, c, spec.warmup, spec.duration);
      if (!grpc.ok()) {
        std::cerr << "gRPC load failed: " << grpc.status() << "\n";
        kill(pid, SIGKILL);
        return 1;
      }
      const double grpc_p50 = absl::ToDoubleMicroseconds(grpc->p50);
      std::cout << absl::StrFormat(
          "%-22s %11.0f %7.0fus %11.0f %7.0fus %9.2f %9.2f%s\n",
          absl::StrFormat("mel %d frame%s c=%d", frames, frames == 1 ? "" : "s",
                          c),
          grpc->requests_per_s, grpc_p50, rest.requests_per_s, rest.p50_us,
          rest.requests_per_s / std::max(grpc->requests_per_s, 1e-9),
          rest.p50_us / std::max(grpc_p50, 1e-9),
          rest.errors + grpc->errors > 0
              ? absl::StrFormat("  (errors: rest %d grpc %d)", rest.errors,
                                grpc->errors)
              : "");
    }
  }
  std::cout << "req/s x = REST / gRPC requests/s; p50 x = REST / gRPC median "
               "latency (same daemon, same run)\n";
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  curl_global_cleanup();
  return 0;
}

}  // namespace
}  // namespace npuk

int main(int argc, char** argv) { return npuk::Main(argc, argv); }
