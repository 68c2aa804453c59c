// Dynamic batching: one bounded queue per model, one dispatcher thread per
// executor. A batch closes when it holds max_batch_items items or when the
// oldest queued request has waited max_queue_delay. Requests whose deadline
// passed or that were cancelled are answered without reaching the device.
#ifndef NPUK_SERVER_BATCHING_BATCHER_H_
#define NPUK_SERVER_BATCHING_BATCHER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/device/device.h"

namespace npuk {

// Timing of one request, reported in its response.
struct TaskTiming {
  absl::Duration queue;    // accepted -> its batch started
  absl::Duration compute;  // the device run it rode in (copy in+run+out)
  size_t batch_items = 0;  // items in that device run
  // For a task submitted without an `output` buffer: its results where the
  // run left them (items * kernel.output_bytes()), valid only during `done`
  // and only with OK. Empty otherwise.
  absl::Span<const uint8_t> output;
};

// One accepted request. The submitter owns the memory behind `inputs` and
// `output` until `done` has been called.
//
// Inputs are planar (kernels/registry/kernel_spec.h): one plane per input
// tensor, then the parameter plane when the kernel has parameters. The
// batcher gathers them into the executor's device arguments.
struct InferTask {
  size_t items = 0;
  // Of those, the last `padding_items` only fill a round of a stepped
  // kernel (attention_stream's empty units): run, not counted in the
  // statistics.
  size_t padding_items = 0;
  // kernel.plane_count() spans of kernel.plane_span(p, items) bytes
  // (items * plane_bytes(p), plus a windowed input's halo; a stepped
  // plane: the steps its records give, StepSpanOfPlanes).
  std::vector<absl::Span<const uint8_t>> inputs;
  // A stepped kernel's task may leave its stepped plane empty and give this
  // instead: it writes that plane (StepSpanOfPlanes of the records in
  // `inputs`) to dest when the task is gathered into a run, on the
  // dispatcher thread, once per run it takes part in. A host model packs its
  // largest plane straight into the device argument (on xrt the mapped BO)
  // rather than into a buffer the batcher then copies.
  absl::AnyInvocable<void(uint8_t* dest) const> write_stepped;
  // items * kernel.output_bytes(), filled before `done`; or nullptr: then
  // `done` reads the results in place (TaskTiming::output), saving a copy.
  uint8_t* output = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
  // Set by the submitter when the client cancels; checked before the run.
  std::shared_ptr<std::atomic<bool>> cancelled;
  // True for health canaries (not counted in user statistics).
  bool canary = false;
  // A later piece of a request the server already accepted (a host model
  // sends a long request in pieces, a few at a time): queued even while
  // draining and beyond max_queue_size, so an accepted request is never
  // refused halfway. Its pieces are submitted from the done callbacks of
  // earlier ones, on the batcher's own threads, which take them before
  // they stop.
  bool continuation = false;
  // Called exactly once, from a batcher thread (or from Drain), with OK and
  // the results (in `output` or TaskTiming::output), or with the reason the
  // request failed.
  absl::AnyInvocable<void(absl::Status, const TaskTiming&) &&> done;

  absl::Time enqueued;  // set by Submit
};

// Inspects every task's results after a successful run, before they are
// handed out. The health layer installs the zero guard here. `output` holds
// task.items output items. A non-OK result fails that task with that status.
// Called from dispatcher threads, possibly concurrently.
class RunVerifier {
 public:
  virtual ~RunVerifier() = default;
  virtual absl::Status Verify(const KernelSpec& kernel, const InferTask& task,
                              const uint8_t* output) = 0;
};

// Per-run observations for statistics and metrics (rpc/telemetry).
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  // One device run finished (ok or not). `items` counts every item in the
  // run, `user_items` those of non-canary tasks. Called from dispatcher
  // threads, possibly concurrently.
  virtual void OnRun(const KernelSpec& kernel, size_t items, size_t user_items,
                     absl::Duration compute, bool ok) = 0;
};

struct BatcherOptions {
  size_t max_batch_items = 64;
  // 0 = greedy: a free executor takes whatever is queued at once, so a lone
  // request never waits and batches form from what arrives during a run.
  absl::Duration max_queue_delay = absl::ZeroDuration();
  size_t max_queue_size = 1024;
};

class Batcher {
 public:
  // Takes ownership of the executors; one dispatcher thread each.
  // REQUIRES: executors non-empty, all for `kernel`, each with
  // max_items() >= options.max_batch_items.
  Batcher(const KernelSpec& kernel, BatcherOptions options,
          std::vector<std::unique_ptr<Executor>> executors,
          RunVerifier* verifier, BatchObserver* observer);
  ~Batcher();  // Drain()s.

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  const KernelSpec& kernel() const { return kernel_; }
  const BatcherOptions& options() const { return options_; }

  // For a windowed kernel (KernelSpec::pad_items() > 0) every request in a
  // run but the first also occupies pad_items() items before its own; a
  // run still holds at most max_batch_items items, and one request may
  // carry up to max_batch_items.
  //
  // Accepts the task (and then calls task->done exactly once) or refuses it:
  // INVALID_ARGUMENT when items is 0 or above max_batch_items or the planes
  // do not add up to the kernel's input layout,
  // RESOURCE_EXHAUSTED when the queue holds max_queue_size requests (canary
  // tasks are exempt and go to the front of the queue),
  // UNAVAILABLE when draining. A refused task's done is not called.
  absl::Status Submit(std::unique_ptr<InferTask> task);

  // Stops accepting, finishes every accepted task, joins the threads.
  // Idempotent.
  void Drain();

  // User requests waiting in the queue (not yet in a run; canaries are not
  // counted).
  size_t pending() const;

 private:
  // INVALID_ARGUMENT unless the task has plane_count() planes of
  // plane_span(p, items) bytes each.
  absl::Status CheckPlanes(const InferTask& task) const;
  void DispatchLoop(Executor* executor);
  // Takes the next batch off the queue; empty when draining and empty.
  std::vector<std::unique_ptr<InferTask>> NextBatch();
  // Removes cancelled and expired tasks from the queue into `out`.
  void PurgeDeadLocked(std::vector<std::unique_ptr<InferTask>>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunBatch(Executor* executor,
                std::vector<std::unique_ptr<InferTask>> batch);

  const KernelSpec& kernel_;
  const BatcherOptions options_;
  RunVerifier* const verifier_;
  BatchObserver* const observer_;
  const size_t pad_items_;  // kernel_.pad_items()
  std::vector<std::unique_ptr<Executor>> executors_;
  absl::Mutex drain_mu_;  // serialises Drain()
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(drain_mu_);

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<InferTask>> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_items_ ABSL_GUARDED_BY(mu_) = 0;
  size_t user_queued_ ABSL_GUARDED_BY(mu_) = 0;  // non-canary tasks queued
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace npuk

#endif  // NPUK_SERVER_BATCHING_BATCHER_H_
