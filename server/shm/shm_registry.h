// Triton's system shared-memory extension: a registry of client-created
// POSIX shared-memory objects (shm_open names) that requests may read their
// inputs from and write their outputs into instead of carrying the bytes in
// the message.
//
// A region is (name, key, offset, byte_size): the bytes [offset, offset +
// byte_size) of the object `key`. Register opens and maps it (after checking
// that the object exists and is at least offset + byte_size long); a tensor
// then names the region plus its own offset and byte size inside it.
//
// Lifetime: a Region holds the mapping through a shared_ptr. Unregister
// only drops the registry's reference; requests that already resolved the
// region keep theirs, so the unmap happens when the last of them ends and
// an in-flight request never touches unmapped memory.
//
// Every method is thread-safe. Errors are absl::Status with a message that
// says what was wrong and what to do; client-supplied names and keys are
// quoted through QuoteBounded (server/common/quote.h), so only a bounded
// prefix of them appears.
#ifndef NPUK_SERVER_SHM_SHM_REGISTRY_H_
#define NPUK_SERVER_SHM_SHM_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace npuk::shm {

// Bounds on what a client may register (checked by Register).
struct RegistryLimits {
  size_t max_regions = 1024;                      // RESOURCE_EXHAUSTED beyond
  size_t max_name_bytes = 256;                    // region names
  size_t max_key_bytes = 255;                     // NAME_MAX for shm_open names
  uint64_t max_region_bytes = uint64_t{1} << 34;  // 16 GiB per region
};

// One mapped object window; munmap and close happen in the destructor.
class Mapping;

// What the status RPC lists for one region.
struct RegionStatus {
  std::string name;
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

// A resolved byte range of a registered region, valid as long as this
// object (or a copy) lives, whether or not the region is unregistered
// meanwhile.
class RegionView {
 public:
  RegionView() = default;
  RegionView(std::shared_ptr<Mapping> mapping, uint8_t* data, size_t size,
             std::string region)
      : mapping_(std::move(mapping)),
        data_(data),
        size_(size),
        region_(std::move(region)) {}

  size_t size() const { return size_; }
  bool empty() const { return mapping_ == nullptr; }

  // Copies the range out to `dst` / in from `src` (sizes must equal
  // size()). A client that truncates its object below the range after
  // registering gets INVALID_ARGUMENT naming `what` instead of crashing the
  // daemon: the copy runs under a SIGBUS guard.
  absl::Status CopyTo(absl::Span<uint8_t> dst, absl::string_view what) const;
  absl::Status CopyFrom(absl::Span<const uint8_t> src,
                        absl::string_view what) const;

 private:
  std::shared_ptr<Mapping> mapping_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string region_;  // the region's name, for messages
};

class SharedMemoryRegistry {
 public:
  explicit SharedMemoryRegistry(RegistryLimits limits = {});
  ~SharedMemoryRegistry();
  SharedMemoryRegistry(const SharedMemoryRegistry&) = delete;
  SharedMemoryRegistry& operator=(const SharedMemoryRegistry&) = delete;

  // Opens `key` (shm_open, read-write), checks it holds offset + byte_size
  // bytes and maps that window. ALREADY_EXISTS when `name` is registered,
  // NOT_FOUND when the object does not exist, INVALID_ARGUMENT for an empty
  // or over-long name/key, a zero byte_size, a window past the object's end
  // or overflowing arithmetic, RESOURCE_EXHAUSTED past max_regions,
  // PERMISSION_DENIED when the daemon may not open the object.
  absl::Status Register(absl::string_view name, absl::string_view key,
                        uint64_t offset, uint64_t byte_size);

  // Removes `name` (every region when `name` is empty). Unregistering a
  // name that is not registered succeeds, as in Triton. In-flight users of
  // the region keep their mapping until they finish.
  absl::Status Unregister(absl::string_view name);

  // Every region (name empty) or just `name` (NOT_FOUND when absent), in
  // name order.
  absl::StatusOr<std::vector<RegionStatus>> Status(
      absl::string_view name) const;

  // Resolves [offset, offset + byte_size) of region `name` for one tensor.
  // INVALID_ARGUMENT when the region is not registered or the range does
  // not fit in it (overflow-safe). `what` names the
  // tensor in messages (e.g. "input 'audio'").
  absl::StatusOr<RegionView> Resolve(absl::string_view name, uint64_t offset,
                                     uint64_t byte_size,
                                     absl::string_view what) const;

  size_t size() const;

 private:
  struct Entry {
    RegionStatus status;
    std::shared_ptr<Mapping> mapping;
  };

  const RegistryLimits limits_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> regions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace npuk::shm

#endif  // NPUK_SERVER_SHM_SHM_REGISTRY_H_
