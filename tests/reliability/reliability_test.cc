// npukd under overload, expiring deadlines, cancellation, device faults and
// SIGTERM, end to end over its unix socket, on every backend built.
//
// Faults come from the fault decorator (--fault=mel:KIND) that npukd wraps
// around any backend, toggled at run time with SIGUSR2 (main.cc). A hang
// fault armed at start-up makes the start-up canary time out (3 s), so the
// hang-based tests start with the fault armed, disarm it, wait for SERVING,
// and re-arm it right after a canary passed: the next canary is then
// health_interval (5 s by default) away, a quiet window in which the queue
// can be filled without the canary competing for a slot.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t)
      .count();
}

size_t CountInLog(const DaemonProcess& d, const std::string& needle) {
  const std::string log = d.log();
  size_t n = 0;
  for (size_t at = log.find(needle); at != std::string::npos;
       at = log.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Sends SIGUSR2 and waits (at most 5 s) until npukd logged that it took it.
void ToggleFaults(const DaemonProcess& d) {
  const std::string needle = "SIGUSR2: fault injection";
  const size_t before = CountInLog(d, needle);
  d.Signal(SIGUSR2);
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  while (CountInLog(d, needle) == before && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(CountInLog(d, needle), before) << "SIGUSR2 not taken:\n" << d.log();
}

// One asynchronous ModelInfer whose answer is recorded when it arrives.
struct AsyncCall {
  grpc::ClientContext ctx;
  ModelInferRequest request;
  ModelInferResponse response;
  std::string expected;
  Clock::time_point sent;
  std::atomic<bool> done{false};
  grpc::Status status;
  int64_t latency_ms = -1;
};

// The callback keeps the call alive, so an early test exit is safe.
void Start(InferStub& stub, const std::shared_ptr<AsyncCall>& call,
           const Sample& sample, int deadline_ms = 30000) {
  call->request = sample.request;
  call->expected = sample.expected;
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(deadline_ms));
  call->sent = Clock::now();
  stub.async()->ModelInfer(&call->ctx, &call->request, &call->response,
                           [call](grpc::Status s) {
                             call->status = std::move(s);
                             call->latency_ms = MsSince(call->sent);
                             call->done.store(true);
                           });
}

bool WaitAll(const std::vector<std::shared_ptr<AsyncCall>>& calls,
             int timeout_ms) {
  const auto give_up = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < give_up) {
    if (std::all_of(calls.begin(), calls.end(),
                    [](const auto& c) { return c->done.load(); })) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

class ReliabilityTest : public ::testing::TestWithParam<std::string> {
 protected:
  // npukd with a mel hang fault that is armed, its metrics port known, and
  // mel SERVING: the fault was disarmed after the start-up canary timed out
  // and re-armed right after a canary passed.
  std::unique_ptr<DaemonProcess> StartHung(std::vector<std::string> extra) {
    extra.push_back("--backend=" + GetParam());
    extra.push_back("--fault=mel:hang");
    extra.push_back("--metrics=127.0.0.1:0");
    auto d = std::make_unique<DaemonProcess>(extra);
    metrics_port_ = MetricsPortFromLog(d->log_path());
    EXPECT_GT(metrics_port_, 0) << d->log();
    // The start-up canary hung: health must say so.
    EXPECT_EQ(HealthCheck(*d->channel(), "mel"), "NOT_SERVING");
    ToggleFaults(*d);  // off
    EXPECT_TRUE(WaitForServing(*d->channel(), "mel", true, 15000)) << d->log();
    ToggleFaults(*d);  // on again, right after a passing canary
    return d;
  }

  double Pending(const std::string& model = "mel") const {
    return MetricValue(ScrapeMetrics(metrics_port_),
                       "npuk_inference_pending_requests", model);
  }

  // Waits until the pending gauge satisfies `pred` (at most 3 s).
  bool WaitPending(const std::function<bool(double)>& pred) const {
    const auto give_up = Clock::now() + std::chrono::seconds(3);
    while (Clock::now() < give_up) {
      if (pred(Pending())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Executors serving mel: the config defaults (proto/config.proto,
  // `instances`), 1 on cpu and 2 on the NPU backends.
  int MelExecutors() const { return GetParam() == "cpu" ? 1 : 2; }

  // Occupies every executor with a hung mel run and returns those calls (all
  // accepted; the queue is empty unless a canary came due and took an
  // executor first, which leaves one blocker queued). Each 1-frame request is
  // sent only after the previous one was seen hanging on its executor (the
  // fault device logs the first hung run of each executor, its last report
  // being the start-up canary's, seconds ago), so no executor is still free
  // when Block returns however slowly its thread wakes: a queue filled
  // afterwards stays as it was filled.
  std::vector<std::shared_ptr<AsyncCall>> Block(const DaemonProcess& d,
                                                InferStub& stub,
                                                std::mt19937& rng) {
    const std::string needle = "hang fault on mel (";
    std::vector<std::shared_ptr<AsyncCall>> blockers;
    for (int i = 0; i < MelExecutors(); ++i) {
      const size_t before = CountInLog(d, needle);
      blockers.push_back(std::make_shared<AsyncCall>());
      Start(stub, blockers.back(), MelSample(rng, 1));
      const auto give_up = Clock::now() + std::chrono::seconds(10);
      while (CountInLog(d, needle) == before && Clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      EXPECT_GT(CountInLog(d, needle), before)
          << "blocker " << i << " never reached an executor:\n"
          << d.log();
    }
    return blockers;
  }

  int metrics_port_ = -1;
};

TEST_P(ReliabilityTest, FullQueueAnswersResourceExhaustedAtOnceAndRecovers) {
  auto d = StartHung({"--max_queue_size=mel:2"});
  auto stub = d->stub();
  std::mt19937 rng(1);
  // Every executor hangs first: an executor whose thread woke late would
  // otherwise empty the queue after the burst was refused.
  auto blockers = Block(*d, *stub, rng);
  std::vector<std::shared_ptr<AsyncCall>> calls;
  constexpr int kCalls = 40;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::make_shared<AsyncCall>());
    Start(*stub, calls.back(), MelSample(rng, 1 + i % 4));
  }
  // The device hangs: the queue holds 2, the rest must be refused without
  // waiting for anything.
  ASSERT_TRUE(WaitPending([](double p) { return p == 2; })) << Pending();
  // Wait until the count of answers stops moving (at most 3 s).
  auto answered = [&] {
    return std::count_if(calls.begin(), calls.end(),
                         [](const auto& c) { return c->done.load(); });
  };
  const auto settle = Clock::now() + std::chrono::seconds(3);
  for (auto last = answered(); Clock::now() < settle;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto now = answered();
    if (now == last && now > 0) break;
    last = now;
  }
  int exhausted = 0;
  int64_t worst_ms = 0;
  for (const auto& c : calls) {
    if (!c->done.load()) continue;
    EXPECT_EQ(c->status.error_code(), grpc::RESOURCE_EXHAUSTED)
        << c->status.error_message();
    EXPECT_THAT(c->status.error_message(), HasSubstr("queue is full (2"));
    ++exhausted;
    worst_ms = std::max(worst_ms, c->latency_ms);
  }
  EXPECT_GE(exhausted, kCalls - 2);  // at most 2 fit in the queue
  EXPECT_LT(worst_ms, 1000)
      << "RESOURCE_EXHAUSTED must not wait for the device";
  EXPECT_EQ(Pending(), 2);

  // Load drops (the device answers again): everything accepted completes
  // with the right bytes, the queue empties and new requests pass.
  ToggleFaults(*d);
  ASSERT_TRUE(WaitAll(calls, 20000));
  ASSERT_TRUE(WaitAll(blockers, 20000));
  for (const auto& c : blockers) {
    ASSERT_TRUE(c->status.ok()) << c->status.error_message();
    EXPECT_EQ(c->response.raw_output_contents(0), c->expected);
  }
  int accepted_ok = 0;
  for (const auto& c : calls) {
    if (c->status.error_code() == grpc::RESOURCE_EXHAUSTED) continue;
    ASSERT_TRUE(c->status.ok()) << c->status.error_message();
    EXPECT_EQ(c->response.raw_output_contents(0), c->expected);
    ++accepted_ok;
  }
  EXPECT_EQ(accepted_ok + exhausted, kCalls);
  EXPECT_TRUE(WaitPending([](double p) { return p == 0; }));
  for (int i = 0; i < 10; ++i) {
    const Sample s = MelSample(rng, 3);
    ModelInferResponse resp;
    ASSERT_TRUE(Infer(*stub, s.request, &resp).ok());
    EXPECT_EQ(resp.raw_output_contents(0), s.expected);
  }
  std::cout << "[ overload ] " << exhausted << " of " << kCalls
            << " refused RESOURCE_EXHAUSTED (slowest " << worst_ms << " ms), "
            << accepted_ok << " accepted and answered after recovery\n";
  EXPECT_EQ(d->Stop(SIGTERM), 0) << d->log();
}

TEST_P(ReliabilityTest, ExpiredInQueueIsDeadlineExceededAndNeverReachesDevice) {
  auto d = StartHung({});
  auto stub = d->stub();
  std::mt19937 rng(2);
  auto blockers = Block(*d, *stub, rng);
  // B1: the client's own deadline runs out while it waits in the queue.
  auto b1 = std::make_shared<AsyncCall>();
  Start(*stub, b1, MelSample(rng, 5), /*deadline_ms=*/300);
  // B2: Triton's "timeout" parameter (100 ms in the queue), generous client
  // deadline: the server itself must answer DEADLINE_EXCEEDED.
  Sample s2 = MelSample(rng, 7);
  (*s2.request.mutable_parameters())["timeout"].set_int64_param(100000);
  auto b2 = std::make_shared<AsyncCall>();
  Start(*stub, b2, s2, /*deadline_ms=*/30000);
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  while (!b1->done.load() && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(b1->done.load());
  EXPECT_EQ(b1->status.error_code(), grpc::DEADLINE_EXCEEDED);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));

  ToggleFaults(*d);  // the device answers again
  ASSERT_TRUE(WaitAll(blockers, 20000));
  const auto b2_give_up = Clock::now() + std::chrono::seconds(10);
  while (!b2->done.load() && Clock::now() < b2_give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(b2->done.load());
  EXPECT_EQ(b2->status.error_code(), grpc::DEADLINE_EXCEEDED)
      << b2->status.error_message();
  EXPECT_THAT(b2->status.error_message(),
              HasSubstr("before the request reached the device"));
  uint64_t blocked_frames = 0;
  for (const auto& c : blockers) {
    ASSERT_TRUE(c->status.ok()) << c->status.error_message();
    EXPECT_EQ(c->response.raw_output_contents(0), c->expected);
    blocked_frames += 1;
  }
  // Only the blockers' frames ran: neither B1's 5 nor B2's 7.
  EXPECT_TRUE(WaitPending([](double p) { return p == 0; }));
  const inference::ModelStatistics stats = Stats(*stub, "mel");
  EXPECT_EQ(stats.inference_count(), blocked_frames);
  EXPECT_GE(stats.inference_stats().fail().count(), 2u);
  EXPECT_EQ(d->Stop(SIGTERM), 0) << d->log();
}

TEST_P(ReliabilityTest, CancelledCallsFreeTheirQueueSlots) {
  constexpr int kQueue = 4;
  auto d = StartHung({absl::StrCat("--max_queue_size=mel:", kQueue)});
  auto stub = d->stub();
  std::mt19937 rng(3);
  auto blockers = Block(*d, *stub, rng);
  const int queued_blockers = static_cast<int>(Pending());
  // Fill the rest of the queue with calls the clients will cancel.
  std::vector<std::shared_ptr<AsyncCall>> doomed;
  for (int i = queued_blockers; i < kQueue; ++i) {
    doomed.push_back(std::make_shared<AsyncCall>());
    Start(*stub, doomed.back(), MelSample(rng, 2));
  }
  ASSERT_TRUE(WaitPending([](double p) { return p == kQueue; })) << Pending();
  {
    ModelInferResponse resp;
    const grpc::Status full = Infer(*stub, MelSample(rng, 1).request, &resp);
    EXPECT_EQ(full.error_code(), grpc::RESOURCE_EXHAUSTED);
  }
  const double before = Pending();
  for (auto& c : doomed) c->ctx.TryCancel();
  ASSERT_TRUE(WaitAll(doomed, 5000));
  for (const auto& c : doomed) {
    EXPECT_EQ(c->status.error_code(), grpc::CANCELLED);
  }
  // The cancelled calls' slots are free: as many new calls are accepted.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const double cancelled_pending = Pending();
  std::vector<std::shared_ptr<AsyncCall>> fresh;
  for (size_t i = 0; i < doomed.size(); ++i) {
    fresh.push_back(std::make_shared<AsyncCall>());
    Start(*stub, fresh.back(), MelSample(rng, 3));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (const auto& c : fresh) {
    EXPECT_FALSE(c->done.load()) << "refused: " << c->status.error_message();
  }
  const double after = Pending();
  EXPECT_EQ(after, kQueue);

  ToggleFaults(*d);
  ASSERT_TRUE(WaitAll(blockers, 20000));
  ASSERT_TRUE(WaitAll(fresh, 20000));
  uint64_t frames = 0;
  for (const auto* group : {&blockers, &fresh}) {
    for (const auto& c : *group) {
      ASSERT_TRUE(c->status.ok()) << c->status.error_message();
      EXPECT_EQ(c->response.raw_output_contents(0), c->expected);
      frames += c->request.inputs(0).shape(0);
    }
  }
  EXPECT_TRUE(WaitPending([](double p) { return p == 0; }));
  // The cancelled calls never reached the device.
  EXPECT_EQ(Stats(*stub, "mel").inference_count(), frames);
  std::cout << "[ cancel ] pending " << before << " with " << doomed.size()
            << " doomed calls queued; " << cancelled_pending
            << " after they were cancelled (purged lazily); " << after
            << " after " << fresh.size() << " new calls took their slots\n";
  EXPECT_EQ(d->Stop(SIGTERM), 0) << d->log();
}

// Sustained overload of a healthy (merely slow) device: health must not
// report the device broken because it is busy. (Before 4c6f33c the canary
// shared the bounded queue, was refused, and mel went NOT_SERVING in 45 of
// 60 samples, every request then getting UNAVAILABLE.)
TEST_P(ReliabilityTest, OverloadAloneDoesNotMarkTheModelNotServing) {
  DaemonProcess d({"--backend=" + GetParam(), "--fault=mel:slow",
                   "--max_queue_size=mel:2", "--health_interval=100ms"});
  ASSERT_TRUE(WaitForServing(*d.channel(), "mel", true, 10000));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, exhausted{0}, unavailable{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(100 + c);
      auto stub = d.stub();
      const Sample s = MelSample(rng, 1);
      while (!stop.load()) {
        ModelInferResponse resp;
        const grpc::Status st = Infer(*stub, s.request, &resp, 10000);
        if (st.ok()) {
          ++ok;
        } else if (st.error_code() == grpc::RESOURCE_EXHAUSTED) {
          ++exhausted;
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        } else if (st.error_code() == grpc::UNAVAILABLE) {
          ++unavailable;
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        } else {
          ++other;
        }
      }
    });
  }
  int not_serving_samples = 0;
  auto stub = d.stub();
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (ModelReady(*stub, "mel") != true) ++not_serving_samples;
  }
  stop.store(true);
  for (auto& t : clients) t.join();
  std::cout << "[ overload health ] ok " << ok << ", RESOURCE_EXHAUSTED "
            << exhausted << ", UNAVAILABLE " << unavailable
            << "; mel not ready in " << not_serving_samples
            << " of 60 samples\n";
  EXPECT_GT(exhausted.load(), 0) << "the test did not overload the queue";
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(not_serving_samples, 0) << "overload flipped health";
  EXPECT_EQ(unavailable.load(), 0) << "overload flipped health";
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
}

// ---------------------------------------------------------------------------
// Device faults mid-load.

struct FaultCase {
  std::string backend;
  std::string kind;
};

class FaultTest : public ::testing::TestWithParam<FaultCase> {};

struct Tally {
  std::mutex mu;
  std::map<std::string, int> codes;  // status name -> count
  int sent = 0, ok = 0, wrong = 0, false_zero = 0, unexpected = 0;
  int late_failures = 0;  // failed although sent after recovery
  int stream_ids = 0, stream_missing = 0, stream_duplicate = 0;
  std::vector<std::string> notes;
  void Note(std::string s) {
    if (notes.size() < 10) notes.push_back(std::move(s));
  }
};

std::string CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      return absl::StrCat("code ", static_cast<int>(c));
  }
}

TEST_P(FaultTest, EveryAcceptedRequestIsAnsweredOnceNeverAFalseZero) {
  const FaultCase& fc = GetParam();
  char dir[] = "/tmp/npukd-fault-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string config = std::string(dir) + "/npukd.conf";
  {
    // A timeout fault waits out the xrt run timeout; keep it short.
    std::ofstream out(config);
    out << "xrt { run_timeout_ms: 1000 }\n";
  }
  DaemonProcess d({"--backend=" + fc.backend, "--fault=mel:" + fc.kind,
                   "--health_interval=300ms", "--config=" + config});
  // Armed from the start: the start-up canary failed, and health says so.
  EXPECT_EQ(HealthCheck(*d.channel(), "mel"), "NOT_SERVING");
  EXPECT_EQ(HealthCheck(*d.channel(), "attention"), "SERVING");
  ToggleFaults(d);
  ASSERT_TRUE(WaitForServing(*d.channel(), "mel", true, 15000)) << d.log();

  Tally tally;
  std::atomic<bool> stop{false};
  // Requests sent after this instant must succeed (the backend recovered).
  std::atomic<int64_t> recovered_at_ms{std::numeric_limits<int64_t>::max()};
  const Clock::time_point t0 = Clock::now();
  const bool exact = fc.kind != "garbage";

  auto check = [&](const std::string& model, const grpc::Status& s,
                   const std::string& got, const std::string& expected,
                   int64_t sent_ms) {
    std::lock_guard<std::mutex> lock(tally.mu);
    ++tally.codes[CodeName(s.error_code())];
    if (s.ok()) {
      ++tally.ok;
      if (HasFalseZeroItem(got, expected, model == "mel" ? 80 : 4096)) {
        ++tally.false_zero;
      }
      if (got != expected) {
        ++tally.wrong;
        if (exact || model != "mel") {
          tally.Note(absl::StrCat(model, ": wrong bytes"));
        }
      }
      return;
    }
    const auto code = s.error_code();
    const bool allowed =
        model == "mel" &&
        (code == grpc::UNAVAILABLE || code == grpc::INTERNAL ||
         (fc.kind == "hang" && code == grpc::DEADLINE_EXCEEDED));
    if (!allowed) {
      ++tally.unexpected;
      tally.Note(
          absl::StrCat(model, ": ", CodeName(code), " ", s.error_message()));
    }
    if (sent_ms > recovered_at_ms.load()) {
      ++tally.late_failures;
      tally.Note(absl::StrCat(model, " after recovery: ", CodeName(code), " ",
                              s.error_message()));
    }
  };

  std::vector<std::thread> clients;
  // Unary clients: 4 on mel, 2 on attention (which has no fault).
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(200 + c);
      auto stub = d.stub();
      const std::string model = c < 4 ? "mel" : "attention";
      std::vector<Sample> pool;
      for (int i = 0; i < 4; ++i) {
        pool.push_back(model == "mel" ? MelSample(rng, 1 + rng() % 16)
                                      : AttentionSample(rng, 1 + rng() % 2));
      }
      for (int i = 0; !stop.load() && i < 100000; ++i) {
        const Sample& s = pool[i % pool.size()];
        const int64_t sent = MsSince(t0);
        ModelInferResponse resp;
        const grpc::Status st = Infer(*stub, s.request, &resp, 6000);
        {
          std::lock_guard<std::mutex> lock(tally.mu);
          ++tally.sent;
        }
        check(model, st,
              st.ok() && resp.raw_output_contents_size() == 1
                  ? resp.raw_output_contents(0)
                  : std::string(),
              s.expected, sent);
        if (!st.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  // Streaming clients: bursts of 4 mel requests, each id answered once.
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(300 + c);
      auto stub = d.stub();
      std::vector<Sample> pool;
      for (int i = 0; i < 4; ++i) pool.push_back(MelSample(rng, 1 + i));
      for (int burst = 0; !stop.load() && burst < 100000; ++burst) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(15));
        auto stream = stub->ModelStreamInfer(&ctx);
        std::map<std::string, int> answers;
        std::map<std::string, const Sample*> sent;
        const int64_t sent_ms = MsSince(t0);
        for (int i = 0; i < 4; ++i) {
          ModelInferRequest r = pool[i].request;
          r.set_id(absl::StrCat("s", c, "-", burst, "-", i));
          sent[r.id()] = &pool[i];
          answers[r.id()] = 0;
          if (!stream->Write(r)) break;
        }
        stream->WritesDone();
        inference::ModelStreamInferResponse resp;
        for (int reads = 0; reads < 16 && stream->Read(&resp); ++reads) {
          const std::string& id = resp.infer_response().id();
          if (!sent.count(id)) {
            std::lock_guard<std::mutex> lock(tally.mu);
            tally.Note("stream: unknown id " + id);
            ++tally.unexpected;
            continue;
          }
          ++answers[id];
          grpc::Status st = grpc::Status::OK;
          if (!resp.error_message().empty()) {
            // Inline errors carry only the message; classify by it.
            const std::string& m = resp.error_message();
            st = grpc::Status(
                m.find("NOT_SERVING") != std::string::npos ||
                        m.find("shutting down") != std::string::npos ||
                        m.find("UNAVAILABLE") != std::string::npos ||
                        m.find("fault") != std::string::npos
                    ? grpc::UNAVAILABLE
                    : grpc::INTERNAL,
                m);
          }
          check("mel", st,
                st.ok() && resp.infer_response().raw_output_contents_size()
                    ? resp.infer_response().raw_output_contents(0)
                    : std::string(),
                sent[id]->expected, sent_ms);
        }
        const grpc::Status fin = stream->Finish();
        std::lock_guard<std::mutex> lock(tally.mu);
        tally.sent += 4;
        if (!fin.ok()) {
          ++tally.unexpected;
          tally.Note("stream finished with " + CodeName(fin.error_code()) +
                     " " + fin.error_message());
        }
        for (const auto& [id, n] : answers) {
          ++tally.stream_ids;
          if (n == 0) ++tally.stream_missing;
          if (n > 1) ++tally.stream_duplicate;
        }
      }
    });
  }

  auto stub = d.stub();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ToggleFaults(d);  // armed mid-load
  const int64_t armed_ms = MsSince(t0);
  // Health must notice (hang: after the 3 s canary timeout).
  const bool noticed = WaitForServing(*d.channel(), "mel", false, 10000);
  const int64_t noticed_ms = MsSince(t0);
  EXPECT_TRUE(noticed) << "mel still SERVING with a " << fc.kind << " fault";
  // The fault is on mel only: attention serves throughout.
  EXPECT_EQ(HealthCheck(*d.channel(), "attention"), "SERVING");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(HealthCheck(*d.channel(), "mel"), "NOT_SERVING");
  {
    grpc::ClientContext ctx;
    inference::ServerReadyResponse ready;
    ASSERT_TRUE(
        stub->ServerReady(&ctx, inference::ServerReadyRequest(), &ready).ok());
    EXPECT_FALSE(ready.ready());
  }
  ToggleFaults(d);  // disarmed: the backend must recover
  const int64_t disarmed_ms = MsSince(t0);
  EXPECT_TRUE(WaitForServing(*d.channel(), "mel", true, 15000)) << d.log();
  const int64_t recovered_ms = MsSince(t0);
  // Requests sent from now on must all succeed with the right bytes (with
  // slack for one in flight on each client at the transition).
  recovered_at_ms.store(recovered_ms + 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop.store(true);
  for (auto& t : clients) t.join();
  EXPECT_EQ(HealthCheck(*d.channel(), ""), "SERVING");

  std::string codes;
  for (const auto& [k, v] : tally.codes)
    absl::StrAppend(&codes, k, "=", v, " ");
  std::cout << "[ fault " << fc.kind << " on " << fc.backend << " ] sent "
            << tally.sent << ": " << codes << "| wrong " << tally.wrong
            << ", false zeros " << tally.false_zero << ", stream ids "
            << tally.stream_ids << " (missing " << tally.stream_missing
            << ", duplicate " << tally.stream_duplicate << "); armed at "
            << armed_ms << " ms, NOT_SERVING after " << noticed_ms - armed_ms
            << " ms, disarmed at " << disarmed_ms << " ms, SERVING again after "
            << recovered_ms - disarmed_ms << " ms\n";
  for (const std::string& n : tally.notes) std::cout << "  note: " << n << "\n";
  EXPECT_EQ(tally.false_zero, 0) << "a client received an all-zero frame";
  if (exact) {
    EXPECT_EQ(tally.wrong, 0);
  }
  EXPECT_EQ(tally.unexpected, 0);
  EXPECT_EQ(tally.late_failures, 0);
  EXPECT_EQ(tally.stream_missing, 0);
  EXPECT_EQ(tally.stream_duplicate, 0);
  EXPECT_GT(tally.ok, 0);
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
  std::remove(config.c_str());
  ::rmdir(dir);
}

std::vector<FaultCase> FaultCases() {
  std::vector<FaultCase> cases;
  for (const std::string& b : Backends()) {
    for (const char* k : {"timeout", "error", "garbage", "zeros", "hang"}) {
      cases.push_back({b, k});
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------
// A kernel added only through the registry gets the same drills: a zeros
// fault on passthrough is caught by its canary and the zero guard, the other
// models serve on, and it recovers once the fault is disarmed.

TEST_P(ReliabilityTest, PassthroughZerosFaultIsCaughtAndOnlyPassthroughStops) {
  DaemonProcess d({"--backend=" + GetParam(), "--fault=passthrough:zeros",
                   "--health_interval=300ms"});
  EXPECT_EQ(HealthCheck(*d.channel(), "passthrough"), "NOT_SERVING");
  EXPECT_EQ(HealthCheck(*d.channel(), "mel"), "SERVING");
  EXPECT_EQ(HealthCheck(*d.channel(), "attention"), "SERVING");
  EXPECT_THAT(d.log(), HasSubstr("passthrough NOT_SERVING"));
  auto stub = d.stub();
  std::mt19937 rng(21);
  const Sample sample = PassthroughSample(rng, 3);
  ModelInferResponse resp;
  grpc::Status s = Infer(*stub, sample.request, &resp);
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("NOT_SERVING"));
  const Sample mel = MelSample(rng, 2);
  ASSERT_TRUE(Infer(*stub, mel.request, &resp).ok());
  EXPECT_EQ(resp.raw_output_contents(0), mel.expected);

  ToggleFaults(d);  // disarmed
  ASSERT_TRUE(WaitForServing(*d.channel(), "passthrough", true, 15000))
      << d.log();
  ASSERT_TRUE(Infer(*stub, sample.request, &resp).ok());
  EXPECT_TRUE(resp.raw_output_contents(0) == sample.expected);

  // Armed again while SERVING: the zero guard withholds the zeros (INTERNAL)
  // and the model goes NOT_SERVING at once -- unless the interval canary
  // noticed first, and the request is refused UNAVAILABLE. Never zeros.
  ToggleFaults(d);
  s = Infer(*stub, sample.request, &resp);
  ASSERT_FALSE(s.ok()) << "passthrough answered with the fault armed";
  if (s.error_code() == grpc::INTERNAL) {
    EXPECT_THAT(s.error_message(),
                HasSubstr("all-zero passthrough output block"));
  } else {
    EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
  }
  EXPECT_TRUE(WaitForServing(*d.channel(), "passthrough", false, 10000));
  EXPECT_EQ(HealthCheck(*d.channel(), "mel"), "SERVING");
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
}

// ---------------------------------------------------------------------------
// SIGTERM mid-load, with a slow device and streaming clients.

// Every stream the daemon took finishes OK with each of its requests
// answered once (an answer or "shutting down"). It used to end "14 Broken
// pipe" in about 1 run of 3: the drain closed connections while clients
// still had answers unread (docs/RELIABILITY.md, "Drain").
TEST_P(ReliabilityTest, SigtermMidLoadAnswersEveryAcceptedStreamRequestOnce) {
  DaemonProcess d(
      {"--backend=" + GetParam(), "--fault=mel:slow", "--drain_timeout=20s"});
  std::atomic<bool> stop{false}, sigterm_sent{false};
  std::atomic<int> answered{0}, refused{0}, missing{0}, duplicate{0}, wrong{0},
      bad_finish{0}, streams{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(400 + c);
      auto stub = d.stub();
      std::vector<Sample> pool;
      for (int i = 0; i < 3; ++i) pool.push_back(MelSample(rng, 1 + 5 * i));
      for (int burst = 0; !stop.load() && burst < 100000; ++burst) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
        auto stream = stub->ModelStreamInfer(&ctx);
        std::map<std::string, int> answers;
        std::map<std::string, const Sample*> sent;
        for (int i = 0; i < 6; ++i) {
          ModelInferRequest r = pool[i % 3].request;
          r.set_id(absl::StrCat(c, "-", burst, "-", i));
          if (!stream->Write(r)) break;
          sent[r.id()] = &pool[i % 3];
          answers[r.id()] = 0;
        }
        stream->WritesDone();
        inference::ModelStreamInferResponse resp;
        for (int reads = 0; reads < 24 && stream->Read(&resp); ++reads) {
          const std::string& id = resp.infer_response().id();
          if (!answers.count(id)) {
            ++wrong;
            continue;
          }
          ++answers[id];
          if (resp.error_message().empty()) {
            if (resp.infer_response().raw_output_contents(0) !=
                sent[id]->expected) {
              ++wrong;
            } else {
              ++answered;
            }
          } else if (resp.error_message().find("shutting down") !=
                     std::string::npos) {
            ++refused;
          } else {
            ++wrong;
          }
        }
        const grpc::Status fin = stream->Finish();
        ++streams;
        const bool got_any =
            std::any_of(answers.begin(), answers.end(),
                        [](const auto& a) { return a.second; });
        if (!fin.ok()) {
          // A stream the server never took (closed before its handler ran)
          // carries no answers; one it took must finish OK.
          if (got_any || !sigterm_sent.load()) {
            ++bad_finish;
            int n = 0;
            for (const auto& a : answers) n += a.second;
            ADD_FAILURE() << fin.error_code() << " " << fin.error_message()
                          << " (" << n << " of " << answers.size()
                          << " answers read; "
                          << (sigterm_sent.load() ? "after" : "before")
                          << " SIGTERM)";
          }
          continue;
        }
        for (const auto& [id, n] : answers) {
          if (n == 0) ++missing;
          if (n > 1) ++duplicate;
        }
        if (!got_any) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  sigterm_sent.store(true);
  const int code = d.Stop(SIGTERM);
  stop.store(true);
  for (auto& t : clients) t.join();
  std::cout << "[ sigterm streams ] " << streams << " streams: answered "
            << answered << ", refused while draining " << refused
            << ", missing " << missing << ", duplicate " << duplicate << "\n";
  EXPECT_EQ(code, 0) << d.log();
  EXPECT_GT(answered.load(), 0);
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(duplicate.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(bad_finish.load(), 0) << d.log();
}

// An idle daemon with a connected client (no call in flight) has nothing to
// drain: SIGTERM must end it promptly. (Before 4c6f33c it took ~5 s: gRPC's
// Server::Shutdown waited for the idle connection to close after GOAWAY.)
TEST_P(ReliabilityTest, SigtermWithAnIdleClientConnectedExitsPromptly) {
  DaemonProcess d({"--backend=" + GetParam(), "--drain_timeout=20s"});
  auto stub = d.stub();
  std::mt19937 rng(9);
  const Sample s = MelSample(rng, 2);
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(*stub, s.request, &resp).ok());
  const auto t = Clock::now();
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
  const int64_t ms = MsSince(t);
  std::cout << "[ idle sigterm ] exited " << ms << " ms after SIGTERM\n";
  EXPECT_LT(ms, 3000) << d.log();
}

INSTANTIATE_TEST_SUITE_P(Backends, ReliabilityTest,
                         ::testing::ValuesIn(Backends()), [](const auto& info) {
                           return BackendName(info.param);
                         });

INSTANTIATE_TEST_SUITE_P(Faults, FaultTest, ::testing::ValuesIn(FaultCases()),
                         [](const auto& info) {
                           return BackendName(info.param.backend) + "_" +
                                  info.param.kind;
                         });

}  // namespace
}  // namespace npuk::testing
