// Test support (never linked into the daemon): one fake backend for every
// test above the device layer (batcher, health, rpc, fault decorator). It is
// generic over KernelSpec, so a test may run any registered kernel through
// it, and it can fail, hang or return zeros on command.
//
// API (CMake target npuk_fake_device; namespace npuk::testing):
//
//   FakeMode::kPlusOne    output byte j of an item = byte (j mod arg_bytes(0))
//                         of that item's device input argument 0, plus 1
//                         (mod 256): an all-zero output is always wrong, so
//                         the zero guard and canaries can tell.   [default]
//   FakeMode::kCopy       the same without the +1 (output echoes arg 0).
//   FakeMode::kReference  spec.reference: the real kernel's bytes.
//   FakeKernel(spec, mode, in, out, n)
//       the function above over device arguments in[a] (item-major), for
//       computing expected outputs (e.g. a canary's) in tests.
//
//   FakeExecutor(spec, max_items, mode = kPlusOne)  usable on its own
//   FakeDevice(mode = kPlusOne)                      name() "fake"
//
//   Controls (FakeControls) exist per executor and per device; an executor
//   made by a FakeDevice obeys both (device first). On either:
//     Hold() / Release()   runs that start while held block inside Run
//                          (after recording themselves) until Release():
//                          a hung device, and a way to stop a dispatcher
//                          mid-run.
//     WaitEntered(k = 1)   blocks until k runs in total have entered Run.
//     set_fail(status)     every Run returns `status` (OkStatus() stops it);
//                          the output is left untouched.
//     set_zero_output(on)  runs succeed with an all-zero output (the prior
//                          attempt's symptom).
//     set_create_error(s)  (FakeDevice only) CreateExecutor returns `s`.
//   Observations, on the executor (what it was asked to run):
//     runs()         n of every Run, in order;
//     first_bytes()  byte 0 of device input argument 0 of every item run;
//     last_inputs()  per device input argument, the n * arg_bytes(a) bytes
//                    of the last Run (e.g. to check the parameter plane).
//   FakeDevice::runs() counts Run calls over all its executors.
//
// Thread safety: Run is called by one thread at a time per executor (the
// Executor contract); every control and observation may be called from any
// thread.
#ifndef NPUK_SERVER_DEVICE_FAKE_FAKE_DEVICE_H_
#define NPUK_SERVER_DEVICE_FAKE_FAKE_DEVICE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "kernels/registry/kernel_spec.h"
#include "server/device/device.h"

namespace npuk::testing {

enum class FakeMode { kPlusOne, kCopy, kReference };

// in[a]: items [0, n) of device input argument a; out: n output items.
void FakeKernel(const KernelSpec& spec, FakeMode mode, const uint8_t* const* in,
                uint8_t* out, size_t n);

class FakeControls {
 public:
  void Hold() ABSL_LOCKS_EXCLUDED(mu_);
  void Release() ABSL_LOCKS_EXCLUDED(mu_);
  void WaitEntered(size_t runs = 1) ABSL_LOCKS_EXCLUDED(mu_);
  void set_fail(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  void set_zero_output(bool on) ABSL_LOCKS_EXCLUDED(mu_);
  size_t entered() const ABSL_LOCKS_EXCLUDED(mu_);

  // Used by FakeExecutor::Run: counts the run, blocks while held, then
  // reports what the run must do.
  struct Verdict {
    absl::Status status;
    bool zero_output = false;
  };
  Verdict Enter() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  size_t entered_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
  bool zero_output_ ABSL_GUARDED_BY(mu_) = false;
};

class FakeExecutor : public Executor {
 public:
  // `device_controls` (may be null) must outlive the executor.
  FakeExecutor(const KernelSpec& kernel, size_t max_items,
               FakeMode mode = FakeMode::kPlusOne,
               FakeControls* device_controls = nullptr,
               std::atomic<size_t>* device_runs = nullptr);

  const KernelSpec& kernel() const override { return kernel_; }
  size_t max_items() const override { return max_items_; }
  absl::Span<uint8_t> input(size_t arg) override;
  absl::Span<const uint8_t> output() const override { return output_; }
  absl::Status Run(size_t n) override;

  FakeControls& controls() { return controls_; }
  void Hold() { controls_.Hold(); }
  void Release() { controls_.Release(); }
  void WaitEntered(size_t runs = 1) { controls_.WaitEntered(runs); }
  void set_fail(absl::Status s) { controls_.set_fail(std::move(s)); }
  void set_zero_output(bool on) { controls_.set_zero_output(on); }

  std::vector<size_t> runs() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<uint8_t> first_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::vector<uint8_t>> last_inputs() const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const KernelSpec& kernel_;
  const size_t max_items_;
  const FakeMode mode_;
  FakeControls* const device_controls_;
  std::atomic<size_t>* const device_runs_;
  FakeControls controls_;
  std::vector<std::vector<uint8_t>> inputs_;  // per device input argument
  std::vector<uint8_t> output_;

  mutable absl::Mutex mu_;
  std::vector<size_t> runs_ ABSL_GUARDED_BY(mu_);
  std::vector<uint8_t> first_bytes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<uint8_t>> last_inputs_ ABSL_GUARDED_BY(mu_);
};

// Executors it creates borrow the device's controls: the device must
// outlive them (as with every Device).
class FakeDevice : public Device {
 public:
  explicit FakeDevice(FakeMode mode = FakeMode::kPlusOne) : mode_(mode) {}

  std::string_view name() const override { return "fake"; }
  absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      const KernelSpec& kernel, size_t max_items) override;

  FakeControls& controls() { return controls_; }
  void Hold() { controls_.Hold(); }
  void Release() { controls_.Release(); }
  void WaitEntered(size_t runs = 1) { controls_.WaitEntered(runs); }
  void set_fail(absl::Status s) { controls_.set_fail(std::move(s)); }
  void set_zero_output(bool on) { controls_.set_zero_output(on); }
  void set_create_error(absl::Status s) ABSL_LOCKS_EXCLUDED(mu_);

  // Run calls over all executors of this device (including failed ones).
  size_t runs() const { return runs_.load(); }

 private:
  const FakeMode mode_;
  FakeControls controls_;
  std::atomic<size_t> runs_{0};
  absl::Mutex mu_;
  absl::Status create_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace npuk::testing

#endif  // NPUK_SERVER_DEVICE_FAKE_FAKE_DEVICE_H_
