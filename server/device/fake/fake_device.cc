#include "server/device/fake/fake_device.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace npuk::testing {

void FakeKernel(const KernelSpec& spec, FakeMode mode, const uint8_t* const* in,
                uint8_t* out, size_t n) {
  if (mode == FakeMode::kReference) {
    spec.reference(in, out, n);
    return;
  }
  const size_t in_bytes = spec.arg_bytes(0);
  const size_t out_bytes = spec.output_bytes();
  const uint8_t add = mode == FakeMode::kPlusOne ? 1 : 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* src = in[0] + i * in_bytes;
    uint8_t* dst = out + i * out_bytes;
    for (size_t j = 0; j < out_bytes; ++j) {
      dst[j] = static_cast<uint8_t>(src[j % in_bytes] + add);
    }
  }
}

void FakeControls::Hold() {
  absl::MutexLock lock(&mu_);
  held_ = true;
}

void FakeControls::Release() {
  absl::MutexLock lock(&mu_);
  held_ = false;
}

void FakeControls::WaitEntered(size_t runs) {
  absl::MutexLock lock(&mu_);
  const auto reached = [this, runs]() {
    mu_.AssertReaderHeld();
    return entered_ >= runs;
  };
  mu_.Await(absl::Condition(&reached));
}

void FakeControls::set_fail(absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_ = std::move(status);
}

void FakeControls::set_zero_output(bool on) {
  absl::MutexLock lock(&mu_);
  zero_output_ = on;
}

size_t FakeControls::entered() const {
  absl::MutexLock lock(&mu_);
  return entered_;
}

FakeControls::Verdict FakeControls::Enter() {
  absl::MutexLock lock(&mu_);
  ++entered_;
  mu_.Await(absl::Condition(
      +[](FakeControls* c)
           ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) { return !c->held_; },
      this));
  return {fail_, zero_output_};
}

FakeExecutor::FakeExecutor(const KernelSpec& kernel, size_t max_items,
                           FakeMode mode, FakeControls* device_controls,
                           std::atomic<size_t>* device_runs)
    : kernel_(kernel),
      max_items_(max_items),
      mode_(mode),
      device_controls_(device_controls),
      device_runs_(device_runs),
      output_(max_items * kernel.output_bytes()) {
  for (size_t a = 0; a < kernel.device_args.size(); ++a) {
    inputs_.emplace_back(kernel.arg_span(a, max_items));
  }
}

absl::Span<uint8_t> FakeExecutor::input(size_t arg) {
  return absl::MakeSpan(inputs_.at(arg));
}

absl::Status FakeExecutor::Run(size_t n) {
  if (device_runs_ != nullptr) ++*device_runs_;
  if (n == 0 || n > max_items_) {
    return absl::InternalError(absl::StrCat(
        "fake device: run of ", n, " items on an executor of ", max_items_,
        "; the caller must keep 1 <= n <= max_items()"));
  }
  {
    absl::MutexLock lock(&mu_);
    runs_.push_back(n);
    const size_t arg0 = kernel_.arg_bytes(0);
    for (size_t i = 0; i < n; ++i) first_bytes_.push_back(inputs_[0][i * arg0]);
    last_inputs_.clear();
    for (size_t a = 0; a < inputs_.size(); ++a) {
      last_inputs_.emplace_back(
          inputs_[a].begin(),
          inputs_[a].begin() +
              static_cast<ptrdiff_t>(n * kernel_.arg_bytes(a)));
    }
  }
  FakeControls::Verdict verdict;
  if (device_controls_ != nullptr) verdict = device_controls_->Enter();
  FakeControls::Verdict own = controls_.Enter();
  if (verdict.status.ok()) verdict.status = own.status;
  verdict.zero_output = verdict.zero_output || own.zero_output;
  if (!verdict.status.ok()) return verdict.status;
  if (verdict.zero_output) {
    std::fill_n(output_.begin(), n * kernel_.output_bytes(), 0);
    return absl::OkStatus();
  }
  std::vector<const uint8_t*> in;
  for (const std::vector<uint8_t>& arg : inputs_) in.push_back(arg.data());
  FakeKernel(kernel_, mode_, in.data(), output_.data(), n);
  return absl::OkStatus();
}

std::vector<size_t> FakeExecutor::runs() const {
  absl::MutexLock lock(&mu_);
  return runs_;
}

std::vector<uint8_t> FakeExecutor::first_bytes() const {
  absl::MutexLock lock(&mu_);
  return first_bytes_;
}

std::vector<std::vector<uint8_t>> FakeExecutor::last_inputs() const {
  absl::MutexLock lock(&mu_);
  return last_inputs_;
}

absl::StatusOr<std::unique_ptr<Executor>> FakeDevice::CreateExecutor(
    const KernelSpec& kernel, size_t max_items) {
  {
    absl::MutexLock lock(&mu_);
    if (!create_error_.ok()) return create_error_;
  }
  if (max_items == 0) {
    return absl::InvalidArgumentError(
        "fake device: an executor needs max_items >= 1");
  }
  return std::make_unique<FakeExecutor>(kernel, max_items, mode_, &controls_,
                                        &runs_);
}

void FakeDevice::set_create_error(absl::Status s) {
  absl::MutexLock lock(&mu_);
  create_error_ = std::move(s);
}

}  // namespace npuk::testing
