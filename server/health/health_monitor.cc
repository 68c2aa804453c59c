#include "server/health/health_monitor.h"

#include <utility>

#include "fmt/format.h"
#include "fmt/ranges.h"
#include "spdlog/spdlog.h"

namespace npuk {

// One canary submission. Shared between the monitor and the task's done
// callback, so a canary that outlives its wait (a hung device) never writes
// into freed memory.
struct HealthMonitor::Call {
  std::shared_ptr<const Canary> canary;
  std::vector<uint8_t> output;
  absl::Time submitted;
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
};

namespace {

// Describes how `got` differs from `want`; empty when equal.
std::string Compare(const Canary& canary, absl::Span<const uint8_t> got) {
  const size_t item_bytes = canary.kernel->output_bytes();
  bool all_zero = true;
  for (uint8_t b : got) all_zero &= b == 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == canary.expected[i]) continue;
    return fmt::format(
        "canary output differs from the golden output at {} {} of {}, byte "
        "{} (got {}, want {}){}",
        canary.kernel->unit, i / item_bytes, canary.items, i % item_bytes,
        static_cast<int>(got[i]), static_cast<int>(canary.expected[i]),
        all_zero ? "; the device returned all zeros" : "");
  }
  return "";
}

// How often a canary refused by a full queue is offered again.
constexpr absl::Duration kQueueRetry = absl::Milliseconds(5);

bool DeviceFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

HealthMonitor::HealthMonitor(HealthMonitorOptions options)
    : options_([&] {
        if (options.answer_window == absl::ZeroDuration()) {
          options.answer_window = 2 * options.interval + options.canary_timeout;
        }
        return options;
      }()) {}

HealthMonitor::~HealthMonitor() { Stop(); }

void HealthMonitor::AddModel(Batcher* batcher, Canary canary) {
  absl::MutexLock lock(&mu_);
  const std::string name = canary.kernel->name;
  Model& m = models_[name];
  m.batcher = batcher;
  m.name = name;
  m.reason = "start-up canary has not run yet";
  m.canary = std::make_shared<const Canary>(std::move(canary));
  order_.push_back(name);
}

void HealthMonitor::AddObserver(Observer observer) {
  absl::MutexLock publish(&publish_mu_);
  HealthSnapshot snapshot = Snapshot();
  observer(snapshot);
  observers_.push_back(std::move(observer));
}

absl::Status HealthMonitor::RunInitialCanaries() {
  std::vector<std::string> all;
  {
    absl::MutexLock lock(&mu_);
    all = order_;
  }
  RunCanaries(all);
  std::vector<std::string> failing;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& k : order_) {
      const Model& m = models_.at(k);
      if (!m.serving)
        failing.push_back(fmt::format("{}: {}", m.name, m.reason));
    }
  }
  if (failing.empty()) return absl::OkStatus();
  return absl::UnavailableError(fmt::format(
      "start-up canaries failed ({}); the affected models stay NOT_SERVING "
      "and are re-checked every {}",
      fmt::join(failing, "; "), absl::FormatDuration(options_.interval)));
}

void HealthMonitor::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void HealthMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void HealthMonitor::ReportFault(std::string_view model,
                                const absl::Status& why) {
  // Publish the very snapshot that records the transition, under the
  // publish lock: a canary that recovers the model at once publishes after
  // us, so observers always see NOT_SERVING before SERVING again.
  absl::MutexLock publish(&publish_mu_);
  HealthSnapshot snapshot;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(model);
    if (it == models_.end()) return;
    Model& m = it->second;
    m.last_answer = absl::Now();
    // Only the transition triggers a canary: while NOT_SERVING the interval
    // canary decides recovery, so a stream of bad runs cannot spin canaries.
    if (!m.serving) return;
    m.serving = false;
    m.reason = std::string(why.message());
    m.triggered = true;
    spdlog::error("health: {} NOT_SERVING: {}; running a canary now", m.name,
                  m.reason);
    snapshot = SnapshotLocked();
  }
  for (const Observer& observer : observers_) observer(snapshot);
}

void HealthMonitor::NoteDeviceAnswered(std::string_view model) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(model);
  if (it != models_.end()) it->second.last_answer = absl::Now();
}

void HealthMonitor::SetAcceptFault(std::string reason) {
  {
    absl::MutexLock lock(&mu_);
    if (accept_fault_ == reason) return;
    accept_fault_ = std::move(reason);
  }
  Publish();
}

bool HealthMonitor::IsServing(std::string_view model) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(model);
  return it != models_.end() && it->second.serving && accept_fault_.empty();
}

bool HealthMonitor::AllServing() const {
  absl::MutexLock lock(&mu_);
  return SnapshotLocked().all_serving;
}

bool HealthMonitor::DeviceAnswers() const {
  absl::MutexLock lock(&mu_);
  return DeviceAnswersLocked(absl::Now());
}

HealthSnapshot HealthMonitor::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return SnapshotLocked();
}

std::vector<std::string> HealthMonitor::model_names() const {
  absl::MutexLock lock(&mu_);
  return order_;
}

HealthSnapshot HealthMonitor::SnapshotLocked() const {
  HealthSnapshot s;
  s.all_serving = !order_.empty();
  for (const std::string& k : order_) {
    const Model& m = models_.at(k);
    const bool serving = m.serving && accept_fault_.empty();
    s.models.push_back(
        {m.name, serving,
         serving ? ""
         : m.serving
             ? fmt::format("cannot accept connections: {}", accept_fault_)
             : m.reason,
         m.last_canary, m.last_canary_ok});
    s.all_serving &= serving;
  }
  s.device_answers = DeviceAnswersLocked(absl::Now());
  return s;
}

bool HealthMonitor::DeviceAnswersLocked(absl::Time now) const {
  if (order_.empty()) return false;
  for (const std::string& k : order_) {
    if (now - models_.at(k).last_answer > options_.answer_window) return false;
  }
  return true;
}

void HealthMonitor::RunCanaries(const std::vector<std::string>& models) {
  struct Pending {
    std::string model;
    std::shared_ptr<Call> call;
    std::string failure;  // set when the canary could not be submitted
  };
  std::vector<Pending> pending;
  for (const std::string& model : models) {
    Batcher* batcher;
    std::shared_ptr<const Canary> canary;
    std::shared_ptr<Call> stuck;
    {
      absl::MutexLock lock(&mu_);
      Model& m = models_.at(model);
      batcher = m.batcher;
      canary = m.canary;
      stuck = m.in_flight;
    }
    if (stuck != nullptr) {
      absl::MutexLock lock(&stuck->mu);
      if (!stuck->done) {
        pending.push_back(
            {model, nullptr,
             fmt::format("a canary has not completed for more than {}: the "
                         "device is not answering",
                         absl::FormatDuration(options_.canary_timeout))});
        continue;
      }
    }
    auto call = std::make_shared<Call>();
    call->canary = canary;
    call->output.assign(canary->expected.size(), 0);
    call->submitted = absl::Now();
    const absl::Time deadline = call->submitted + options_.canary_timeout;
    const auto make_task = [&] {
      auto task = std::make_unique<InferTask>();
      task->items = canary->items;
      for (const std::vector<uint8_t>& plane : canary->planes) {
        task->inputs.emplace_back(plane);
      }
      task->output = call->output.data();
      task->deadline = deadline;
      task->canary = true;
      task->done = [call](absl::Status status, const TaskTiming&) {
        absl::MutexLock lock(&call->mu);
        call->status = std::move(status);
        call->done = true;
      };
      return task;
    };
    // A full queue is load, not a broken device: keep offering the canary
    // until its deadline, and only then count it as failing.
    absl::Status submitted = batcher->Submit(make_task());
    while (absl::IsResourceExhausted(submitted) &&
           absl::Now() + kQueueRetry < deadline) {
      absl::SleepFor(kQueueRetry);
      submitted = batcher->Submit(make_task());
    }
    if (!submitted.ok()) {
      pending.push_back({model, nullptr,
                         fmt::format("the canary could not be queued: {}",
                                     submitted.ToString())});
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      models_.at(model).in_flight = call;
    }
    pending.push_back({model, call, ""});
  }

  bool changed = false;
  for (Pending& p : pending) {
    std::string failure = p.failure;
    bool answered = false;
    bool done = false;
    if (p.call != nullptr) {
      absl::MutexLock lock(&p.call->mu);
      const absl::Time deadline = p.call->submitted + options_.canary_timeout;
      p.call->mu.AwaitWithDeadline(absl::Condition(&p.call->done), deadline);
      done = p.call->done;
      if (!done) {
        failure = fmt::format(
            "the canary did not complete within {}: the device is not "
            "answering",
            absl::FormatDuration(options_.canary_timeout));
      } else if (!p.call->status.ok()) {
        answered = !DeviceFailure(p.call->status);
        failure =
            fmt::format("the canary run failed: {}", p.call->status.ToString());
      } else {
        answered = true;
        failure = Compare(*p.call->canary, p.call->output);
      }
    }
    absl::MutexLock lock(&mu_);
    Model& m = models_.at(p.model);
    const absl::Time now = absl::Now();
    m.last_canary = now;
    m.last_canary_ok = failure.empty();
    if (answered) m.last_answer = now;
    if (done) m.in_flight = nullptr;
    const bool serving = failure.empty();
    if (serving != m.serving || (!serving && failure != m.reason)) {
      if (serving) {
        spdlog::info("health: {} SERVING (canary passed)", m.name);
      } else if (m.serving || failure != m.reason) {
        spdlog::error("health: {} NOT_SERVING: {}", m.name, failure);
      }
      changed |= serving != m.serving;
      m.serving = serving;
      m.reason = failure;
    }
  }
  bool answers_changed;
  {
    absl::MutexLock lock(&mu_);
    const bool answers = DeviceAnswersLocked(absl::Now());
    answers_changed = answers != last_answers_;
    last_answers_ = answers;
  }
  if (changed || answers_changed) Publish();
}

void HealthMonitor::Loop() {
  absl::Time next = absl::Now() + options_.interval;
  while (true) {
    std::vector<std::string> due;
    {
      absl::MutexLock lock(&mu_);
      const auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_) return true;
        for (const auto& [k, m] : models_) {
          if (m.triggered) return true;
        }
        return false;
      };
      mu_.AwaitWithDeadline(absl::Condition(&wake), next);
      if (stopping_) return;
      const bool interval_due = absl::Now() >= next;
      for (const std::string& k : order_) {
        Model& m = models_.at(k);
        if (interval_due || m.triggered) due.push_back(k);
        m.triggered = false;
      }
      if (interval_due) next = absl::Now() + options_.interval;
    }
    RunCanaries(due);
  }
}

void HealthMonitor::Publish() {
  absl::MutexLock publish(&publish_mu_);
  const HealthSnapshot snapshot = Snapshot();
  for (const Observer& observer : observers_) observer(snapshot);
}

}  // namespace npuk
