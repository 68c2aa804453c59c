// The real npukd on npu-sim with the simulated NPU's own faults
// (--npu_sim_fault=KIND:RATE, server/device/npu_sim/README.md): 10 s of
// mixed load over every model, unary and streaming. Unlike --fault (a
// decorator in front of the backend), these go through the xrt backend's
// own handling of what amdxdna does: a hung command the TDR ends after 2 s
// (TIMEOUT, and ABORT for the commands queued behind it on the context),
// ERT_CMD_STATE_ERROR, a cold start after autosuspend.
//
// Must hold for each kind: the daemon never crashes or hangs, every request
// gets exactly one answer (OK with the exact bytes, or UNAVAILABLE for a
// device failure), health reflects the fault (hang, error: a model goes
// NOT_SERVING at some point; cold: nothing fails, the cold runs are logged)
// and recovers once the load stops.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using Clock = std::chrono::steady_clock;

constexpr auto kLoad = std::chrono::seconds(10);
constexpr int kDeadlineMs = 15000;

struct Tally {
  std::mutex mu;
  std::map<std::string, int> codes;  // per status code name
  int sent = 0, answered = 0, wrong = 0, unexpected = 0;
  int stream_ids = 0, stream_missing = 0, stream_duplicate = 0;
  int64_t max_latency_ms = 0;
  std::vector<std::string> notes;
  void Note(std::string s) {
    if (notes.size() < 10) notes.push_back(std::move(s));
  }
};

std::string CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::OK:
      return "OK";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    default:
      return absl::StrCat("code ", static_cast<int>(c));
  }
}

const std::vector<std::string>& Models() {
  static const std::vector<std::string> models = {"mel", "attention",
                                                  "passthrough"};
  return models;
}

Sample SampleFor(const std::string& model, std::mt19937& rng) {
  if (model == "mel") return MelSample(rng, 1 + rng() % 16);
  if (model == "attention") return AttentionSample(rng, 1 + rng() % 2);
  return PassthroughSample(rng, 1 + rng() % 4);
}

class NpuSimFaultDaemon : public ::testing::TestWithParam<std::string> {};

TEST_P(NpuSimFaultDaemon, EveryRequestAnsweredOnceHealthReflectsAndRecovers) {
  const std::string kind = GetParam();
  DaemonProcess d({"--backend=npu-sim", "--npu_sim_fault=" + kind + ":0.05",
                   "--health_interval=300ms"});
  for (const std::string& m : Models()) {
    // A start-up canary may have hit the fault; one passing is enough.
    ASSERT_TRUE(WaitForServing(*d.channel(), m, true, 20000)) << m << "\n"
                                                              << d.log();
  }

  Tally tally;
  std::atomic<bool> stop{false};
  auto record = [&](const std::string& model, const grpc::Status& s,
                    const std::string& got, const std::string& expected,
                    int64_t latency_ms) {
    std::lock_guard<std::mutex> lock(tally.mu);
    ++tally.answered;
    ++tally.codes[CodeName(s.error_code())];
    tally.max_latency_ms = std::max(tally.max_latency_ms, latency_ms);
    if (s.ok()) {
      if (got != expected) {
        ++tally.wrong;
        tally.Note(model + ": wrong bytes");
      }
      return;
    }
    // A device failure is UNAVAILABLE (retryable); with the cold fault
    // nothing may fail at all.
    if (kind == "cold" || s.error_code() != grpc::UNAVAILABLE) {
      ++tally.unexpected;
      tally.Note(absl::StrCat(model, ": ", CodeName(s.error_code()), " ",
                              s.error_message()));
    }
  };

  // Health, watched throughout.
  std::map<std::string, int> not_serving;
  std::thread watcher([&] {
    while (!stop.load()) {
      for (const std::string& m : Models()) {
        if (HealthCheck(*d.channel(), m) == "NOT_SERVING") {
          std::lock_guard<std::mutex> lock(tally.mu);
          ++not_serving[m];
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  std::vector<std::thread> clients;
  for (size_t c = 0; c < 2 * Models().size(); ++c) {
    clients.emplace_back([&, c] {
      const std::string& model = Models()[c % Models().size()];
      std::mt19937 rng(500 + c);
      std::vector<Sample> pool;
      for (int i = 0; i < 4; ++i) pool.push_back(SampleFor(model, rng));
      auto stub = d.stub();
      for (size_t i = 0; !stop.load(); ++i) {
        const Sample& s = pool[i % pool.size()];
        {
          std::lock_guard<std::mutex> lock(tally.mu);
          ++tally.sent;
        }
        const auto t0 = Clock::now();
        ModelInferResponse resp;
        const grpc::Status st = Infer(*stub, s.request, &resp, kDeadlineMs);
        record(model, st,
               st.ok() && resp.raw_output_contents_size() == 1
                   ? resp.raw_output_contents(0)
                   : std::string(),
               s.expected,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   Clock::now() - t0)
                   .count());
      }
    });
  }
  // One streaming client: bursts of 4 mel requests, each id answered once.
  clients.emplace_back([&] {
    std::mt19937 rng(900);
    std::vector<Sample> pool;
    for (int i = 0; i < 4; ++i) pool.push_back(MelSample(rng, 1 + i));
    auto stub = d.stub();
    for (int burst = 0; !stop.load(); ++burst) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(kDeadlineMs));
      auto stream = stub->ModelStreamInfer(&ctx);
      std::map<std::string, int> answers;
      std::map<std::string, const Sample*> sent;
      const auto t0 = Clock::now();
      for (int i = 0; i < 4; ++i) {
        ModelInferRequest r = pool[i].request;
        r.set_id(absl::StrCat("b", burst, "-", i));
        sent[r.id()] = &pool[i];
        answers[r.id()] = 0;
        {
          std::lock_guard<std::mutex> lock(tally.mu);
          ++tally.sent;
        }
        if (!stream->Write(r)) break;
      }
      stream->WritesDone();
      inference::ModelStreamInferResponse resp;
      while (stream->Read(&resp)) {
        const std::string& id = resp.infer_response().id();
        if (!sent.count(id)) {
          std::lock_guard<std::mutex> lock(tally.mu);
          ++tally.unexpected;
          tally.Note("stream: unknown id " + id);
          continue;
        }
        ++answers[id];
        const std::string& m = resp.error_message();
        const grpc::Status st =
            m.empty() ? grpc::Status::OK
            : m.find("UNAVAILABLE") != std::string::npos ||
                    m.find("NOT_SERVING") != std::string::npos ||
                    m.find("retried") != std::string::npos
                ? grpc::Status(grpc::UNAVAILABLE, m)
                : grpc::Status(grpc::INTERNAL, m);
        record("mel", st,
               st.ok() && resp.infer_response().raw_output_contents_size()
                   ? resp.infer_response().raw_output_contents(0)
                   : std::string(),
               sent[id]->expected,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   Clock::now() - t0)
                   .count());
      }
      const grpc::Status fin = stream->Finish();
      std::lock_guard<std::mutex> lock(tally.mu);
      if (!fin.ok()) {
        ++tally.unexpected;
        tally.Note("stream finished " + CodeName(fin.error_code()) + " " +
                   fin.error_message());
      }
      for (const auto& [id, n] : answers) {
        ++tally.stream_ids;
        if (n == 0) ++tally.stream_missing;
        if (n > 1) ++tally.stream_duplicate;
      }
    }
  });

  std::this_thread::sleep_for(kLoad);
  stop.store(true);
  // Never hangs: every client returns within a request deadline.
  const auto join_by = Clock::now() + std::chrono::milliseconds(kDeadlineMs);
  for (auto& t : clients) t.join();
  watcher.join();
  EXPECT_LT(Clock::now(), join_by) << "clients were still waiting";
  // Never crashes: the same process still answers.
  EXPECT_EQ(::kill(d.pid(), 0), 0) << d.log();
  EXPECT_EQ(HealthCheck(*d.channel(), "").rfind("error", 0), std::string::npos)
      << d.log();

  // Reflects: a canary that meets the fault (one in the failing batch, or
  // queued behind a hung command) turns its model NOT_SERVING; the monitor
  // logs every such transition. Under load most canaries wait out a wedge
  // in the queue and pass on the restarted context, so if none met the
  // fault yet, keep watching the canaries alone (each is a command with a
  // 5% chance) for up to 15 s.
  const std::string kNotServing = "NOT_SERVING:";
  if (kind != "cold") {
    const auto give_up = Clock::now() + std::chrono::seconds(15);
    while (d.log().find(kNotServing) == std::string::npos &&
           Clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  // Recovers: with the load gone, every model serves again.
  for (const std::string& m : Models()) {
    EXPECT_TRUE(WaitForServing(*d.channel(), m, true, 20000)) << m;
  }

  std::string codes;
  for (const auto& [k, v] : tally.codes)
    absl::StrAppend(&codes, k, "=", v, " ");
  std::string ns;
  for (const auto& [m, v] : not_serving) absl::StrAppend(&ns, m, "=", v, " ");
  const std::string log = d.log();
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos;
         at = log.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  std::cout << "[ npu_sim_fault " << kind << ":0.05 ] sent " << tally.sent
            << ", answered " << tally.answered << ": " << codes
            << "| stream ids " << tally.stream_ids << " (missing "
            << tally.stream_missing << ", duplicate " << tally.stream_duplicate
            << "), max latency " << tally.max_latency_ms
            << " ms, NOT_SERVING polls: " << ns
            << "| log: " << count(kNotServing) << " NOT_SERVING, "
            << count("driver's TDR") << " TDR waits, "
            << count("ERT_CMD_STATE_ERROR") << " ERROR, " << count("cold start")
            << " cold-start notes\n";
  for (const std::string& n : tally.notes) std::cout << "  note: " << n << "\n";

  EXPECT_EQ(tally.answered, tally.sent) << "a request got no answer";
  EXPECT_EQ(tally.stream_missing, 0);
  EXPECT_EQ(tally.stream_duplicate, 0);
  EXPECT_EQ(tally.wrong, 0);
  EXPECT_EQ(tally.unexpected, 0);
  EXPECT_GT(tally.codes["OK"], 0);
  EXPECT_LT(tally.max_latency_ms, kDeadlineMs);
  if (kind == "cold") {
    // A cold start is slow, not broken: nothing fails, nothing flips, and
    // the backend names the slow runs.
    EXPECT_TRUE(not_serving.empty()) << ns;
    EXPECT_EQ(count(kNotServing), 0u) << log;
    EXPECT_GT(count("cold start"), 0u) << log;
  } else {
    EXPECT_GT(count(kNotServing), 0u)
        << "health never reflected the " << kind << " fault";
    EXPECT_GT(tally.codes["UNAVAILABLE"], 0);
    EXPECT_GT(count(kind == "hang" ? "driver's TDR" : "ERT_CMD_STATE_ERROR"),
              0u);
  }
  EXPECT_EQ(log.find("destructed while command is still in progress"),
            std::string::npos);
  EXPECT_EQ(d.Stop(SIGTERM), 0) << log;
}

INSTANTIATE_TEST_SUITE_P(Kinds, NpuSimFaultDaemon,
                         ::testing::Values("hang", "cold", "error"),
                         [](const auto& info) { return info.param; });

TEST(NpuSimFaultFlag, BadValueStopsTheDaemonWithTheReason) {
  // DaemonProcess expects a live daemon; run the binary directly.
  const std::string cmd = NpukdBinary() +
                          " --backend=npu-sim --npu_sim_fault=melt:0.5 "
                          "--listen=unix:/tmp/npukd-badfault.sock 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("unknown kind \"melt\""), std::string::npos) << out;
  EXPECT_NE(out.find("KIND[:RATE]"), std::string::npos) << out;
}

}  // namespace
}  // namespace npuk::testing
