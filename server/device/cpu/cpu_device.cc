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
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "server/device/cpu/cpu_kernels.h"

namespace npuk {
namespace {

// Mel frames go through the AVX2 path eight at a time; chunks are kept at
// multiples of that so splitting a run never leaves partial groups behind.
constexpr size_t kMelChunkQuantum = 8;

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
  CpuExecutor(KernelId kernel, size_t max_items, WorkerPool* pool)
      : kernel_(kernel),
        layout_(LayoutOf(kernel)),
        max_items_(max_items),
        pool_(pool),
        input_(AllocateAligned(max_items * layout_.in_bytes)),
        output_(AllocateAligned(max_items * layout_.out_bytes)) {}

  KernelId kernel() const override { return kernel_; }
  size_t max_items() const override { return max_items_; }
  absl::Span<uint8_t> input() override {
    return absl::Span<uint8_t>(input_.get(), max_items_ * layout_.in_bytes);
  }
  absl::Span<const uint8_t> output() const override {
    return absl::Span<const uint8_t>(output_.get(),
                                     max_items_ * layout_.out_bytes);
  }

  absl::Status Run(size_t n, absl::Span<const ScoreScale> scales) override {
    if (n == 0 || n > max_items_) {
      return absl::InternalError(absl::StrCat(
          "cpu device: run of ", n, " items on an executor of ", max_items_,
          "; the batcher must keep 1 <= n <= ", max_items_));
    }
    if (kernel_ == KernelId::kAttention && scales.size() != n) {
      return absl::InternalError(
          absl::StrCat("cpu device: attention run of ", n, " tiles got ",
                       scales.size(), " score scales; pass one per tile"));
    }
    const size_t quantum = kernel_ == KernelId::kMel ? kMelChunkQuantum : 1;
    const size_t workers = pool_ == nullptr ? 0 : pool_->size();
    // The calling thread takes a chunk too.
    const size_t max_chunks = std::max<size_t>(1, (n + quantum - 1) / quantum);
    const size_t chunks = std::min(workers + 1, max_chunks);
    if (chunks <= 1) {
      RunRange(0, n, scales);
      return absl::OkStatus();
    }
    const size_t groups = (n + quantum - 1) / quantum;
    absl::BlockingCounter pending(static_cast<int>(chunks - 1));
    size_t begin = 0;
    for (size_t c = 0; c < chunks; ++c) {
      const size_t group_count = groups / chunks + (c < groups % chunks);
      const size_t end = std::min(n, begin + group_count * quantum);
      if (c + 1 == chunks) {
        RunRange(begin, end, scales);
      } else {
        pool_->Post([this, begin, end, scales, &pending] {
          RunRange(begin, end, scales);
          pending.DecrementCount();
        });
      }
      begin = end;
    }
    pending.Wait();
    return absl::OkStatus();
  }

 private:
  void RunRange(size_t begin, size_t end, absl::Span<const ScoreScale> scales) {
    if (begin >= end) return;
    const size_t count = end - begin;
    const uint8_t* in = input_.get() + begin * layout_.in_bytes;
    uint8_t* out = output_.get() + begin * layout_.out_bytes;
    if (kernel_ == KernelId::kMel) {
      cpu::MelFrames(reinterpret_cast<const int16_t*>(in),
                     reinterpret_cast<int8_t*>(out), count);
    } else {
      cpu::AttentionTiles(reinterpret_cast<const int8_t*>(in),
                          reinterpret_cast<int8_t*>(out), count,
                          scales.data() + begin);
    }
  }

  const KernelId kernel_;
  const KernelLayout layout_;
  const size_t max_items_;
  WorkerPool* const pool_;
  AlignedBytes input_;
  AlignedBytes output_;
};

class CpuDevice : public Device {
 public:
  explicit CpuDevice(int threads)
      : pool_(threads > 1 ? std::make_unique<WorkerPool>(threads - 1)
                          : nullptr) {}

  std::string_view name() const override { return "cpu"; }

  absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      KernelId kernel, size_t max_items) override {
    if (kernel != KernelId::kMel && kernel != KernelId::kAttention) {
      return absl::InvalidArgumentError(
          absl::StrCat("cpu device: unknown kernel id ",
                       static_cast<int>(kernel), "; use mel or attention"));
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
