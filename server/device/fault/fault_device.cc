#include "server/device/fault/fault_device.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "kernels/registry/registry.h"
#include "server/common/status_macros.h"
#include "spdlog/spdlog.h"

namespace npuk {
namespace {

struct KindName {
  FaultSpec::Kind kind;
  std::string_view name;
};
constexpr KindName kKinds[] = {
    {FaultSpec::kZeros, "zeros"}, {FaultSpec::kGarbage, "garbage"},
    {FaultSpec::kError, "error"}, {FaultSpec::kTimeout, "timeout"},
    {FaultSpec::kSlow, "slow"},   {FaultSpec::kHang, "hang"},
};

// One warning per kernel per interval; the rest are counted and reported
// with the next warning, so a drill at thousands of runs per second stays
// visible without flooding the journal.
constexpr absl::Duration kLogEvery = absl::Seconds(1);

// Debian's abseil is built with its own string_view, which absl::StrSplit
// would not take from std::string_view without copies.
std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

class FaultExecutor : public Executor {
 public:
  FaultExecutor(std::unique_ptr<Executor> inner, FaultController* controller,
                FaultOptions options, uint64_t seed)
      : inner_(std::move(inner)),
        controller_(controller),
        options_(options),
        rng_(seed),
        output_(inner_->max_items() * inner_->kernel().output_bytes()) {}

  const KernelSpec& kernel() const override { return inner_->kernel(); }
  size_t max_items() const override { return inner_->max_items(); }
  absl::Span<uint8_t> input(size_t arg) override { return inner_->input(arg); }
  absl::Span<const uint8_t> output() const override { return output_; }

  absl::Status Run(size_t n) override {
    std::optional<FaultSpec> fault = controller_->For(kernel().name);
    if (fault.has_value() && fault->rate < 1.0 &&
        std::uniform_real_distribution<double>(0.0, 1.0)(rng_) >= fault->rate) {
      fault.reset();
    }
    if (fault.has_value()) Announce(*fault);
    const size_t out_bytes = n * kernel().output_bytes();
    if (fault.has_value()) {
      switch (fault->kind) {
        case FaultSpec::kError:
          return absl::UnavailableError(fmt::format(
              "device error injected by --fault={}; remove the fault (or send "
              "SIGUSR2) to stop it",
              FaultSpecToString(*fault)));
        case FaultSpec::kTimeout:
          absl::SleepFor(options_.run_timeout);
          return absl::UnavailableError(fmt::format(
              "{} run timed out after {} (injected by --fault={})",
              kernel().name, absl::FormatDuration(options_.run_timeout),
              FaultSpecToString(*fault)));
        case FaultSpec::kHang:
          controller_->WaitWhileHung(kernel().name);
          break;
        case FaultSpec::kSlow:
          absl::SleepFor(options_.slow_latency);
          break;
        case FaultSpec::kZeros:
        case FaultSpec::kGarbage:
          break;
      }
    }
    NPUK_RETURN_IF_ERROR(inner_->Run(n));
    uint8_t* out = output_.data();
    if (fault.has_value() && fault->kind == FaultSpec::kZeros) {
      std::memset(out, 0, out_bytes);
    } else if (fault.has_value() && fault->kind == FaultSpec::kGarbage) {
      std::uniform_int_distribution<int> byte(0, 255);
      for (size_t i = 0; i < out_bytes; ++i) {
        out[i] = static_cast<uint8_t>(byte(rng_));
      }
    } else {
      std::memcpy(out, inner_->output().data(), out_bytes);
    }
    return absl::OkStatus();
  }

 private:
  void Announce(const FaultSpec& fault) {
    ++unreported_;
    const absl::Time now = absl::Now();
    if (now - last_log_ < kLogEvery) return;
    spdlog::warn(
        "fault injection: {} fault on {} (--fault={}), {} run(s) since last "
        "report",
        FaultKindName(fault.kind), kernel().name, FaultSpecToString(fault),
        unreported_);
    last_log_ = now;
    unreported_ = 0;
  }

  std::unique_ptr<Executor> inner_;
  FaultController* const controller_;
  const FaultOptions options_;
  std::mt19937_64 rng_;
  // The decorator's own output so zeros/garbage never write into the
  // backend's buffers (which on xrt are device BOs).
  std::vector<uint8_t> output_;
  absl::Time last_log_ = absl::InfinitePast();
  uint64_t unreported_ = 0;
};

class FaultDevice : public Device {
 public:
  FaultDevice(std::unique_ptr<Device> inner,
              std::unique_ptr<FaultController> owned,
              FaultController* controller, FaultOptions options)
      : inner_(std::move(inner)),
        owned_(std::move(owned)),
        controller_(controller),
        options_(options) {}

  std::string_view name() const override { return inner_->name(); }

  absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      const KernelSpec& kernel, size_t max_items) override {
    NPUK_ASSIGN_OR_RETURN(std::unique_ptr<Executor> inner,
                          inner_->CreateExecutor(kernel, max_items));
    uint64_t seed = options_.seed;
    if (seed == 0) {
      seed = (static_cast<uint64_t>(std::random_device()()) << 32) ^
             std::random_device()();
    } else {
      seed += executors_++;
    }
    return std::make_unique<FaultExecutor>(std::move(inner), controller_,
                                           options_, seed);
  }

 private:
  std::unique_ptr<Device> inner_;
  std::unique_ptr<FaultController> owned_;
  FaultController* const controller_;
  const FaultOptions options_;
  uint64_t executors_ = 0;
};

}  // namespace

std::string_view FaultKindName(FaultSpec::Kind kind) {
  for (const KindName& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

std::string FaultSpecToString(const FaultSpec& spec) {
  return fmt::format("{}:{}:{}", spec.model, FaultKindName(spec.kind),
                     spec.rate);
}

absl::StatusOr<FaultSpec> ParseFaultSpec(std::string_view text) {
  const std::vector<std::string_view> parts = Split(text, ':');
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format(
        "bad --fault '{}': {}. Use MODEL:KIND[:RATE] with MODEL one of {} "
        "or *, KIND zeros|garbage|error|timeout|slow|hang and RATE in (0,1], "
        "e.g. --fault={}:zeros",
        text, why, KernelNames(), AllKernels().front()->name));
  };
  if (parts.size() < 2 || parts.size() > 3) {
    return bad("expected 2 or 3 fields separated by ':'");
  }
  FaultSpec spec;
  spec.model = std::string(parts[0]);
  if (spec.model != "*" && FindKernel(spec.model) == nullptr) {
    return bad(fmt::format("unknown model '{}'", spec.model));
  }
  const auto kind =
      std::find_if(std::begin(kKinds), std::end(kKinds),
                   [&](const KindName& k) { return k.name == parts[1]; });
  if (kind == std::end(kKinds)) {
    return bad(fmt::format("unknown kind '{}'", parts[1]));
  }
  spec.kind = kind->kind;
  if (parts.size() == 3) {
    if (!absl::SimpleAtod(absl::string_view(parts[2].data(), parts[2].size()),
                          &spec.rate) ||
        !(spec.rate > 0.0) || spec.rate > 1.0) {
      return bad(fmt::format("rate '{}' is not in (0,1]", parts[2]));
    }
  }
  return spec;
}

absl::StatusOr<std::vector<FaultSpec>> ParseFaultSpecs(std::string_view text) {
  std::vector<FaultSpec> specs;
  for (std::string_view part : Split(text, ',')) {
    if (part.empty()) continue;
    NPUK_ASSIGN_OR_RETURN(FaultSpec spec, ParseFaultSpec(part));
    specs.push_back(std::move(spec));
  }
  return specs;
}

void FaultController::Set(std::vector<FaultSpec> specs) {
  std::vector<std::string> names;
  for (const FaultSpec& s : specs) names.push_back(FaultSpecToString(s));
  {
    absl::MutexLock lock(&mu_);
    specs_ = std::move(specs);
    armed_.store(true);
  }
  if (names.empty()) {
    spdlog::warn("fault injection: all faults cleared");
  } else {
    spdlog::warn(
        "fault injection ENABLED: {} -- outputs are deliberately wrong; "
        "never run this in production",
        fmt::join(names, ", "));
  }
}

void FaultController::Clear() { Set({}); }

void FaultController::SetArmed(bool armed) { armed_.store(armed); }

bool FaultController::ToggleArmed() {
  bool was = armed_.load();
  while (!armed_.compare_exchange_weak(was, !was)) {
  }
  return !was;
}

bool FaultController::armed() const { return armed_.load(); }

std::optional<FaultSpec> FaultController::For(std::string_view model) const {
  if (!armed_.load()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  std::optional<FaultSpec> found;
  for (const FaultSpec& s : specs_) {
    if (s.model == model) return s;
    if (s.model == "*" && !found.has_value()) found = s;
  }
  return found;
}

std::vector<FaultSpec> FaultController::specs() const {
  absl::MutexLock lock(&mu_);
  return specs_;
}

void FaultController::WaitWhileHung(std::string_view model) const {
  // armed_ may flip (main.cc's sigwait thread) without touching mu_, so the
  // wait re-checks on a short period rather than relying on a wake-up.
  while (true) {
    std::optional<FaultSpec> fault = For(model);
    if (!fault.has_value() || fault->kind != FaultSpec::kHang) return;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::unique_ptr<Device> WithFaults(std::unique_ptr<Device> device,
                                   std::vector<FaultSpec> specs,
                                   FaultController* controller,
                                   FaultOptions options) {
  if (specs.empty() && controller == nullptr) return device;
  std::unique_ptr<FaultController> owned;
  if (controller == nullptr) {
    owned = std::make_unique<FaultController>();
    controller = owned.get();
  }
  // A shared controller without --fault keeps whatever it holds (nothing, at
  // start-up) so drills can arm faults later without a misleading log line.
  if (!specs.empty() || owned != nullptr) controller->Set(std::move(specs));
  return std::make_unique<FaultDevice>(std::move(device), std::move(owned),
                                       controller, options);
}

}  // namespace npuk
