#include "client/cpp/loadgen.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "client/cpp/client.h"
#include "client/cpp/target.h"
#include "grpc_service.grpc.pb.h"

namespace npuk::loadgen {
namespace {

struct Sample {
  absl::Time start;
  absl::Time end;
  bool ok;
  int64_t batch_frames;
  int64_t queue_us, compute_us, server_us;
};

// One in-flight call at a time; its samples are touched only by its own
// chain of completions, so they need no lock.
struct Slot {
  inference::GRPCInferenceService::Stub* stub = nullptr;
  std::optional<grpc::ClientContext> ctx;
  inference::ModelInferResponse response;
  absl::Time start;
  std::vector<Sample> samples;
};

class Runner {
 public:
  explicit Runner(const Spec& spec) : spec_(spec) {}

  absl::StatusOr<Report> Run(absl::FunctionRef<void(const Progress&)> progress);

 private:
  void Issue(Slot* slot);
  void Complete(Slot* slot, const grpc::Status& s);
  // Whether another call may start now.
  bool MayIssue(absl::Time now);

  const Spec& spec_;
  absl::Time begin_, measure_start_, measure_end_;
  std::atomic<int64_t> measured_issued_{0};
  std::atomic<int64_t> completed_{0};
  std::atomic<int64_t> failed_{0};

  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

bool Runner::MayIssue(absl::Time now) {
  if (now < measure_start_) return true;
  if (spec_.count > 0) {
    return measured_issued_.fetch_add(1, std::memory_order_relaxed) <
           spec_.count;
  }
  return now < measure_end_;
}

void Runner::Issue(Slot* slot) {
  const absl::Time now = absl::Now();
  if (!MayIssue(now)) {
    absl::MutexLock lock(&mu_);
    --active_;
    return;
  }
  slot->ctx.emplace();
  slot->ctx->set_deadline(absl::ToChronoTime(now + spec_.timeout));
  slot->response.Clear();
  slot->start = now;
  slot->stub->async()->ModelInfer(
      &*slot->ctx, &spec_.request, &slot->response,
      [this, slot](grpc::Status s) { Complete(slot, s); });
}

void Runner::Complete(Slot* slot, const grpc::Status& s) {
  const absl::Time end = absl::Now();
  Sample sample{slot->start, end, s.ok(), 0, 0, 0, 0};
  if (s.ok()) {
    const Timing t = TimingOf(slot->response);
    sample.batch_frames = t.batch_frames;
    sample.queue_us = absl::ToInt64Microseconds(t.queue);
    sample.compute_us = absl::ToInt64Microseconds(t.compute);
    sample.server_us = absl::ToInt64Microseconds(t.server);
  } else {
    failed_.fetch_add(1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    if (first_error_.empty()) {
      first_error_ = FromGrpc(s).ToString();
    }
  }
  slot->samples.push_back(sample);
  completed_.fetch_add(1, std::memory_order_relaxed);
  Issue(slot);
}

absl::StatusOr<Report> Runner::Run(
    absl::FunctionRef<void(const Progress&)> progress) {
  const int nchan = std::max(1, spec_.channels);
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
  for (int i = 0; i < nchan; ++i) {
    auto target = ResolveTarget(spec_.target);
    if (!target.ok()) return target.status();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // Without this, channels with equal arguments share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("npuk.loadgen.channel", i);
    auto ch = grpc::CreateCustomChannel(
        *target, grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(
            absl::ToChronoTime(absl::Now() + absl::Seconds(5)))) {
      return absl::UnavailableError(absl::StrFormat(
          "cannot connect to %s within 5 s; is the daemon running? "
          "(start it with `npukd --listen=...` or pass --target)",
          *target));
    }
    stubs.push_back(inference::GRPCInferenceService::NewStub(ch));
  }

  const int conc = std::max(1, spec_.concurrency);
  std::vector<Slot> slots(conc);
  begin_ = absl::Now();
  measure_start_ = begin_ + spec_.warmup;
  measure_end_ = measure_start_ + spec_.duration;
  {
    absl::MutexLock lock(&mu_);
    active_ = conc;
  }
  for (int i = 0; i < conc; ++i) {
    slots[i].stub = stubs[i % nchan].get();
    slots[i].samples.reserve(1024);
    Issue(&slots[i]);
  }
  for (;;) {
    bool done;
    {
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return active_ == 0;
      };
      done = mu_.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(1));
    }
    if (done) break;
    progress(Progress{completed_.load(), failed_.load(), absl::Now() - begin_});
  }

  Report r;
  std::vector<int64_t> lat_ns;
  absl::Time last_end = measure_start_;
  double batch_sum = 0, queue_sum = 0, compute_sum = 0, server_sum = 0;
  for (const Slot& s : slots) {
    for (const Sample& x : s.samples) {
      if (x.start < measure_start_) continue;
      if (spec_.count == 0 && x.end > measure_end_) continue;
      if (!x.ok) {
        ++r.errors;
        continue;
      }
      ++r.requests;
      last_end = std::max(last_end, x.end);
      lat_ns.push_back(absl::ToInt64Nanoseconds(x.end - x.start));
      batch_sum += x.batch_frames;
      queue_sum += x.queue_us;
      compute_sum += x.compute_us;
      server_sum += x.server_us;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    r.first_error = first_error_;
  }
  if (r.requests == 0) {
    return absl::UnavailableError(absl::StrFormat(
        "no call succeeded (%d failed); first error: %s", r.errors,
        r.first_error.empty() ? "none (duration too short?)" : r.first_error));
  }
  r.elapsed = spec_.count > 0 ? last_end - measure_start_ : spec_.duration;
  const double secs = absl::ToDoubleSeconds(r.elapsed);
  r.requests_per_s = r.requests / secs;
  r.frames_per_s = r.requests_per_s * spec_.frames_per_request;
  std::sort(lat_ns.begin(), lat_ns.end());
  auto pct = [&](double p) {
    const size_t i =
        std::min(lat_ns.size() - 1, static_cast<size_t>(p * lat_ns.size()));
    return absl::Nanoseconds(lat_ns[i]);
  };
  r.p50 = pct(0.50);
  r.p90 = pct(0.90);
  r.p99 = pct(0.99);
  r.max = absl::Nanoseconds(lat_ns.back());
  double sum = 0;
  for (int64_t v : lat_ns) sum += static_cast<double>(v);
  r.mean = absl::Nanoseconds(sum / lat_ns.size());
  const double n = static_cast<double>(r.requests);
  r.mean_batch_frames = batch_sum / n;
  r.mean_queue = absl::Microseconds(queue_sum / n);
  r.mean_compute = absl::Microseconds(compute_sum / n);
  r.mean_server = absl::Microseconds(server_sum / n);
  return r;
}

double Us(absl::Duration d) { return absl::ToDoubleMicroseconds(d); }

}  // namespace

absl::StatusOr<Report> Run(const Spec& spec,
                           absl::FunctionRef<void(const Progress&)> progress) {
  Runner runner(spec);
  return runner.Run(progress);
}

std::string FormatText(const Spec& spec, const Report& r) {
  std::string out = absl::StrFormat(
      "model %s, %d item(s)/request, concurrency %d, %.1f s measured\n"
      "throughput  %.0f requests/s, %.0f items/s (%d ok, %d failed)\n"
      "latency     p50 %.0f us, p90 %.0f us, p99 %.0f us, mean %.0f us, "
      "max %.0f us\n",
      spec.request.model_name(), spec.frames_per_request, spec.concurrency,
      absl::ToDoubleSeconds(r.elapsed), r.requests_per_s, r.frames_per_s,
      r.requests, r.errors, Us(r.p50), Us(r.p90), Us(r.p99), Us(r.mean),
      Us(r.max));
  if (r.mean_batch_frames > 0) {
    absl::StrAppendFormat(
        &out,
        "batching    mean %.1f items per device run\n"
        "server      queue %.0f us + compute %.0f us of %.0f us server time "
        "(mean per request)\n",
        r.mean_batch_frames, Us(r.mean_queue), Us(r.mean_compute),
        Us(r.mean_server));
  }
  if (!r.first_error.empty()) {
    absl::StrAppendFormat(&out, "first error %s\n", r.first_error);
  }
  return out;
}

std::string FormatJson(const Spec& spec, const Report& r) {
  std::string err;
  for (char c : r.first_error) {
    if (c == '"' || c == '\\') err.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) err.push_back(c);
  }
  return absl::StrFormat(
      "{\"model\": \"%s\", \"frames_per_request\": %d, \"concurrency\": %d, "
      "\"elapsed_s\": %.3f, \"requests\": %d, \"errors\": %d, "
      "\"requests_per_s\": %.1f, \"frames_per_s\": %.1f, "
      "\"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
      "\"mean\": %.1f, \"max\": %.1f}, \"mean_batch_frames\": %.2f, "
      "\"server_us\": {\"queue\": %.1f, \"compute\": %.1f, \"total\": %.1f}, "
      "\"first_error\": \"%s\"}\n",
      spec.request.model_name(), spec.frames_per_request, spec.concurrency,
      absl::ToDoubleSeconds(r.elapsed), r.requests, r.errors, r.requests_per_s,
      r.frames_per_s, Us(r.p50), Us(r.p90), Us(r.p99), Us(r.mean), Us(r.max),
      r.mean_batch_frames, Us(r.mean_queue), Us(r.mean_compute),
      Us(r.mean_server), err);
}

}  // namespace npuk::loadgen
