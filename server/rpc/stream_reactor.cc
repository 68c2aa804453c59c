#include "server/rpc/stream_reactor.h"

#include <chrono>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "server/rpc/inference_service.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

// Longest model name echoed back in a failed stream answer's model_name.
constexpr size_t kMaxEchoedModelName = 256;

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(d);
}

template <typename Message>
absl::Status Serialize(const Message& message, grpc::ByteBuffer* out) {
  bool own_buffer = false;
  const grpc::Status s =
      grpc::SerializationTraits<Message>::Serialize(message, out, &own_buffer);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat("cannot serialize the answer (",
                                            message.ByteSizeLong(),
                                            " bytes): ", s.error_message()));
  }
  return absl::OkStatus();
}

class UnaryInfer final : public grpc::ServerUnaryReactor {
 public:
  UnaryInfer(DrainGate* calls, grpc::ByteBuffer* out)
      : calls_(calls),
        out_(out),
        cancelled_(std::make_shared<std::atomic<bool>>(false)) {
    calls_->CallStarted();
  }

  // gRPC runs OnDone only after Finish was called and OnCancel returned,
  // but it orders them inside its own (uninstrumented) code. Whatever
  // touches this reactor before Finish or in OnCancel does so under
  // callbacks_mu_, and OnDone takes it before freeing: the order, stated
  // where TSan can see it. Finish itself is called without the lock, in
  // case gRPC runs OnDone inline.
  void Start(InferenceService* service, grpc::CallbackServerContext* ctx,
             grpc::ByteBuffer* in) {
    absl::Status parsed;
    {
      absl::MutexLock lock(&callbacks_mu_);
      parsed = ParseInferRequest(in, &request_, "the ModelInfer request");
    }
    if (!parsed.ok()) {
      Finish(ToGrpcStatus(parsed));
      return;
    }
    service->StartInfer(&request_, &response_, DeadlineOf(ctx), cancelled_,
                        [this](absl::Status status) {
                          {
                            absl::MutexLock lock(&callbacks_mu_);
                            if (status.ok()) {
                              status = Serialize(response_, out_);
                            }
                            response_.Clear();
                          }
                          Finish(ToGrpcStatus(status));
                        });
  }
  void OnCancel() override {
    absl::MutexLock lock(&callbacks_mu_);
    cancelled_->store(true);
  }
  void OnDone() override {
    { absl::MutexLock lock(&callbacks_mu_); }
    calls_->CallDone();
    delete this;
  }

 private:
  DrainGate* const calls_;
  grpc::ByteBuffer* const out_;
  absl::Mutex callbacks_mu_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  ModelInferRequest request_;
  ModelInferResponse response_;
};

class StreamInfer;

// A request taken off the stream for parsing and inference, charged.
struct Admitted {
  grpc::ByteBuffer bytes;
  int64_t index = 0;
  int64_t charged = 0;
};

class Waker final : public StreamWaker {
 public:
  explicit Waker(StreamInfer* stream) : stream_(stream) {}
  void Wake() override;
  void Detach() {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  StreamInfer* stream_ ABSL_GUARDED_BY(mu_);
};

using Wakeups = std::vector<std::shared_ptr<StreamWaker>>;

void WakeAll(Wakeups& wake) {
  for (auto& w : wake) w->Wake();
  wake.clear();
}

// Bidirectional stream: requests are read one at a time; answers are
// written in completion order, one write outstanding. A request read is
// admitted (charged, parsed, started) only while the stream holds less than
// its bound and the process less than its own (see stream_reactor.h);
// otherwise it stays parked, as the bytes gRPC delivered, and no further
// read is issued until it is admitted. A read is issued only under the same
// bounds and while nothing is parked. The stream finishes when the client
// half-closed (or a request could not be parsed, or the call was
// cancelled), every request read was answered and every answer written; the
// status is OK, or INVALID_ARGUMENT naming the first unparseable request.
//
// Lock order: Waker::mu_, then mu_, then the budget's. Parsing and
// StartInfer run with none of them held: an admitted request counts in
// in_flight_, so the stream cannot finish (and be deleted) meanwhile.
class StreamInfer final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamInfer(InferenceService* service, grpc::CallbackServerContext* ctx,
              StreamBudget* budget, int64_t limit)
      : service_(service),
        deadline_(DeadlineOf(ctx)),
        budget_(budget),
        limit_(limit),
        cancelled_(std::make_shared<std::atomic<bool>>(false)),
        waker_(std::make_shared<Waker>(this)) {
    service_->calls().CallStarted();
    absl::MutexLock lock(&mu_);
    MaybeReadLocked();
  }

  void OnReadDone(bool ok) override {
    std::optional<Admitted> admitted;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (!ok) {
        reads_done_ = true;
        MaybeFinishLocked();
        return;
      }
      if (reads_done_) {  // an earlier request was unparseable
        read_.Clear();
        MaybeFinishLocked();
        return;
      }
      parked_.Swap(&read_);
      parked_index_ = next_index_++;
      has_parked_ = true;
      admitted = AdmitLocked();
    }
    if (admitted.has_value()) Run(*std::move(admitted));
  }

  void OnWriteDone(bool ok) override {
    Wakeups wake;
    std::optional<Admitted> admitted;
    {
      absl::MutexLock lock(&mu_);
      ChargeLocked(-writes_.front()->charged, &wake);
      writes_.pop_front();
      if (!ok) write_failed_ = true;
      if (!writes_.empty() && !write_failed_) {
        StartWrite(&writes_.front()->out);
      } else {
        writing_ = false;
        DropWritesLocked(&wake);
      }
      admitted = AdmitLocked();
      MaybeReadLocked();
      MaybeFinishLocked();
    }
    WakeAll(wake);
    if (admitted.has_value()) Run(*std::move(admitted));
  }

  void OnCancel() override {
    cancelled_->store(true);
    Wakeups wake;
    {
      absl::MutexLock lock(&mu_);
      cancelled_call_ = true;
      if (!writing_) DropWritesLocked(&wake);
      DropParkedLocked();
      MaybeFinishLocked();
    }
    WakeAll(wake);
  }

  void OnDone() override {
    waker_->Detach();
    Wakeups wake;
    {
      absl::MutexLock lock(&mu_);
      // Nothing is held once finished; release whatever is, defensively.
      ChargeLocked(-held_, &wake);
    }
    WakeAll(wake);
    service_->calls().CallDone();
    delete this;
  }

  // The process bound has room again. Returns the parked request if it may
  // go now: the caller runs it (Run) once it holds no lock.
  std::optional<Admitted> Resume() {
    absl::MutexLock lock(&mu_);
    waiting_ = false;
    std::optional<Admitted> admitted = AdmitLocked();
    MaybeReadLocked();
    return admitted;
  }

  // Parses and starts an admitted request. No lock held.
  void Run(Admitted a) {
    auto p = std::make_unique<Pending>();
    absl::Status parsed = ParseInferRequest(
        &a.bytes, &p->request,
        absl::StrCat("request #", a.index,
                     " (counted from 0) of this ModelStreamInfer stream"));
    Wakeups wake;
    {
      absl::MutexLock lock(&mu_);
      --parsing_;
      if (!parsed.ok()) {
        ChargeLocked(-a.charged, &wake);
        --in_flight_;
        DropParkedLocked();
        // Later requests are never read: the client learns from the status
        // which request was the first one not answered.
        reads_done_ = true;
        error_ = absl::InvalidArgumentError(absl::StrCat(
            parsed.message(), "; the ", a.index,
            " request(s) before it were answered, it and any after it were "
            "not read"));
        MaybeFinishLocked();
      } else {
        p->charged = a.charged;
        MaybeReadLocked();
      }
    }
    WakeAll(wake);
    if (!parsed.ok()) return;
    Pending* raw = p.release();
    service_->StartInfer(
        &raw->request, raw->response.mutable_infer_response(), deadline_,
        cancelled_, [this, raw](absl::Status status) {
          Answered(std::unique_ptr<Pending>(raw), std::move(status));
        });
  }

 private:
  struct Pending {
    ModelInferRequest request;
    ModelStreamInferResponse response;
    grpc::ByteBuffer out;  // the serialized answer
    int64_t charged = 0;   // bytes counted for it now
  };

  void Answered(std::unique_ptr<Pending> p, absl::Status status) {
    // The request goes first: only its id and model name are still needed.
    const std::string id = p->request.id();
    std::string model = std::move(*p->request.mutable_model_name());
    if (model.size() > kMaxEchoedModelName) model.clear();
    p->request = ModelInferRequest();
    if (!status.ok()) {
      p->response.Clear();
      p->response.set_error_message(std::string(status.message()));
      p->response.mutable_infer_response()->set_id(id);
      p->response.mutable_infer_response()->set_model_name(std::move(model));
    }
    absl::Status serialized = Serialize(p->response, &p->out);
    if (!serialized.ok()) {
      p->response.Clear();
      p->response.set_error_message(std::string(serialized.message()));
      p->response.mutable_infer_response()->set_id(id);
      (void)Serialize(p->response, &p->out);
    }
    // Only the serialized bytes are kept until the write.
    p->response = ModelStreamInferResponse();
    const auto size = static_cast<int64_t>(p->out.Length());
    Wakeups wake;
    std::optional<Admitted> admitted;
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
      ChargeLocked(size - p->charged, &wake);
      p->charged = size;
      if (write_failed_ || cancelled_call_) {  // the client is gone
        ChargeLocked(-p->charged, &wake);
        p.reset();
      } else {
        writes_.push_back(std::move(p));
        if (!writing_) {
          writing_ = true;
          StartWrite(&writes_.front()->out);
        }
      }
      admitted = AdmitLocked();
      MaybeReadLocked();
      MaybeFinishLocked();
    }
    WakeAll(wake);
    if (admitted.has_value()) Run(*std::move(admitted));
  }

  void ChargeLocked(int64_t delta, Wakeups* wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (delta == 0) return;
    held_ += delta;
    budget_->Add(delta, wake);
  }

  // Queued answers of a client that is gone; the one being written (if
  // any) is released when its write completes.
  void DropWritesLocked(Wakeups* wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || writes_.empty()) return;
    for (const auto& w : writes_) ChargeLocked(-w->charged, wake);
    writes_.clear();
  }

  void DropParkedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!has_parked_) return;
    parked_.Clear();
    has_parked_ = false;
  }

  // The parked request, charged and counted in flight, when the bounds
  // allow it (a stream that holds nothing always gets its first request in
  // while the process is under its bound, however large the request: one
  // message is within max_message_bytes).
  std::optional<Admitted> AdmitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!has_parked_ || finished_) return std::nullopt;
    if (cancelled_call_ || write_failed_ || !error_.ok()) {
      DropParkedLocked();
      return std::nullopt;
    }
    if (held_ >= limit_) return std::nullopt;  // admitted as answers go out
    if (waiting_) return std::nullopt;         // admitted by Waker::Wake
    // The request and, until it is answered, its answer: no model's
    // answer is larger than its request.
    const int64_t charge = 2 * static_cast<int64_t>(parked_.Length());
    if (!budget_->TryCharge(charge, waker_, /*reserve=*/held_ > 0)) {
      waiting_ = true;
      return std::nullopt;
    }
    held_ += charge;
    Admitted a;
    a.bytes.Swap(&parked_);
    has_parked_ = false;
    a.index = parked_index_;
    a.charged = charge;
    ++in_flight_;
    ++parsing_;
    return a;
  }

  void MaybeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || has_parked_ || parsing_ > 0 || reads_done_ ||
        cancelled_call_ || write_failed_ || finished_) {
      return;
    }
    if (held_ >= limit_) return;  // resumed as its answers are written
    if (waiting_) return;         // resumed by Waker::Wake
    // A stream that already holds something may only fill half of the
    // process bound: the other half stays for streams that hold nothing,
    // so clients that read their answers keep going however many others
    // sit at their bound.
    if (!budget_->RoomOrWait(waker_, /*reserve=*/held_ > 0)) {
      waiting_ = true;
      return;
    }
    reading_ = true;
    StartRead(&read_);
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || reading_ || has_parked_ || in_flight_ > 0 || writing_) {
      return;
    }
    if (!reads_done_ && !cancelled_call_ && !write_failed_) return;
    finished_ = true;
    if (service_->draining() && !cancelled_call_ && !write_failed_) {
      // Sent once the client had time to read the answers (drain_gate.h).
      service_->calls().HoldFinish(
          [this, status = ToGrpcStatus(error_)] { Finish(status); });
      return;
    }
    Finish(ToGrpcStatus(error_));
  }

  InferenceService* const service_;
  const absl::Time deadline_;
  StreamBudget* const budget_;
  const int64_t limit_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  const std::shared_ptr<Waker> waker_;

  absl::Mutex mu_;
  grpc::ByteBuffer read_ ABSL_GUARDED_BY(mu_);    // the read target
  grpc::ByteBuffer parked_ ABSL_GUARDED_BY(mu_);  // read, not yet admitted
  int64_t parked_index_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::unique_ptr<Pending>> writes_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  int64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t held_ ABSL_GUARDED_BY(mu_) = 0;  // bytes counted in the budget
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Admitted requests not parsed yet: nothing more is read meanwhile, so no
  // request after an unparseable one is ever read (or answered).
  int parsing_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool has_parked_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_call_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

void Waker::Wake() {
  StreamInfer* stream = nullptr;
  std::optional<Admitted> admitted;
  {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr) return;
    stream = stream_;
    admitted = stream->Resume();
  }
  // In flight now: the stream stays alive until its answer.
  if (admitted.has_value()) stream->Run(*std::move(admitted));
}

}  // namespace

void StreamBudget::Add(int64_t delta, Wakeups* wake) {
  absl::MutexLock lock(&mu_);
  used_ += delta;
  auto take = [wake](std::vector<std::shared_ptr<StreamWaker>>& waiting) {
    wake->insert(wake->end(), waiting.begin(), waiting.end());
    waiting.clear();
  };
  if (used_ < limit_) take(waiting_);
  if (used_ < limit_ / 2) take(waiting_half_);
}

bool StreamBudget::TryCharge(int64_t delta,
                             const std::shared_ptr<StreamWaker>& waker,
                             bool reserve) {
  absl::MutexLock lock(&mu_);
  const int64_t bound = reserve ? limit_ / 2 : limit_;
  if (used_ < bound) {
    used_ += delta;
    return true;
  }
  (reserve ? waiting_half_ : waiting_).push_back(waker);
  return false;
}

bool StreamBudget::RoomOrWait(const std::shared_ptr<StreamWaker>& waker,
                              bool reserve) {
  absl::MutexLock lock(&mu_);
  const int64_t bound = reserve ? limit_ / 2 : limit_;
  if (used_ < bound) return true;
  (reserve ? waiting_half_ : waiting_).push_back(waker);
  return false;
}

int64_t StreamBudget::used() const {
  absl::MutexLock lock(&mu_);
  return used_;
}

absl::Status ParseInferRequest(grpc::ByteBuffer* bytes,
                               ModelInferRequest* request,
                               absl::string_view what) {
  const size_t size = bytes->Length();
  bool ok = false;
  {
    grpc::ProtoBufferReader reader(bytes);
    google::protobuf::io::CodedInputStream decoder(&reader);
    decoder.SetTotalBytesLimit(std::numeric_limits<int>::max());
    ok = request->ParseFromCodedStream(&decoder) &&
         decoder.ConsumedEntireMessage();
  }
  bytes->Clear();
  if (!ok) {
    request->Clear();
    return absl::InvalidArgumentError(absl::StrCat(
        what, " (", size,
        " bytes) is not a valid inference.ModelInferRequest protobuf "
        "message; send one serialized from grpc_service.proto (KServe v2)"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* StartUnaryInfer(InferenceService* service,
                                          grpc::CallbackServerContext* ctx,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) {
  auto* reactor = new UnaryInfer(&service->calls(), response);
  // The handler owns the request buffer and hands it over as const; it does
  // not read it again. Parsing empties it so that its bytes are released as
  // soon as the parsed copy exists, not at the end of the call.
  reactor->Start(service, ctx,
                 const_cast<grpc::ByteBuffer*>(request));  // NOLINT
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StartStreamInfer(
    InferenceService* service, grpc::CallbackServerContext* ctx,
    StreamBudget* budget, int64_t stream_limit) {
  return new StreamInfer(service, ctx, budget, stream_limit);
}

}  // namespace npuk
