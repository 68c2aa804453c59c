#include "server/batching/batcher.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk {
namespace {

using ::testing::ElementsAre;

// An executor whose "kernel" copies the first out_bytes of every input item
// to the output, records each run's size, and can be held inside Run.
class FakeExecutor : public Executor {
 public:
  FakeExecutor(KernelId kernel, size_t max_items)
      : kernel_(kernel),
        max_items_(max_items),
        in_(max_items * LayoutOf(kernel).in_bytes),
        out_(max_items * LayoutOf(kernel).out_bytes) {}

  KernelId kernel() const override { return kernel_; }
  size_t max_items() const override { return max_items_; }
  absl::Span<uint8_t> input() override { return absl::MakeSpan(in_); }
  absl::Span<const uint8_t> output() const override { return out_; }

  absl::Status Run(size_t n, absl::Span<const ScoreScale> scales) override {
    {
      absl::MutexLock lock(&mu_);
      runs_.push_back(n);
      for (size_t i = 0; i < n; ++i)
        first_bytes_.push_back(in_[i * LayoutOf(kernel_).in_bytes]);
      scales_seen_ = scales.size();
      entered_ = true;
      mu_.Await(absl::Condition(
          +[](bool* released) { return *released; }, &released_));
    }
    if (!fail_.ok()) return fail_;
    const KernelLayout l = LayoutOf(kernel_);
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(&out_[i * l.out_bytes], &in_[i * l.in_bytes], l.out_bytes);
    }
    return absl::OkStatus();
  }

  void Hold() {
    absl::MutexLock lock(&mu_);
    released_ = false;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  void WaitEntered() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&entered_));
  }
  std::vector<size_t> runs() {
    absl::MutexLock lock(&mu_);
    return runs_;
  }
  std::vector<uint8_t> first_bytes() {
    absl::MutexLock lock(&mu_);
    return first_bytes_;
  }
  size_t scales_seen() {
    absl::MutexLock lock(&mu_);
    return scales_seen_;
  }
  void set_fail(absl::Status s) { fail_ = std::move(s); }

 private:
  const KernelId kernel_;
  const size_t max_items_;
  std::vector<uint8_t> in_;
  std::vector<uint8_t> out_;
  absl::Status fail_;
  absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = true;
  bool entered_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<size_t> runs_ ABSL_GUARDED_BY(mu_);
  std::vector<uint8_t> first_bytes_ ABSL_GUARDED_BY(mu_);
  size_t scales_seen_ ABSL_GUARDED_BY(mu_) = 0;
};

// A mel request of `items` frames whose every input byte is `fill`.
struct Request {
  std::vector<uint8_t> in;
  std::vector<uint8_t> out;
  absl::Notification done;
  absl::Status status;
  TaskTiming timing;
  int calls = 0;
};

std::unique_ptr<InferTask> MelTask(Request& r, size_t items, uint8_t fill) {
  r.in.assign(items * 800, fill);
  r.out.assign(items * 80, 0xEE);
  auto t = std::make_unique<InferTask>();
  t->items = items;
  t->inputs = {absl::MakeConstSpan(r.in)};
  t->output = r.out.data();
  t->done = [&r](absl::Status s, const TaskTiming& timing) {
    r.status = std::move(s);
    r.timing = timing;
    ++r.calls;
    r.done.Notify();
  };
  return t;
}

struct Fixture {
  explicit Fixture(BatcherOptions options, RunVerifier* verifier = nullptr) {
    auto e = std::make_unique<FakeExecutor>(KernelId::kMel, 64);
    executor = e.get();
    std::vector<std::unique_ptr<Executor>> v;
    v.push_back(std::move(e));
    batcher = std::make_unique<Batcher>(KernelId::kMel, options, std::move(v),
                                        verifier, nullptr);
  }
  FakeExecutor* executor;
  std::unique_ptr<Batcher> batcher;
};

TEST(BatcherTest, AnswersOneTaskWithItsOwnOutput) {
  Fixture f({.max_batch_items = 8});
  Request r;
  ASSERT_TRUE(f.batcher->Submit(MelTask(r, 2, 7)).ok());
  r.done.WaitForNotification();
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.timing.batch_items, 2u);
  EXPECT_EQ(r.out, std::vector<uint8_t>(160, 7));
}

TEST(BatcherTest, BatchesFormWhileTheDeviceIsBusyAndSplitInOrder) {
  Fixture f({.max_batch_items = 64});
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  std::vector<Request> rs(10);
  for (size_t i = 0; i < rs.size(); ++i) {
    ASSERT_TRUE(
        f.batcher
            ->Submit(MelTask(rs[i], 1 + i % 3, static_cast<uint8_t>(10 + i)))
            .ok());
  }
  f.executor->Release();
  for (auto& r : rs) r.done.WaitForNotification();
  // 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2 + 3 + 1 = 19 items behind the first run.
  EXPECT_THAT(f.executor->runs(), ElementsAre(1, 19));
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_TRUE(rs[i].status.ok());
    EXPECT_EQ(rs[i].timing.batch_items, 19u);
    EXPECT_EQ(rs[i].out, std::vector<uint8_t>((1 + i % 3) * 80,
                                              static_cast<uint8_t>(10 + i)));
  }
}

TEST(BatcherTest, NeverExceedsMaxBatchItems) {
  Fixture f({.max_batch_items = 4});
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  std::vector<Request> rs(9);
  for (auto& r : rs) ASSERT_TRUE(f.batcher->Submit(MelTask(r, 1, 2)).ok());
  f.executor->Release();
  for (auto& r : rs) r.done.WaitForNotification();
  EXPECT_THAT(f.executor->runs(), ElementsAre(1, 4, 4, 1));
}

TEST(BatcherTest, RefusesOversizedAndEmptyTasks) {
  Fixture f({.max_batch_items = 4});
  Request a, b;
  absl::Status s = f.batcher->Submit(MelTask(a, 5, 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("1 to 4"));
  EXPECT_EQ(f.batcher->Submit(MelTask(b, 0, 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.calls + b.calls, 0);
}

TEST(BatcherTest, FullQueueIsResourceExhaustedAndRecovers) {
  Fixture f({.max_batch_items = 64, .max_queue_size = 2});
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  Request q1, q2, over;
  ASSERT_TRUE(f.batcher->Submit(MelTask(q1, 1, 2)).ok());
  ASSERT_TRUE(f.batcher->Submit(MelTask(q2, 1, 3)).ok());
  EXPECT_EQ(f.batcher->pending(), 2u);
  EXPECT_EQ(f.batcher->Submit(MelTask(over, 1, 4)).code(),
            absl::StatusCode::kResourceExhausted);
  f.executor->Release();
  q2.done.WaitForNotification();
  Request after;
  ASSERT_TRUE(f.batcher->Submit(MelTask(after, 1, 5)).ok());
  after.done.WaitForNotification();
  EXPECT_TRUE(after.status.ok());
  EXPECT_EQ(over.calls, 0);
}

TEST(BatcherTest, CanariesBypassAFullQueueAndGoFirst) {
  Fixture f({.max_batch_items = 1, .max_queue_size = 1});
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  Request user, canary, refused;
  ASSERT_TRUE(f.batcher->Submit(MelTask(user, 1, 2)).ok());
  EXPECT_EQ(f.batcher->Submit(MelTask(refused, 1, 3)).code(),
            absl::StatusCode::kResourceExhausted);
  auto c = MelTask(canary, 1, 4);
  c->canary = true;
  ASSERT_TRUE(f.batcher->Submit(std::move(c)).ok());
  EXPECT_EQ(f.batcher->pending(), 1u);  // canaries are not user load
  f.executor->Release();
  user.done.WaitForNotification();
  canary.done.WaitForNotification();
  EXPECT_TRUE(canary.status.ok());
  // The canary ran before the user request queued ahead of it.
  EXPECT_THAT(f.executor->first_bytes(), ElementsAre(1, 4, 2));
}

TEST(BatcherTest, CancelledAndExpiredTasksNeverReachTheDevice) {
  Fixture f({.max_batch_items = 64});
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  Request cancelled, expired, alive;
  auto c = MelTask(cancelled, 1, 0xCC);
  c->cancelled = std::make_shared<std::atomic<bool>>(false);
  auto flag = c->cancelled;
  ASSERT_TRUE(f.batcher->Submit(std::move(c)).ok());
  auto e = MelTask(expired, 1, 0xDD);
  e->deadline = absl::Now() + absl::Milliseconds(1);
  ASSERT_TRUE(f.batcher->Submit(std::move(e)).ok());
  ASSERT_TRUE(f.batcher->Submit(MelTask(alive, 1, 0xAA)).ok());
  flag->store(true);
  absl::SleepFor(absl::Milliseconds(5));
  f.executor->Release();
  for (Request* r : {&cancelled, &expired, &alive})
    r->done.WaitForNotification();
  EXPECT_EQ(cancelled.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(expired.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(alive.status.ok());
  EXPECT_THAT(f.executor->first_bytes(), ElementsAre(1, 0xAA));
}

TEST(BatcherTest, FullQueuePurgesCancelledTasksBeforeRefusing) {
  Fixture f({.max_batch_items = 64, .max_queue_size = 1});
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  Request gone, next;
  auto g = MelTask(gone, 1, 2);
  g->cancelled = std::make_shared<std::atomic<bool>>(false);
  auto flag = g->cancelled;
  ASSERT_TRUE(f.batcher->Submit(std::move(g)).ok());
  flag->store(true);
  EXPECT_TRUE(f.batcher->Submit(MelTask(next, 1, 3)).ok());
  gone.done.WaitForNotification();
  EXPECT_EQ(gone.status.code(), absl::StatusCode::kCancelled);
  f.executor->Release();
  next.done.WaitForNotification();
  EXPECT_TRUE(next.status.ok());
}

TEST(BatcherTest, DeviceErrorFailsEveryTaskOfTheRun) {
  Fixture f({.max_batch_items = 64});
  f.executor->set_fail(absl::UnavailableError("device timed out"));
  Request a;
  ASSERT_TRUE(f.batcher->Submit(MelTask(a, 3, 1)).ok());
  a.done.WaitForNotification();
  EXPECT_EQ(a.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a.calls, 1);
}

TEST(BatcherTest, DrainAnswersAcceptedTasksThenRefusesNewOnes) {
  Fixture f({.max_batch_items = 2});
  f.executor->Hold();
  std::vector<Request> rs(6);
  for (auto& r : rs) ASSERT_TRUE(f.batcher->Submit(MelTask(r, 1, 9)).ok());
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(20));
    f.executor->Release();
  });
  f.batcher->Drain();
  releaser.join();
  for (auto& r : rs) {
    EXPECT_TRUE(r.done.HasBeenNotified());
    EXPECT_TRUE(r.status.ok());
    EXPECT_EQ(r.calls, 1);
  }
  Request late;
  EXPECT_EQ(f.batcher->Submit(MelTask(late, 1, 1)).code(),
            absl::StatusCode::kUnavailable);
}

TEST(BatcherTest, QueueDelayLetsABatchFill) {
  Fixture f({.max_batch_items = 4, .max_queue_delay = absl::Seconds(2)});
  std::vector<Request> rs(4);
  for (auto& r : rs) ASSERT_TRUE(f.batcher->Submit(MelTask(r, 1, 3)).ok());
  for (auto& r : rs) r.done.WaitForNotification();
  // The batch closed because it was full, not because 2 s passed.
  EXPECT_THAT(f.executor->runs(), ElementsAre(4));
}

TEST(BatcherTest, AttentionPlanesAreInterleavedPerTile) {
  auto e = std::make_unique<FakeExecutor>(KernelId::kAttention, 4);
  FakeExecutor* executor = e.get();
  std::vector<std::unique_ptr<Executor>> v;
  v.push_back(std::move(e));
  Batcher batcher(KernelId::kAttention, {.max_batch_items = 4}, std::move(v),
                  nullptr, nullptr);
  // Two tiles; plane p of tile i is filled with 10*p + i.
  std::vector<std::vector<uint8_t>> planes(3, std::vector<uint8_t>(2 * 4096));
  for (int p = 0; p < 3; ++p) {
    for (int i = 0; i < 2; ++i) {
      std::fill_n(planes[p].begin() + i * 4096, 4096,
                  static_cast<uint8_t>(10 * p + i));
    }
  }
  std::vector<uint8_t> out(2 * 4096);
  absl::Notification done;
  auto t = std::make_unique<InferTask>();
  t->items = 2;
  for (auto& p : planes) t->inputs.push_back(absl::MakeConstSpan(p));
  t->output = out.data();
  t->scale = {1 << 30, 0};
  t->done = [&](absl::Status s, const TaskTiming&) {
    EXPECT_TRUE(s.ok());
    done.Notify();
  };
  ASSERT_TRUE(batcher.Submit(std::move(t)).ok());
  done.WaitForNotification();
  // The fake copies the first 4096 bytes of each 12288-byte tile: q_i.
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[4096], 1);
  EXPECT_EQ(executor->scales_seen(), 2u);
  // Device layout is q|k|v per tile.
  EXPECT_THAT(executor->first_bytes(), ElementsAre(0, 1));
}

class RejectSecond : public RunVerifier {
 public:
  absl::Status Verify(KernelId, const InferTask& task,
                      const uint8_t*) override {
    return task.items == 2 ? absl::InternalError("all-zero output")
                           : absl::OkStatus();
  }
};

TEST(BatcherTest, VerifierFailsOnlyTheTaskItRejects) {
  RejectSecond verifier;
  Fixture f({.max_batch_items = 64}, &verifier);
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  Request ok, bad;
  ASSERT_TRUE(f.batcher->Submit(MelTask(ok, 1, 1)).ok());
  ASSERT_TRUE(f.batcher->Submit(MelTask(bad, 2, 1)).ok());
  f.executor->Release();
  ok.done.WaitForNotification();
  bad.done.WaitForNotification();
  EXPECT_TRUE(ok.status.ok());
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace npuk
