// npuk::Client's asynchronous calls over system shared memory against the
// real daemon: they go through a region (the transport's counters and the
// daemon's region status say so), answer byte-identically to plain gRPC from
// many threads at once, and a call cancelled or past its deadline while the
// daemon runs it never lends its region again.
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "client/cpp/client.h"
#include "client/cpp/shm_transport.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace npuk {
namespace {

std::set<std::string> OurShmObjects() {
  std::set<std::string> out;
  const std::string prefix = absl::StrCat("npuk_", getpid(), "_");
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      if (absl::StartsWith(e->d_name, prefix)) out.insert(e->d_name);
    }
    closedir(d);
  }
  return out;
}

std::set<std::string> DaemonRegions(
    inference::GRPCInferenceService::Stub& stub) {
  grpc::ClientContext ctx;
  inference::SystemSharedMemoryStatusResponse resp;
  EXPECT_TRUE(stub.SystemSharedMemoryStatus(
                      &ctx, inference::SystemSharedMemoryStatusRequest(), &resp)
                  .ok());
  std::set<std::string> out;
  for (const auto& [name, r] : resp.regions()) out.insert(name);
  return out;
}

std::vector<int16_t> RandomFrames(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int16_t> frames(n * 400);
  for (auto& s : frames) s = static_cast<int16_t>(rng() & 0xffff);
  return frames;
}

absl::StatusOr<MelResult> MelAsyncWait(Client& c,
                                       absl::Span<const int16_t> frames,
                                       const CallOptions& call = {}) {
  absl::Notification done;
  absl::StatusOr<MelResult> out;
  c.MelAsync(frames, call, [&](absl::StatusOr<MelResult> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

TEST(ShmAsync, AsyncCallsGoThroughSharedMemory) {
  testing::DaemonProcess daemon({"--backend=cpu"});
  auto plain =
      Client::Connect({.target = daemon.target(), .shared_memory = false});
  auto shm = Client::Connect({.target = daemon.target()});
  ASSERT_TRUE(plain.ok() && shm.ok());
  const std::set<std::string> before = OurShmObjects();
  const auto frames = RandomFrames(100, 1);
  auto want = (*plain)->Mel(frames);
  ASSERT_TRUE(want.ok()) << want.status();

  auto got = MelAsyncWait(**shm, frames);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->log_mel, want->log_mel);
  const ShmTransport* t = (*shm)->shared_memory();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shm_requests(), 1);
  EXPECT_EQ(t->fallbacks(), 0);
  // The daemon has the client's region, which is our one object.
  auto stub = daemon.stub();
  const std::set<std::string> objects = OurShmObjects();
  ASSERT_EQ(objects.size(), before.size() + 1);
  std::set<std::string> ours;
  for (const auto& n : DaemonRegions(*stub)) {
    if (!before.count(n)) ours.insert(n);
  }
  EXPECT_EQ(ours.size(), 1u);
  EXPECT_TRUE(objects.count(*ours.begin())) << *ours.begin();

  // Attention too, and the sync calls share the region.
  std::vector<int8_t> q(2 * 4096), k(2 * 4096), v(2 * 4096);
  std::mt19937 rng(9);
  for (auto* x : {&q, &k, &v}) {
    for (auto& b : *x) b = static_cast<int8_t>(rng() & 0xff);
  }
  auto want_att = (*plain)->Attention(q, k, v, 0.1);
  ASSERT_TRUE(want_att.ok());
  absl::Notification done;
  absl::StatusOr<AttentionResult> att;
  (*shm)->AttentionAsync(q, k, v, 0.1, {},
                         [&](absl::StatusOr<AttentionResult> r) {
                           att = std::move(r);
                           done.Notify();
                         });
  done.WaitForNotification();
  ASSERT_TRUE(att.ok()) << att.status();
  EXPECT_EQ(att->out, want_att->out);
  auto sync = (*shm)->Mel(frames);
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ(sync->log_mel, want->log_mel);
  EXPECT_EQ(t->shm_requests(), 3);
  EXPECT_EQ(t->regions(), 1u);
  EXPECT_EQ(t->free_regions(), 1u);

  // The daemon loses the region: the async call answers plainly, the next
  // one registers a new region.
  {
    grpc::ClientContext ctx;
    inference::SystemSharedMemoryUnregisterResponse r;
    ASSERT_TRUE(
        stub->SystemSharedMemoryUnregister(
                &ctx, inference::SystemSharedMemoryUnregisterRequest(), &r)
            .ok());
  }
  auto again = MelAsyncWait(**shm, frames);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->log_mel, want->log_mel);
  EXPECT_EQ(t->fallbacks(), 1);
  auto third = MelAsyncWait(**shm, frames);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->log_mel, want->log_mel);
  EXPECT_EQ(t->shm_requests(), 4);

  shm->reset();
  EXPECT_EQ(OurShmObjects(), before);
  EXPECT_TRUE(DaemonRegions(*stub).empty());
}

TEST(ShmAsync, ManyThreadsOfAsyncCallsMatchPlain) {
  testing::DaemonProcess daemon({"--backend=cpu"});
  auto plain =
      Client::Connect({.target = daemon.target(), .shared_memory = false});
  auto shm = Client::Connect({.target = daemon.target()});
  ASSERT_TRUE(plain.ok() && shm.ok());
  const std::set<std::string> before = OurShmObjects();
  constexpr int kThreads = 4, kPerThread = 16, kCalls = kThreads * kPerThread;
  std::vector<std::vector<int16_t>> inputs;
  std::vector<std::vector<int8_t>> want;
  for (int i = 0; i < kCalls; ++i) {
    inputs.push_back(RandomFrames(1 + (i * 37) % 150, 100 + i));
    auto w = (*plain)->Mel(inputs.back());
    ASSERT_TRUE(w.ok()) << w.status();
    want.push_back(w->log_mel);
  }
  for (int round = 0; round < 2; ++round) {
    absl::BlockingCounter left(kCalls);
    std::atomic<int> same{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int j = 0; j < kPerThread; ++j) {
          const int i = t * kPerThread + j;
          (*shm)->MelAsync(inputs[i], {}, [&, i](absl::StatusOr<MelResult> r) {
            if (r.ok() && r->log_mel == want[i]) ++same;
            left.DecrementCount();
          });
        }
      });
    }
    for (auto& th : threads) th.join();
    left.Wait();
    EXPECT_EQ(same.load(), kCalls);
  }
  const ShmTransport* t = (*shm)->shared_memory();
  EXPECT_EQ(t->shm_requests() + t->fallbacks(), 2 * kCalls);
  EXPECT_GE(t->shm_requests(), 1);
  EXPECT_LE(t->regions(), ShmTransport::kMaxRegions);
  EXPECT_EQ(t->free_regions(), t->regions());
  shm->reset();
  EXPECT_EQ(OurShmObjects(), before);
}

TEST(ShmAsync, CancelledOrLateCallsRetireTheirRegion) {
  // Every mel device run takes 50 ms more, so the calls are in the daemon
  // when they are cancelled or their deadline passes.
  testing::DaemonProcess daemon({"--backend=cpu", "--fault=mel:slow"});
  auto shm = Client::Connect({.target = daemon.target()});
  ASSERT_TRUE(shm.ok());
  auto stub = daemon.stub();
  const std::set<std::string> before = OurShmObjects();
  const auto frames = RandomFrames(20, 5);
  auto first = MelAsyncWait(**shm, frames);
  ASSERT_TRUE(first.ok()) << first.status();
  const ShmTransport* t = (*shm)->shared_memory();
  ASSERT_EQ(t->regions(), 1u);
  const std::set<std::string> region = OurShmObjects();

  Cancellation cancel;
  absl::Notification done;
  absl::Status status;
  (*shm)->MelAsync(frames, {.cancellation = &cancel},
                   [&](absl::StatusOr<MelResult> r) {
                     status = r.status();
                     done.Notify();
                   });
  absl::SleepFor(absl::Milliseconds(10));
  cancel.Cancel();
  done.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  // Out of the pool before `done` ran; the next call gets a new region.
  EXPECT_EQ(t->regions(), 0u);
  auto next = MelAsyncWait(**shm, frames);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->log_mel, first->log_mel);
  EXPECT_EQ(t->regions(), 1u);
  EXPECT_FALSE(OurShmObjects().count(*region.begin()));

  // The same for a synchronous call past its deadline.
  const std::set<std::string> second = OurShmObjects();
  auto late =
      (*shm)->Mel(frames, {.deadline = absl::Now() + absl::Milliseconds(10)});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded)
      << late.status();
  EXPECT_EQ(t->regions(), 0u);
  auto after = (*shm)->Mel(frames);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->log_mel, first->log_mel);
  for (const auto& n : second) EXPECT_FALSE(OurShmObjects().count(n)) << n;

  shm->reset();  // waits for the unregistrations still running
  EXPECT_EQ(OurShmObjects(), before);
  EXPECT_TRUE(DaemonRegions(*stub).empty());
}

}  // namespace
}  // namespace npuk
