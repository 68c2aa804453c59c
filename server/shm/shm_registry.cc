#include "server/shm/shm_registry.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "server/common/quote.h"

namespace npuk::shm {

// The mapped window [base, base + length) of one object; `data` is where
// the region starts inside it (mmap needs a page-aligned file offset).
class Mapping {
 public:
  Mapping(void* base, size_t length, uint8_t* data)
      : base_(base), length_(length), data_(data) {}
  ~Mapping() { munmap(base_, length_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  uint8_t* data() const { return data_; }

 private:
  void* const base_;
  const size_t length_;
  uint8_t* const data_;
};

namespace {

// SIGBUS guard. A client may shrink its object (ftruncate) after
// registering it; touching a mapped page past the new end raises SIGBUS.
// Copies to and from regions set a per-thread jump target; the handler
// jumps back to it, and the copy reports an error. A SIGBUS anywhere else is
// passed to the previous handler (or kills the process as by default).
thread_local sigjmp_buf* volatile t_guard = nullptr;
struct sigaction g_previous_sigbus {};

void OnSigbus(int sig, siginfo_t* info, void* context) {
  sigjmp_buf* guard = t_guard;
  if (guard != nullptr) {
    t_guard = nullptr;
    siglongjmp(*guard, 1);  // NOLINT(cert-err52-cpp): a memcpy, no C++ state
  }
  if ((g_previous_sigbus.sa_flags & SA_SIGINFO) != 0 &&
      g_previous_sigbus.sa_sigaction != nullptr) {
    g_previous_sigbus.sa_sigaction(sig, info, context);
    return;
  }
  if ((g_previous_sigbus.sa_flags & SA_SIGINFO) == 0 &&
      g_previous_sigbus.sa_handler != SIG_DFL &&
      g_previous_sigbus.sa_handler != SIG_IGN) {
    g_previous_sigbus.sa_handler(sig);
    return;
  }
  // Returning re-runs the faulting access under the default action.
  signal(SIGBUS, SIG_DFL);
}

void InstallSigbusGuard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnSigbus;
    // SA_NODEFER: SIGBUS stays unblocked after the jump, so no signal mask
    // needs saving per copy.
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous_sigbus);
  });
}

// memcpy that returns false instead of dying when a page is gone.
bool GuardedCopy(void* dst, const void* src, size_t n) {
  sigjmp_buf env;
  // NOLINTNEXTLINE(cert-err52-cpp): see OnSigbus
  if (sigsetjmp(env, 0) != 0) {
    t_guard = nullptr;
    return false;
  }
  t_guard = &env;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(dst, src, n);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_guard = nullptr;
  return true;
}

absl::Status TruncatedError(const std::string& region, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "the shared-memory object behind region ", region,
      " was truncated below the range of ", what,
      " after it was registered; keep the object at least as large as the "
      "registered region while it is registered (or unregister it and "
      "register it again)"));
}

std::string ErrnoText(int err) { return std::strerror(err); }

using npuk::QuoteBounded;  // client input, bounded (server/common/quote.h)

}  // namespace

absl::Status RegionView::CopyTo(absl::Span<uint8_t> dst,
                                absl::string_view what) const {
  if (dst.size() != size_) {
    return absl::InternalError(absl::StrCat("shared-memory copy of ", what,
                                            ": ", dst.size(),
                                            " bytes for a range of ", size_));
  }
  if (size_ == 0) return absl::OkStatus();
  if (!GuardedCopy(dst.data(), data_, size_)) {
    return TruncatedError(region_, what);
  }
  return absl::OkStatus();
}

absl::Status RegionView::CopyFrom(absl::Span<const uint8_t> src,
                                  absl::string_view what) const {
  if (src.size() > size_) {
    return absl::InternalError(absl::StrCat("shared-memory copy of ", what,
                                            ": ", src.size(),
                                            " bytes into a range of ", size_));
  }
  if (src.empty()) return absl::OkStatus();
  if (!GuardedCopy(data_, src.data(), src.size())) {
    return TruncatedError(region_, what);
  }
  return absl::OkStatus();
}

SharedMemoryRegistry::SharedMemoryRegistry(RegistryLimits limits)
    : limits_(limits) {
  InstallSigbusGuard();
}

SharedMemoryRegistry::~SharedMemoryRegistry() = default;

absl::Status SharedMemoryRegistry::Register(absl::string_view name,
                                            absl::string_view key,
                                            uint64_t offset,
                                            uint64_t byte_size) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        "system shared-memory region name is empty; give the region a "
        "name (it is what inputs and outputs refer to)");
  }
  if (name.size() > limits_.max_name_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "system shared-memory region name ", QuoteBounded(name), " is ",
        name.size(), " bytes; use at most ", limits_.max_name_bytes));
  }
  const std::string quoted = QuoteBounded(name);
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "region ", quoted,
        ": key is empty; set it to the shm_open name of the object, e.g. "
        "'/my_region'"));
  }
  if (key.size() > limits_.max_key_bytes ||
      key.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "region ", quoted, ": key ", QuoteBounded(key),
        " is not a shm_open name (at most ", limits_.max_key_bytes,
        " bytes, no NUL); use the name the object was created with"));
  }
  if (byte_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "region ", quoted, ": byte_size is 0; register at least one byte"));
  }
  if (byte_size > limits_.max_region_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "region ", quoted, ": byte_size ", byte_size,
        " is over this server's limit of ", limits_.max_region_bytes,
        " bytes per region; register a smaller window"));
  }
  if (offset > UINT64_MAX - byte_size ||
      offset + byte_size > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("region ", quoted, ": offset ", offset, " + byte_size ",
                     byte_size, " overflows; use a smaller offset"));
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    if (regions_.find(name) != regions_.end()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "system shared-memory region ", quoted,
          " is already registered; unregister it first or use another name"));
    }
  }

  const std::string key_string(key);
  const int fd = shm_open(key_string.c_str(), O_RDWR, 0);
  if (fd < 0) {
    const int err = errno;
    const std::string base = absl::StrCat(
        "region ", quoted, ": cannot open ", "shared-memory object ",
        QuoteBounded(key), " (", ErrnoText(err), "); ");
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          base,
          "create it first (shm_open with O_CREAT, then ftruncate) on the "
          "same host as the server"));
    }
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(
          absl::StrCat(base, "give the server's user read-write access to it"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(base, "check the key is a valid shm_open name"));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return absl::InternalError(
        absl::StrCat("region ", quoted, ": fstat: ", ErrnoText(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        "region ", quoted, ": ", QuoteBounded(key),
        " is not a shared-memory object; use one made with shm_open"));
  }
  const auto object_size = static_cast<uint64_t>(st.st_size);
  if (offset + byte_size > object_size) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        "region ", quoted, ": offset ", offset, " + byte_size ", byte_size,
        " = ", offset + byte_size, " is past the end of shared-memory object ",
        QuoteBounded(key), " (", object_size,
        " bytes); grow the object (ftruncate) or register a smaller window"));
  }
  const auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t aligned = offset - offset % page;
  const uint64_t delta = offset - aligned;
  const size_t length = static_cast<size_t>(delta + byte_size);
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    static_cast<off_t>(aligned));
  const int map_err = errno;
  close(fd);  // the mapping keeps the object
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("region ", quoted, ": cannot map ", byte_size,
                     " bytes of ", QuoteBounded(key), " (", ErrnoText(map_err),
                     "); register a smaller window"));
  }
  auto mapping = std::make_shared<Mapping>(base, length,
                                           static_cast<uint8_t*>(base) + delta);

  absl::MutexLock lock(&mu_);
  if (regions_.find(name) != regions_.end()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "system shared-memory region ", quoted,
        " is already registered; unregister it first or use another name"));
  }
  if (regions_.size() >= limits_.max_regions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this server already has ", regions_.size(),
        " system shared-memory regions registered (its limit); unregister "
        "some first"));
  }
  Entry entry;
  entry.status = RegionStatus{std::string(name), key_string, offset, byte_size};
  entry.mapping = std::move(mapping);
  regions_.emplace(std::string(name), std::move(entry));
  return absl::OkStatus();
}

absl::Status SharedMemoryRegistry::Unregister(absl::string_view name) {
  // Mappings are released outside the lock (munmap can take a while).
  std::map<std::string, Entry, std::less<>> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (name.empty()) {
      dropped.swap(regions_);
    } else if (auto it = regions_.find(name); it != regions_.end()) {
      dropped.insert(regions_.extract(it));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RegionStatus>> SharedMemoryRegistry::Status(
    absl::string_view name) const {
  std::vector<RegionStatus> out;
  absl::ReaderMutexLock lock(&mu_);
  if (name.empty()) {
    out.reserve(regions_.size());
    for (const auto& [n, e] : regions_) out.push_back(e.status);
    return out;
  }
  auto it = regions_.find(name);
  if (it == regions_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "no system shared-memory region ", QuoteBounded(name),
        " is registered; register it first (or ask for the status of all "
        "regions with an empty name)"));
  }
  out.push_back(it->second.status);
  return out;
}

absl::StatusOr<RegionView> SharedMemoryRegistry::Resolve(
    absl::string_view name, uint64_t offset, uint64_t byte_size,
    absl::string_view what) const {
  std::shared_ptr<Mapping> mapping;
  uint64_t region_size = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = regions_.find(name);
    if (it == regions_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " names system shared-memory region ", QuoteBounded(name),
          ", which is not registered; register it with "
          "SystemSharedMemoryRegister first (or send the data in the "
          "request)"));
    }
    mapping = it->second.mapping;
    region_size = it->second.status.byte_size;
  }
  if (offset > region_size || byte_size > region_size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": shared_memory_offset ", offset, " + shared_memory_byte_size ",
        byte_size, " is past the end of region ", QuoteBounded(name), " (",
        region_size, " bytes); use a range inside the region"));
  }
  uint8_t* data = mapping->data() + offset;
  return RegionView(std::move(mapping), data, static_cast<size_t>(byte_size),
                    QuoteBounded(name));
}

size_t SharedMemoryRegistry::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return regions_.size();
}

}  // namespace npuk::shm
