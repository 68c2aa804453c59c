#include "server/batching/batcher.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "server/device/fake/fake_device.h"

namespace npuk {
namespace {

using ::testing::ElementsAre;
using testing::FakeExecutor;
using testing::FakeMode;
using ::testing::HasSubstr;

const KernelSpec& Mel() { return *FindKernel("mel"); }
const KernelSpec& Attention() { return *FindKernel("attention"); }

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
    // kCopy: each output frame is the first 80 bytes of its input frame.
    auto e = std::make_unique<FakeExecutor>(Mel(), 64, FakeMode::kCopy);
    executor = e.get();
    std::vector<std::unique_ptr<Executor>> v;
    v.push_back(std::move(e));
    batcher = std::make_unique<Batcher>(Mel(), options, std::move(v), verifier,
                                        nullptr);
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

// A task without an output buffer reads its results in place during done
// (TaskTiming::output), each task its own items of the shared run; a task
// with a buffer in the same run still gets the copy and an empty span.
TEST(BatcherTest, TaskWithoutOutputBufferReadsItsResultsInPlace) {
  Fixture f({.max_batch_items = 64});
  f.executor->Hold();
  Request first;
  ASSERT_TRUE(f.batcher->Submit(MelTask(first, 1, 1)).ok());
  f.executor->WaitEntered();
  Request copied, in_place;
  std::vector<uint8_t> seen;
  ASSERT_TRUE(f.batcher->Submit(MelTask(copied, 2, 3)).ok());
  auto t = MelTask(in_place, 3, 9);
  t->output = nullptr;
  t->done = [&](absl::Status s, const TaskTiming& timing) {
    in_place.status = std::move(s);
    seen.assign(timing.output.begin(), timing.output.end());
    in_place.done.Notify();
  };
  ASSERT_TRUE(f.batcher->Submit(std::move(t)).ok());
  f.executor->Release();
  copied.done.WaitForNotification();
  in_place.done.WaitForNotification();
  ASSERT_TRUE(in_place.status.ok()) << in_place.status;
  EXPECT_EQ(seen, std::vector<uint8_t>(3 * 80, 9));
  EXPECT_EQ(in_place.out, std::vector<uint8_t>(3 * 80, 0xEE));  // untouched
  EXPECT_TRUE(copied.status.ok());
  EXPECT_EQ(copied.out, std::vector<uint8_t>(2 * 80, 3));
  EXPECT_TRUE(copied.timing.output.empty());
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

TEST(BatcherTest, RefusesPlanesThatDoNotMatchTheKernel) {
  Fixture f({.max_batch_items = 4});
  Request r;
  auto t = MelTask(r, 2, 1);
  t->inputs[0] = t->inputs[0].subspan(0, 1599);
  absl::Status s = f.batcher->Submit(std::move(t));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("2 frames need 1600"));
  Request extra;
  auto t2 = MelTask(extra, 1, 1);
  t2->inputs.push_back(t2->inputs[0]);
  s = f.batcher->Submit(std::move(t2));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("takes 1"));
  EXPECT_EQ(r.calls + extra.calls, 0);
}

TEST(BatcherTest, AttentionPlanesAreGatheredPerTileWithTheParameterPlane) {
  auto e = std::make_unique<FakeExecutor>(Attention(), 4, FakeMode::kCopy);
  FakeExecutor* executor = e.get();
  std::vector<std::unique_ptr<Executor>> v;
  v.push_back(std::move(e));
  Batcher batcher(Attention(), {.max_batch_items = 4}, std::move(v), nullptr,
                  nullptr);
  ASSERT_EQ(Attention().plane_count(), 4u);
  const size_t record = Attention().param_bytes;
  // Two tiles; tensor plane p of tile i is filled with 10*p + i, the
  // parameter plane of tile i with 100 + i.
  std::vector<std::vector<uint8_t>> planes;
  for (size_t p = 0; p < 4; ++p) {
    const size_t bytes = p < 3 ? 4096 : record;
    planes.emplace_back(2 * bytes);
    for (size_t i = 0; i < 2; ++i) {
      std::fill_n(planes[p].begin() + i * bytes, bytes,
                  static_cast<uint8_t>(p < 3 ? 10 * p + i : 100 + i));
    }
  }
  std::vector<uint8_t> out(2 * 4096);
  absl::Notification done;
  auto t = std::make_unique<InferTask>();
  t->items = 2;
  for (auto& p : planes) t->inputs.push_back(absl::MakeConstSpan(p));
  t->output = out.data();
  t->done = [&](absl::Status s, const TaskTiming&) {
    EXPECT_TRUE(s.ok());
    done.Notify();
  };
  ASSERT_TRUE(batcher.Submit(std::move(t)).ok());
  done.WaitForNotification();
  // The fake echoes the first 4096 bytes of each 12288-byte q|k|v tile: q_i.
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[4096], 1);
  EXPECT_THAT(executor->first_bytes(), ElementsAre(0, 1));
  const std::vector<std::vector<uint8_t>> args = executor->last_inputs();
  ASSERT_EQ(args.size(), 2u);
  // Device argument 0 is q|k|v per tile.
  ASSERT_EQ(args[0].size(), 2 * 12288u);
  EXPECT_EQ(args[0][4096], 10);
  EXPECT_EQ(args[0][8192], 20);
  EXPECT_EQ(args[0][12288 + 8192], 21);
  // Device argument 1 is the parameter record of each tile.
  std::vector<uint8_t> want(record, 100);
  want.insert(want.end(), record, 101);
  EXPECT_EQ(args[1], want);
}

// Two rounds of attention_stream (4 items of one step each) in one run: the
// first gives its key tiles as a plane, the second through a writer, which
// writes them straight into the device argument after the first's.
TEST(BatcherTest, SteppedPlaneWriterWritesIntoTheDeviceArgument) {
  const KernelSpec& spec = *FindKernel("attention_stream");
  ASSERT_EQ(spec.step_lanes(), 4u);
  ASSERT_EQ(spec.plane_count(), 3u);
  const size_t step = spec.plane_bytes(spec.stepped_plane());
  auto e = std::make_unique<FakeExecutor>(spec, 8, FakeMode::kCopy);
  FakeExecutor* executor = e.get();
  std::vector<std::unique_ptr<Executor>> v;
  v.push_back(std::move(e));
  Batcher batcher(spec,
                  {.max_batch_items = 8, .max_queue_delay = absl::Seconds(2)},
                  std::move(v), nullptr, nullptr);
  // One whole key tile, one step: {mult, shift, 2^30, 1, 64, 64, 64, 1, 1, 0}.
  std::vector<uint8_t> records(4 * spec.param_bytes);
  const int32_t record[10] = {1 << 30, 20, 1 << 30, 1, 64, 64, 64, 1, 1, 0};
  for (size_t i = 0; i < 4; ++i) {
    std::memcpy(records.data() + i * spec.param_bytes, record, sizeof record);
  }
  std::vector<uint8_t> q_a(4 * 4096, 1), q_b(4 * 4096, 2);
  std::vector<uint8_t> kv_a(4 * step, 0xA1);
  std::atomic<int> writes{0};
  absl::Notification done_a, done_b;
  auto task = [&](std::vector<uint8_t>& q, absl::Notification& done) {
    auto t = std::make_unique<InferTask>();
    t->items = 4;
    t->inputs = {absl::MakeConstSpan(q), absl::Span<const uint8_t>(),
                 absl::MakeConstSpan(records)};
    t->done = [&done](absl::Status s, const TaskTiming&) {
      EXPECT_TRUE(s.ok()) << s;
      done.Notify();
    };
    return t;
  };
  auto a = task(q_a, done_a);
  a->inputs[1] = absl::MakeConstSpan(kv_a);
  auto b = task(q_b, done_b);
  b->write_stepped = [&](uint8_t* dest) {
    ++writes;
    std::fill_n(dest, 4 * step, 0xB2);
  };
  ASSERT_TRUE(batcher.Submit(std::move(a)).ok());
  ASSERT_TRUE(batcher.Submit(std::move(b)).ok());
  done_a.WaitForNotification();
  done_b.WaitForNotification();
  EXPECT_EQ(writes.load(), 1);
  EXPECT_THAT(executor->runs(), ElementsAre(8));
  const std::vector<std::vector<uint8_t>> args = executor->last_inputs();
  ASSERT_EQ(args.size(), 2u);
  ASSERT_GE(args[1].size(), 8 * step);
  EXPECT_EQ(std::count(args[1].begin(), args[1].begin() + 4 * step, 0xA1),
            static_cast<ptrdiff_t>(4 * step));
  EXPECT_EQ(
      std::count(args[1].begin() + 4 * step, args[1].begin() + 8 * step, 0xB2),
      static_cast<ptrdiff_t>(4 * step));

  // A writer with a non-empty stepped plane is a bug in the submitter.
  absl::Notification never;
  auto both = task(q_a, never);
  both->inputs[1] = absl::MakeConstSpan(kv_a);
  both->write_stepped = [](uint8_t*) {};
  const absl::Status s = batcher.Submit(std::move(both));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("stepped plane is not empty"));
}

class RejectSecond : public RunVerifier {
 public:
  absl::Status Verify(const KernelSpec&, const InferTask& task,
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
