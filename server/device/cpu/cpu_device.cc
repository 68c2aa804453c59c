#include "server/device/cpu/cpu_device.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"

namespace npuk {
namespace {

// A fixed set of threads running closures; shared by the executors of one
// device so that concurrent runs do not oversubscribe the cores.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { Loop(); });
    }
  }

  ~WorkerPool() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }

  size_t size() const { return threads_.size(); }

  void Post(std::function<void()> work) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(work));
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> work;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
              return p->stopping_ || !p->queue_.empty();
            },
            this));
        if (queue_.empty()) return;  // stopping and nothing left
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      work();
    }
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

struct AlignedFree {
  void operator()(uint8_t* p) const {
    ::operator delete[](p, std::align_val_t{64});
  }
};
using AlignedBytes = std::unique_ptr<uint8_t[], AlignedFree>;

AlignedBytes AllocateAligned(size_t bytes) {
  auto* p = static_cast<uint8_t*>(
      ::operator new[](std::max<size_t>(bytes, 1), std::align_val_t{64}));
  std::memset(p, 0, bytes);
  return AlignedBytes(p);
}

class CpuExecutor : public Executor {
 public:
  CpuExecutor(const KernelSpec& kernel, size_t max_items, WorkerPool* pool)
      : kernel_(kernel),
        max_items_(max_items),
        pool_(pool),
        output_(AllocateAligned(max_items * kernel.output_bytes())) {
    for (size_t a = 0; a < kernel.device_args.size(); ++a) {
      // A windowed argument's last item reads its halo past the items.
      inputs_.push_back(AllocateAligned(kernel.arg_span(a, max_items)));
    }
  }

  const KernelSpec& kernel() const override { return kernel_; }
  size_t max_items() const override { return max_items_; }
  absl::Span<uint8_t> input(size_t arg) override {
    return absl::Span<uint8_t>(inputs_.at(arg).get(),
                               kernel_.arg_span(arg, max_items_));
  }
  absl::Span<const uint8_t> output() const override {
    return absl::Span<const uint8_t>(output_.get(),
                                     max_items_ * kernel_.output_bytes());
  }

  absl::Status Run(size_t n) override {
    if (n == 0 || n > max_items_) {
      return absl::InternalError(absl::StrCat(
          "cpu device: run of ", n, " items on an executor of ", max_items_,
          "; the batcher must keep 1 <= n <= ", max_items_));
    }
    if (n % kernel_.step_lanes() != 0) {
      return absl::InternalError(absl::StrCat(
          "cpu device: run of ", n, " ", kernel_.name, " items; it takes ",
          "whole rounds of ", kernel_.step_lanes(), " (the batcher's tasks)"));
    }
    // Chunks are multiples of the kernel's quantum (its SIMD group), so
    // splitting a run never leaves partial groups behind.
    const size_t quantum = std::max<size_t>(1, kernel_.cpu_quantum);
    const size_t workers = pool_ == nullptr ? 0 : pool_->size();
    const size_t groups = (n + quantum - 1) / quantum;
    // The calling thread takes a chunk too.
    const size_t chunks = std::min(workers + 1, groups);
    if (chunks <= 1) {
      RunRange(0, n);
      return absl::OkStatus();
    }
    absl::BlockingCounter pending(static_cast<int>(chunks - 1));
    size_t begin = 0;
    for (size_t c = 0; c < chunks; ++c) {
      const size_t group_count = groups / chunks + (c < groups % chunks);
      const size_t end = std::min(n, begin + group_count * quantum);
      if (c + 1 == chunks) {
        RunRange(begin, end);
      } else {
        pool_->Post([this, begin, end, &pending] {
          RunRange(begin, end);
          pending.DecrementCount();
        });
      }
      begin = end;
    }
    pending.Wait();
    return absl::OkStatus();
  }

 private:
  void RunRange(size_t begin, size_t end) {
    if (begin >= end) return;
    // Device arguments are item-major, so items [begin, end) of each start
    // begin items in; a stepped argument after the steps of the rounds
    // before begin (a multiple of the rounds: cpu_quantum).
    absl::InlinedVector<const uint8_t*, 4> base;
    for (const AlignedBytes& arg : inputs_) base.push_back(arg.get());
    absl::InlinedVector<const uint8_t*, 4> in;
    for (size_t a = 0; a < inputs_.size(); ++a) {
      in.push_back(a == kernel_.stepped_arg()
                       ? base[a] + StepSpanOfArgs(kernel_, base.data(), begin)
                       : base[a] + begin * kernel_.arg_bytes(a));
    }
    kernel_.cpu(in.data(), output_.get() + begin * kernel_.output_bytes(),
                end - begin);
  }

  const KernelSpec& kernel_;
  const size_t max_items_;
  WorkerPool* const pool_;
  std::vector<AlignedBytes> inputs_;  // per device input argument
  AlignedBytes output_;
};

class CpuDevice : public Device {
 public:
  explicit CpuDevice(int threads)
      : pool_(threads > 1 ? std::make_unique<WorkerPool>(threads - 1)
                          : nullptr) {}

  std::string_view name() const override { return "cpu"; }

  absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      const KernelSpec& kernel, size_t max_items) override {
    if (kernel.cpu == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cpu device: kernel ", kernel.name,
          " declares no CPU batch function (KernelSpec::cpu); add one to "
          "its kernels/",
          kernel.name, "/ declaration"));
    }
    if (max_items == 0) {
      return absl::InvalidArgumentError(
          "cpu device: an executor needs max_items >= 1; set max_batch "
          "to at least 1");
    }
    return std::unique_ptr<Executor>(
        new CpuExecutor(kernel, max_items, pool_.get()));
  }

 private:
  // threads - 1 workers: the thread calling Run does a share of the work.
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace

std::unique_ptr<Device> NewCpuDevice(int threads) {
  return std::make_unique<CpuDevice>(threads);
}

}  // namespace npuk
