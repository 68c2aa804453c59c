// npu-sim stand-in for xrt/xrt_bo.h. A simulated BO has a host copy (what
// map() returns) and a device copy (what the NPU's DMA sees); sync() moves
// bytes between them, so a missing sync shows as stale data, as on
// hardware.
#ifndef NPUSIM_XRT_XRT_BO_H_
#define NPUSIM_XRT_XRT_BO_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "xrt.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_hw_context.h"

namespace npusim {
struct BoImpl;
}

namespace xrt {
inline namespace npusim {

class bo {
 public:
  enum class flags : uint32_t {
    normal = 0,
    cacheable = XCL_BO_FLAGS_CACHEABLE,
    svm = XCL_BO_FLAGS_SVM,
    device_only = XCL_BO_FLAGS_DEV_ONLY,
    host_only = XCL_BO_FLAGS_HOST_ONLY,
    p2p = XCL_BO_FLAGS_P2P,
  };
  using memory_group = uint32_t;

  bo() = default;
  bo(const xrt::device& device, size_t sz, flags flags, memory_group grp);
  bo(const xrt::device& device, size_t sz, memory_group grp)
      : bo(device, sz, flags::normal, grp) {}
  bo(const xrt::hw_context& hwctx, size_t sz, flags flags, memory_group grp);
  bo(const xrt::hw_context& hwctx, size_t sz, memory_group grp)
      : bo(hwctx, sz, flags::normal, grp) {}
  // Sub-buffer of `parent`: shares its memory; throws if out of range.
  bo(const bo& parent, size_t size, size_t offset);

  size_t size() const;
  uint64_t address() const;
  memory_group get_memory_group() const;
  flags get_flags() const;

  void sync(xclBOSyncDirection dir, size_t sz, size_t offset);
  void sync(xclBOSyncDirection dir) { sync(dir, size(), 0); }

  void* map();
  template <typename MapType>
  MapType map() {
    return reinterpret_cast<MapType>(map());
  }

  void write(const void* src, size_t size, size_t seek);
  void write(const void* src) { write(src, size(), 0); }
  void read(void* dst, size_t size, size_t skip);
  void read(void* dst) { read(dst, size(), 0); }

  explicit operator bool() const { return impl_ != nullptr; }
  const std::shared_ptr<::npusim::BoImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<::npusim::BoImpl> impl_;
};

}  // namespace npusim
}  // namespace xrt

#endif  // NPUSIM_XRT_XRT_BO_H_
