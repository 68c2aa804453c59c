// The inference calls of the daemon as the drain sees them: how many are
// open, when the last one arrived, and the UNAVAILABLE answers of the ones
// that arrive while draining, held until the gRPC server has told every
// connection it is going away (HTTP/2 GOAWAY, sent at the start of
// grpc::Server::Shutdown).
//
// Why: gRPC 1.51 cancels every call whose headers reach the server after
// Shutdown began and before its GOAWAY is out (the client sees CANCELLED,
// not UNAVAILABLE); only a call the server already matched to a handler is
// waited for. So the drain
//   1. answers nothing "shutting down" before Shutdown starts: those
//      answers are held here, and a client waiting for one sends nothing;
//   2. starts Shutdown only once no new call has arrived for a quiet
//      period (WaitQuiet): every client that got its last real answer has
//      sent its next call by then, and that call is held here;
//   3. releases the held answers after the GOAWAY (Release): each client's
//      next call finds its connection gone and fails UNAVAILABLE on the
//      client side;
//   4. holds each stream's final status until every answer has been
//      written and clients had a moment to read them (HoldFinish,
//      WaitSettled, ReleaseFinishes), then waits for every open call to end
//      (WaitIdle) before it closes the connections that are left.
// A call that arrives within the gap between Shutdown starting and its
// GOAWAY being written can still be cancelled by gRPC; step 2 is what keeps
// clients from sending into that gap (docs/RELIABILITY.md).
//
// Usage (daemon drain):
//   gate.CallStarted() / gate.CallDone()   // by every inference reactor
//   gate.Hold(answer);        // for each call arriving while draining
//   gate.WaitQuiet(100ms, by);
//   std::thread t([&] { server->Shutdown(backstop); });
//   ...; gate.Release();      // runs every held answer, later ones at once
//   gate.WaitSettled(by); sleep; gate.ReleaseFinishes();
//   gate.WaitIdle(by);
//
// Thread safety: all methods are thread-safe; answers run without the lock.
#ifndef NPUK_SERVER_RPC_DRAIN_GATE_H_
#define NPUK_SERVER_RPC_DRAIN_GATE_H_

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace npuk {

class DrainGate {
 public:
  using Answer = absl::AnyInvocable<void() &&>;

  // An inference call reached its handler / its reactor is done.
  void CallStarted() {
    absl::MutexLock lock(&mu_);
    ++open_;
    last_start_ = absl::Now();
  }
  void CallDone() {
    absl::MutexLock lock(&mu_);
    --open_;
  }

  // Runs `answer` now when released, else keeps it for Release().
  void Hold(Answer answer) {
    {
      absl::MutexLock lock(&mu_);
      if (!released_) {
        held_.push_back(std::move(answer));
        return;
      }
    }
    std::move(answer)();
  }

  // Runs every held answer; later Hold()s run at once. Idempotent.
  void Release() {
    std::vector<Answer> held;
    {
      absl::MutexLock lock(&mu_);
      released_ = true;
      held.swap(held_);
    }
    for (Answer& a : held) std::move(a)();
  }

  // Holds a stream's final status (its Finish) while draining, until
  // ReleaseFinishes(); runs it at once after that. The stream's answers
  // have all been written by then. gRPC closes a connection as soon as its
  // last stream ends after the GOAWAY; a client that still had answers
  // unread in its socket then fails its next write ("Broken pipe") and
  // loses them. Holding the statuses gives clients time to read the
  // answers first.
  void HoldFinish(Answer finish) {
    {
      absl::MutexLock lock(&mu_);
      if (!finishes_released_) {
        finishes_.push_back(std::move(finish));
        return;
      }
    }
    std::move(finish)();
  }
  void ReleaseFinishes() {
    std::vector<Answer> held;
    {
      absl::MutexLock lock(&mu_);
      finishes_released_ = true;
      held.swap(finishes_);
    }
    for (Answer& a : held) std::move(a)();
  }
  size_t held_finishes() const {
    absl::MutexLock lock(&mu_);
    return finishes_.size();
  }

  // Returns once every open call is a stream whose status is held
  // (HoldFinish), i.e. every answer has been handed to its connection
  // (true), or at `deadline` (false).
  bool WaitSettled(absl::Time deadline) const {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(absl::Condition(this, &DrainGate::Settled),
                                 deadline);
  }

  // Returns once no call has started for `quiet` (true), or at `deadline`
  // (false).
  bool WaitQuiet(absl::Duration quiet, absl::Time deadline) const {
    for (;;) {
      absl::Time quiet_at;
      {
        absl::MutexLock lock(&mu_);
        quiet_at = last_start_ + quiet;
      }
      const absl::Time now = absl::Now();
      if (now >= quiet_at) return true;
      if (now >= deadline) return false;
      absl::SleepFor(std::min(quiet_at, deadline) - now);
    }
  }

  // Returns once no call is open (true), or at `deadline` (false).
  bool WaitIdle(absl::Time deadline) const {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(
        absl::Condition(
            +[](const int64_t* open) { return *open <= 0; }, &open_),
        deadline);
  }

  size_t held() const {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }
  int64_t open() const {
    absl::MutexLock lock(&mu_);
    return open_;
  }

 private:
  bool Settled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return open_ <= static_cast<int64_t>(finishes_.size());
  }

  mutable absl::Mutex mu_;
  bool finishes_released_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Answer> finishes_ ABSL_GUARDED_BY(mu_);
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Answer> held_ ABSL_GUARDED_BY(mu_);
  int64_t open_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_DRAIN_GATE_H_
