#include "server/batching/batcher.h"

#include <cstring>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "spdlog/spdlog.h"

namespace npuk {
namespace {

// Answers a task that never reached the device.
void Refuse(std::unique_ptr<InferTask> task, absl::Status status) {
  TaskTiming timing;
  timing.queue = absl::Now() - task->enqueued;
  std::move(task->done)(std::move(status), timing);
}

// Why a queued task must not run, or OK.
absl::Status DeadReason(const InferTask& task, absl::Time now) {
  if (task.cancelled != nullptr &&
      task.cancelled->load(std::memory_order_relaxed)) {
    return absl::CancelledError("request cancelled by the client");
  }
  if (now >= task.deadline) {
    return absl::DeadlineExceededError(absl::StrCat(
        "deadline expired after ", absl::FormatDuration(now - task.enqueued),
        " in the queue, before the request reached the device; raise the "
        "client deadline or lower the load"));
  }
  return absl::OkStatus();
}

// Answers every task in `dead` with the reason it may not run.
void RefuseAll(std::vector<std::unique_ptr<InferTask>>& dead) {
  const absl::Time now = absl::Now();
  for (auto& t : dead) {
    absl::Status reason = DeadReason(*t, now);
    Refuse(std::move(t), std::move(reason));
  }
  dead.clear();
}

}  // namespace

absl::Status Batcher::CheckPlanes(const InferTask& task) const {
  if (task.inputs.size() != kernel_.plane_count()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request gives ", task.inputs.size(), " input planes; model ",
        kernel_.name, " takes ", kernel_.plane_count(), " (",
        kernel_.inputs.size(), " tensors",
        kernel_.param_bytes > 0 ? " and the parameter record" : "", ")"));
  }
  if (kernel_.is_stepped() && task.items % kernel_.step_lanes() != 0) {
    return absl::InternalError(absl::StrCat(
        kernel_.name, " takes its items in rounds of ", kernel_.step_lanes(),
        "; a task of ", task.items, " is not whole rounds"));
  }
  if (task.padding_items > task.items) {
    return absl::InternalError(absl::StrCat("a task of model ", kernel_.name,
                                            " has ", task.padding_items,
                                            " padding items of ", task.items));
  }
  if (task.write_stepped != nullptr &&
      (!kernel_.is_stepped() ||
       !task.inputs[kernel_.stepped_plane()].empty())) {
    return absl::InternalError(absl::StrCat(
        "a task of model ", kernel_.name, " gives a stepped-plane writer, but ",
        kernel_.is_stepped() ? "its stepped plane is not empty"
                             : "the kernel has no stepped input"));
  }
  for (size_t p = 0; p < task.inputs.size(); ++p) {
    if (p == kernel_.stepped_plane()) continue;  // below, from the records
    const size_t want = kernel_.plane_span(p, task.items);
    if (task.inputs[p].size() != want) {
      return absl::InvalidArgumentError(
          absl::StrCat("input plane ", p, " of model ", kernel_.name, " is ",
                       task.inputs[p].size(), " bytes; ", task.items, " ",
                       kernel_.units, " need ", want));
    }
  }
  // A writer writes StepSpanOfPlanes bytes, which max_steps bounds by the
  // plane's span.
  if (kernel_.is_stepped() && task.write_stepped == nullptr) {
    const std::vector<std::span<const uint8_t>> planes(task.inputs.begin(),
                                                       task.inputs.end());
    const size_t p = kernel_.stepped_plane();
    const size_t want = StepSpanOfPlanes(kernel_, planes, task.items);
    if (task.inputs[p].size() < want ||
        task.inputs[p].size() > kernel_.plane_span(p, task.items)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input plane ", p, " of model ", kernel_.name, " is ",
                       task.inputs[p].size(), " bytes; the records of its ",
                       task.items, " ", kernel_.units, " take ", want));
    }
  }
  return absl::OkStatus();
}

Batcher::Batcher(const KernelSpec& kernel, BatcherOptions options,
                 std::vector<std::unique_ptr<Executor>> executors,
                 RunVerifier* verifier, BatchObserver* observer)
    : kernel_(kernel),
      options_(options),
      verifier_(verifier),
      observer_(observer),
      pad_items_(kernel.pad_items()),
      executors_(std::move(executors)) {
  absl::MutexLock drain_lock(&drain_mu_);
  threads_.reserve(executors_.size());
  for (auto& executor : executors_) {
    threads_.emplace_back([this, e = executor.get()] { DispatchLoop(e); });
  }
}

Batcher::~Batcher() { Drain(); }

absl::Status Batcher::Submit(std::unique_ptr<InferTask> task) {
  if (task->items == 0 || task->items > options_.max_batch_items) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request carries ", task->items, " ", kernel_.name, " ", kernel_.units,
        "; this server accepts 1 to ", options_.max_batch_items,
        " per request (max_batch_frames); split the request"));
  }
  NPUK_RETURN_IF_ERROR(CheckPlanes(*task));
  std::vector<std::unique_ptr<InferTask>> dead;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (draining_ && !task->continuation) {
      status = absl::UnavailableError(
          "server is shutting down and accepts no new requests; retry on "
          "another replica or after restart");
    } else {
      // Canaries skip the bound and the line: a busy device is not a broken
      // one, and health must not flip under load.
      const bool bounded = !task->canary && !task->continuation;
      const bool full = bounded && user_queued_ >= options_.max_queue_size;
      if (full) PurgeDeadLocked(dead);
      if (bounded && user_queued_ >= options_.max_queue_size) {
        status = absl::ResourceExhaustedError(absl::StrCat(
            kernel_.name, " queue is full (", options_.max_queue_size,
            " requests waiting, max_queue_size); retry with backoff"));
      } else {
        task->enqueued = absl::Now();
        queued_items_ += task->items;
        if (task->canary) {
          queue_.push_front(std::move(task));
        } else {
          ++user_queued_;
          queue_.push_back(std::move(task));
        }
      }
    }
  }
  RefuseAll(dead);
  return status;
}

void Batcher::PurgeDeadLocked(std::vector<std::unique_ptr<InferTask>>& out) {
  const absl::Time now = absl::Now();
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (!DeadReason(**it, now).ok()) {
      queued_items_ -= (*it)->items;
      if (!(*it)->canary) --user_queued_;
      out.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

void Batcher::Drain() {
  absl::MutexLock drain_lock(&drain_mu_);
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

size_t Batcher::pending() const {
  absl::MutexLock lock(&mu_);
  return user_queued_;
}

std::vector<std::unique_ptr<InferTask>> Batcher::NextBatch() {
  std::vector<std::unique_ptr<InferTask>> batch;
  std::vector<std::unique_ptr<InferTask>> dead;
  while (batch.empty()) {
    mu_.LockWhen(absl::Condition(
        +[](Batcher* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) {
          return !b->queue_.empty() || b->draining_;
        },
        this));
    if (queue_.empty()) {  // draining and nothing left
      mu_.Unlock();
      break;
    }
    // Wait for a full batch or for the oldest request's delay to run out.
    if (options_.max_queue_delay > absl::ZeroDuration() && !draining_) {
      const absl::Time close_at =
          queue_.front()->enqueued + options_.max_queue_delay;
      mu_.AwaitWithDeadline(
          absl::Condition(
              +[](Batcher* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) {
                return b->draining_ ||
                       b->queued_items_ >= b->options_.max_batch_items;
              },
              this),
          close_at);
    }
    const absl::Time now = absl::Now();
    size_t items = 0;
    while (!queue_.empty()) {
      InferTask& next = *queue_.front();
      if (!DeadReason(next, now).ok()) {
        queued_items_ -= next.items;
        if (!next.canary) --user_queued_;
        dead.push_back(std::move(queue_.front()));
        queue_.pop_front();
        continue;
      }
      // A windowed kernel's request is followed by pad_items() items its
      // read-ahead occupies (RunBatch), except the last in the run.
      const size_t cost = next.items + (batch.empty() ? 0 : pad_items_);
      if (items + cost > options_.max_batch_items) break;
      items += cost;
      queued_items_ -= next.items;
      if (!next.canary) --user_queued_;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    mu_.Unlock();
    RefuseAll(dead);
  }
  return batch;
}

void Batcher::DispatchLoop(Executor* executor) {
  for (;;) {
    std::vector<std::unique_ptr<InferTask>> batch = NextBatch();
    if (batch.empty()) return;
    RunBatch(executor, std::move(batch));
  }
}

void Batcher::RunBatch(Executor* executor,
                       std::vector<std::unique_ptr<InferTask>> batch) {
  const absl::Time start = absl::Now();

  // Gather each task's planes into the device arguments, item after item;
  // the tasks sit back to back in the order they are answered. A windowed
  // kernel's task (KernelSpec::pad_items() > 0) starts at an item boundary
  // and is followed by pad items that hold its read-ahead; their outputs
  // are discarded, and the last task's need not run.
  std::vector<std::span<const uint8_t>> planes;
  std::vector<size_t> first(batch.size());
  size_t items = 0;
  size_t user_items = 0;
  // A stepped argument's tasks sit back to back by their steps.
  size_t step_bytes = 0;
  for (size_t t = 0; t < batch.size(); ++t) {
    const InferTask& task = *batch[t];
    if (t > 0) items += pad_items_;
    first[t] = items;
    planes.assign(task.inputs.begin(), task.inputs.end());
    for (size_t arg = 0; arg < kernel_.device_args.size(); ++arg) {
      const bool stepped = arg == kernel_.stepped_arg();
      uint8_t* dest = executor->input(arg).data() +
                      (stepped ? step_bytes : items * kernel_.arg_bytes(arg));
      if (stepped && task.write_stepped != nullptr) {
        task.write_stepped(dest);
      } else {
        GatherArg(kernel_, arg, planes, 0, task.items, dest);
      }
      if (stepped) step_bytes += StepSpanOfPlanes(kernel_, planes, task.items);
    }
    items += task.items;
    if (!task.canary) user_items += task.items - task.padding_items;
  }

  absl::Status status = executor->Run(items);
  if (!status.ok()) {
    spdlog::error("{} device run of {} {} failed: {}", kernel_.name, items,
                  kernel_.units, status.ToString());
  }

  // Split the results back per request, in order.
  absl::Span<const uint8_t> results = executor->output();
  std::vector<absl::Status> task_status(batch.size(), status);
  // The results of tasks without an output buffer, read in place by done.
  std::vector<absl::Span<const uint8_t>> in_place(batch.size());
  for (size_t t = 0; t < batch.size(); ++t) {
    InferTask& task = *batch[t];
    const size_t bytes = task.items * kernel_.output_bytes();
    if (status.ok()) {
      const uint8_t* out = results.data() + first[t] * kernel_.output_bytes();
      if (task.output != nullptr) {
        std::memcpy(task.output, out, bytes);
      } else {
        in_place[t] = absl::Span<const uint8_t>(out, bytes);
      }
      if (verifier_ != nullptr) {
        task_status[t] = verifier_->Verify(
            kernel_, task, task.output != nullptr ? task.output : out);
      }
    }
  }
  const absl::Time end = absl::Now();
  if (observer_ != nullptr) {
    observer_->OnRun(kernel_, items, user_items, end - start, status.ok());
  }
  for (size_t t = 0; t < batch.size(); ++t) {
    TaskTiming timing;
    timing.queue = start - batch[t]->enqueued;
    timing.compute = end - start;
    timing.batch_items = items;
    if (task_status[t].ok()) timing.output = in_place[t];
    std::move(batch[t]->done)(std::move(task_status[t]), timing);
  }
}

}  // namespace npuk
