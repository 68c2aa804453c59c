#include "server/batching/batcher.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
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

Batcher::Batcher(KernelId kernel, BatcherOptions options,
                 std::vector<std::unique_ptr<Executor>> executors,
                 RunVerifier* verifier, BatchObserver* observer)
    : kernel_(kernel),
      options_(options),
      verifier_(verifier),
      observer_(observer),
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
        "request carries ", task->items, " ", KernelName(kernel_),
        " items; this server accepts 1 to ", options_.max_batch_items,
        " per request (max_batch_frames); split the request"));
  }
  size_t plane_bytes = 0;
  for (const auto& plane : task->inputs) {
    if (plane.size() % task->items != 0) {
      return absl::InvalidArgumentError(
          "input plane is not a whole number "
          "of items");
    }
    plane_bytes += plane.size() / task->items;
  }
  if (plane_bytes != LayoutOf(kernel_).in_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs give ", plane_bytes, " bytes per item, ", KernelName(kernel_),
        " needs ", LayoutOf(kernel_).in_bytes));
  }
  std::vector<std::unique_ptr<InferTask>> dead;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      status = absl::UnavailableError(
          "server is shutting down and accepts no new requests; retry on "
          "another replica or after restart");
    } else {
      // Canaries skip the bound and the line: a busy device is not a broken
      // one, and health must not flip under load.
      const bool full =
          !task->canary && user_queued_ >= options_.max_queue_size;
      if (full) PurgeDeadLocked(dead);
      if (!task->canary && user_queued_ >= options_.max_queue_size) {
        status = absl::ResourceExhaustedError(absl::StrCat(
            KernelName(kernel_), " queue is full (", options_.max_queue_size,
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
      if (items + next.items > options_.max_batch_items) break;
      items += next.items;
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
  const KernelLayout layout = LayoutOf(kernel_);
  const absl::Time start = absl::Now();

  // Gather the planar inputs into the device layout, item by item.
  absl::Span<uint8_t> staging = executor->input();
  std::vector<ScoreScale> scales;
  if (kernel_ == KernelId::kAttention) scales.reserve(options_.max_batch_items);
  size_t items = 0;
  size_t user_items = 0;
  for (const auto& task : batch) {
    uint8_t* dst = staging.data() + items * layout.in_bytes;
    if (task->inputs.size() == 1) {
      std::memcpy(dst, task->inputs[0].data(), task->inputs[0].size());
    } else {
      for (size_t i = 0; i < task->items; ++i) {
        for (const auto& plane : task->inputs) {
          const size_t plane_bytes = plane.size() / task->items;
          std::memcpy(dst, plane.data() + i * plane_bytes, plane_bytes);
          dst += plane_bytes;
        }
      }
    }
    if (kernel_ == KernelId::kAttention) {
      scales.insert(scales.end(), task->items, task->scale);
    }
    items += task->items;
    if (!task->canary) user_items += task->items;
  }

  absl::Status status = executor->Run(items, scales);
  if (!status.ok()) {
    spdlog::error("{} device run of {} items failed: {}", KernelName(kernel_),
                  items, status.ToString());
  }

  // Split the results back per request, in order.
  absl::Span<const uint8_t> results = executor->output();
  size_t offset = 0;
  std::vector<absl::Status> task_status(batch.size(), status);
  for (size_t t = 0; t < batch.size(); ++t) {
    InferTask& task = *batch[t];
    const size_t bytes = task.items * layout.out_bytes;
    if (status.ok()) {
      const uint8_t* out = results.data() + offset;
      std::memcpy(task.output, out, bytes);
      if (verifier_ != nullptr) {
        task_status[t] = verifier_->Verify(kernel_, task, task.output);
      }
    }
    offset += bytes;
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
    std::move(batch[t]->done)(std::move(task_status[t]), timing);
  }
}

}  // namespace npuk
