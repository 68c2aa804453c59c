// npu-sim stand-in for xrt/xrt_device.h.
#ifndef NPUSIM_XRT_XRT_DEVICE_H_
#define NPUSIM_XRT_XRT_DEVICE_H_

#include <memory>

#include "experimental/xrt_xclbin.h"
#include "version.h"
#include "xrt/xrt_uuid.h"

namespace npusim {
struct DeviceImpl;
}

namespace xrt {
inline namespace npusim {

class device {
 public:
  device() = default;
  // Throws std::runtime_error if no simulated device has that index.
  explicit device(unsigned int didx);
  // Records the xclbin; hardware resources are bound by hw_context.
  uuid register_xclbin(const xrt::xclbin& xclbin);

  explicit operator bool() const { return impl_ != nullptr; }
  const std::shared_ptr<::npusim::DeviceImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<::npusim::DeviceImpl> impl_;
};

}  // namespace npusim
}  // namespace xrt

#endif  // NPUSIM_XRT_XRT_DEVICE_H_
