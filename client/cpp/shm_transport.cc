#include "client/cpp/shm_transport.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace npuk {
namespace {

constexpr size_t kAlign = 64;
constexpr const char* kParams[] = {
    "shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"};

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool IsShmError(const grpc::Status& s) {
  const std::string& m = s.error_message();
  return s.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
         (absl::StrContains(m, "shared memory") ||
          absl::StrContains(m, "shared-memory") ||
          absl::StrContains(m, "shared_memory"));
}

// Statuses the daemon itself sends once it is done with a request; after
// any other end (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE, ...) it may
// still be running it.
bool DaemonAnswered(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::UNAUTHENTICATED:
      return true;
    default:
      return false;
  }
}

std::string UniqueName() {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  return absl::StrFormat("npuk_%d_%08x%04x", getpid(), rd(),
                         static_cast<unsigned>(counter.fetch_add(1) & 0xffff));
}

}  // namespace

bool IsLocalTarget(absl::string_view target) {
  if (absl::StartsWith(target, "unix:") ||
      absl::StartsWith(target, "unix-abstract:")) {
    return true;
  }
  for (absl::string_view prefix : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::ConsumePrefix(&target, prefix)) break;
  }
  absl::string_view host = target;
  if (absl::StartsWith(host, "[")) {
    host = host.substr(0, host.find(']') + 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "[::1]" || host == "::1" ||
         absl::StartsWith(host, "127.");
}

bool SharedMemoryEnabledByEnv() {
  const char* v = std::getenv("NPUK_SHM");
  if (v == nullptr) return true;
  const std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
  return !(s == "0" || s == "false" || s == "no" || s == "off");
}

// One POSIX shared-memory object, mapped here; registered with the daemon
// under its own name.
struct ShmTransport::Region {
  std::string name;
  size_t size = 0;
  uint8_t* data = nullptr;

  // Removes the object's name (the mappings stay valid); once.
  void Unlink() {
    if (!unlinked.exchange(true)) shm_unlink(("/" + name).c_str());
  }

  ~Region() {
    if (data != nullptr) munmap(data, size);
    Unlink();
  }

  std::atomic<bool> unlinked{false};
};

ShmTransport::ShmTransport(inference::GRPCInferenceService::Stub* stub,
                           absl::Duration timeout)
    : stub_(stub), timeout_(timeout) {}

ShmTransport::~ShmTransport() {
  std::vector<std::shared_ptr<Region>> regions;
  {
    absl::MutexLock lock(&mu_);
    regions.swap(all_);
    free_.clear();
  }
  for (const auto& r : regions) Unregister(r);
  absl::MutexLock lock(&pending_->mu);
  pending_->mu.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &pending_->unregisters));
}

size_t ShmTransport::regions() const {
  absl::MutexLock lock(&mu_);
  return all_.size();
}

size_t ShmTransport::free_regions() const {
  absl::MutexLock lock(&mu_);
  return free_.size();
}

std::shared_ptr<ShmTransport::Region> ShmTransport::Acquire(size_t bytes) {
  std::shared_ptr<Region> evict;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if ((*it)->size >= bytes) {
        std::shared_ptr<Region> r = *it;
        free_.erase(it);
        return r;
      }
    }
    if (all_.size() + creating_ >= kMaxRegions) {
      if (free_.empty()) return nullptr;
      evict = free_.back();  // too small: replace it by a bigger one
      free_.pop_back();
      all_.erase(std::find(all_.begin(), all_.end(), evict));
    }
    ++creating_;  // reserves the slot while registering
  }
  if (evict != nullptr) UnregisterAsync(std::move(evict));
  auto give_back = [this] {
    absl::MutexLock lock(&mu_);
    --creating_;
  };

  auto region = std::make_shared<Region>();
  region->name = UniqueName();
  region->size = kMinRegionBytes;
  while (region->size < bytes) region->size *= 2;
  const std::string key = "/" + region->name;
  const int fd = shm_open(key.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) {
    give_back();
    return nullptr;
  }
  if (ftruncate(fd, static_cast<off_t>(region->size)) != 0) {
    close(fd);
    shm_unlink(key.c_str());
    give_back();
    return nullptr;
  }
  void* p =
      mmap(nullptr, region->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    shm_unlink(key.c_str());
    give_back();
    return nullptr;
  }
  region->data = static_cast<uint8_t*>(p);

  inference::SystemSharedMemoryRegisterRequest req;
  req.set_name(region->name);
  req.set_key(key);
  req.set_offset(0);
  req.set_byte_size(region->size);
  inference::SystemSharedMemoryRegisterResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  const grpc::Status s = stub_->SystemSharedMemoryRegister(&ctx, req, &resp);
  if (!s.ok()) {
    // The daemon cannot use our memory (or lacks the extension): plain gRPC
    // from now on. A transient failure only skips this call.
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      disabled_.store(true);
    }
    give_back();
    return nullptr;  // ~Region unmaps and unlinks
  }
  absl::MutexLock lock(&mu_);
  --creating_;
  all_.push_back(region);
  return region;
}

void ShmTransport::Release(std::shared_ptr<Region> region) {
  absl::MutexLock lock(&mu_);
  if (std::find(all_.begin(), all_.end(), region) != all_.end()) {
    free_.push_back(std::move(region));
  }
}

void ShmTransport::Retire(const std::shared_ptr<Region>& region) {
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find(all_.begin(), all_.end(), region);
    if (it == all_.end()) return;  // already out of the pool
    all_.erase(it);
    auto f = std::find(free_.begin(), free_.end(), region);
    if (f != free_.end()) free_.erase(f);
  }
  region->Unlink();  // off the disk now; unmapped when the last user ends
  UnregisterAsync(region);
}

void ShmTransport::Unregister(const std::shared_ptr<Region>& region) {
  inference::SystemSharedMemoryUnregisterRequest req;
  req.set_name(region->name);
  inference::SystemSharedMemoryUnregisterResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  (void)stub_->SystemSharedMemoryUnregister(&ctx, req, &resp);
}

void ShmTransport::UnregisterAsync(std::shared_ptr<Region> region) {
  struct Op {
    grpc::ClientContext ctx;
    inference::SystemSharedMemoryUnregisterRequest req;
    inference::SystemSharedMemoryUnregisterResponse resp;
    std::shared_ptr<Region> region;  // unmapped when the call ends
  };
  auto* op = new Op;
  op->req.set_name(region->name);
  op->region = std::move(region);
  op->ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  {
    absl::MutexLock lock(&pending_->mu);
    ++pending_->unregisters;
  }
  // The callback holds the counter, not the transport, which the
  // destructor may free as soon as the count reaches zero.
  stub_->async()->SystemSharedMemoryUnregister(
      &op->ctx, &op->req, &op->resp,
      [pending = pending_, op](const grpc::Status&) {
        delete op;
        absl::MutexLock lock(&pending->mu);
        --pending->unregisters;
      });
}

std::string ShmTransport::OutputName(const std::string& model) {
  {
    absl::MutexLock lock(&mu_);
    auto it = output_names_.find(model);
    if (it != output_names_.end()) return it->second;
  }
  inference::ModelMetadataRequest req;
  req.set_name(model);
  inference::ModelMetadataResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  if (!stub_->ModelMetadata(&ctx, req, &resp).ok()) return "";
  std::string name = resp.outputs_size() == 1 ? resp.outputs(0).name() : "";
  absl::MutexLock lock(&mu_);
  output_names_[model] = name;
  return name;
}

std::unique_ptr<ShmTransport::Lease> ShmTransport::Begin(
    const inference::ModelInferRequest& request) {
  auto plain = [&] {
    fallbacks_.fetch_add(1);
    return nullptr;
  };
  if (!active() || request.inputs_size() == 0 ||
      request.raw_input_contents_size() != request.inputs_size() ||
      request.outputs_size() > 1) {
    return plain();
  }
  for (const auto& in : request.inputs()) {
    if (!in.parameters().empty()) return plain();
  }
  size_t inputs = 0;
  for (const std::string& b : request.raw_input_contents()) {
    inputs += AlignUp(b.size());
  }
  // The output is at most a few times the input for every model; when it
  // is not, the daemon says so and the request goes plain.
  const size_t need = std::max(kMinRegionBytes, 4 * inputs);
  if (need > kMaxRegionBytes) return plain();
  const std::string output =
      request.outputs_size() == 1 && !request.outputs(0).name().empty()
          ? request.outputs(0).name()
          : OutputName(request.model_name());
  if (output.empty()) return plain();
  std::shared_ptr<Region> region = Acquire(need);
  if (region == nullptr) return plain();

  auto lease = std::make_unique<Lease>();
  lease->region = region;
  // Everything but the raw bytes (which go into the region instead).
  inference::ModelInferRequest& shm_request = lease->request;
  shm_request.set_model_name(request.model_name());
  shm_request.set_model_version(request.model_version());
  shm_request.set_id(request.id());
  *shm_request.mutable_parameters() = request.parameters();
  *shm_request.mutable_inputs() = request.inputs();
  size_t offset = 0;
  for (int i = 0; i < request.inputs_size(); ++i) {
    const std::string& bytes = request.raw_input_contents(i);
    std::memcpy(region->data + offset, bytes.data(), bytes.size());
    auto& p = *shm_request.mutable_inputs(i)->mutable_parameters();
    p["shared_memory_region"].set_string_param(region->name);
    p["shared_memory_offset"].set_int64_param(static_cast<int64_t>(offset));
    p["shared_memory_byte_size"].set_int64_param(
        static_cast<int64_t>(bytes.size()));
    offset += AlignUp(bytes.size());
  }
  lease->out_offset = offset;
  auto* o = shm_request.add_outputs();
  if (request.outputs_size() == 1) *o = request.outputs(0);
  o->set_name(output);
  auto& op = *o->mutable_parameters();
  op["shared_memory_region"].set_string_param(region->name);
  op["shared_memory_offset"].set_int64_param(static_cast<int64_t>(offset));
  op["shared_memory_byte_size"].set_int64_param(
      static_cast<int64_t>(region->size - offset));
  return lease;
}

bool ShmTransport::End(Lease& lease, const grpc::Status& s,
                       inference::ModelInferResponse* response) {
  std::shared_ptr<Region> region = std::move(lease.region);
  if (!s.ok() && IsShmError(s)) {
    // The region is gone (someone unregistered it: forget it) or the
    // request does not fit it: answer this request plainly, which also
    // gives plain gRPC's error text.
    if (absl::StrContains(s.error_message(), "not registered")) {
      Retire(region);
    } else {
      Release(std::move(region));
    }
    response->Clear();
    fallbacks_.fetch_add(1);
    return true;
  }
  if (!DaemonAnswered(s.error_code())) {
    // Cancelled, past the deadline or cut off: the daemon may still write
    // into the region, so it is never lent again.
    Retire(region);
    return false;
  }
  if (s.ok()) {
    const size_t out_offset = lease.out_offset;
    for (auto& out : *response->mutable_outputs()) {
      auto& p = *out.mutable_parameters();
      auto size = p.find("shared_memory_byte_size");
      if (size == p.end()) continue;
      const auto n = static_cast<size_t>(
          std::clamp<int64_t>(size->second.int64_param(), 0,
                              static_cast<int64_t>(region->size - out_offset)));
      response->add_raw_output_contents()->assign(
          reinterpret_cast<const char*>(region->data + out_offset), n);
      for (const char* k : kParams) p.erase(k);
    }
    shm_requests_.fetch_add(1);
  }
  Release(std::move(region));
  return false;
}

grpc::Status ShmTransport::Infer(const inference::ModelInferRequest& request,
                                 inference::ModelInferResponse* response,
                                 Call call) {
  std::unique_ptr<Lease> lease = Begin(request);
  if (lease == nullptr) return call(request, response);
  const grpc::Status s = call(lease->request, response);
  if (End(*lease, s, response)) return call(request, response);
  return s;
}

}  // namespace npuk
