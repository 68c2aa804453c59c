// npu-sim stand-in for xrt/xrt_hw_context.h.
#ifndef NPUSIM_XRT_XRT_HW_CONTEXT_H_
#define NPUSIM_XRT_XRT_HW_CONTEXT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "xrt/xrt_device.h"
#include "xrt/xrt_uuid.h"

namespace npusim {
struct HwContextImpl;
}

namespace xrt {
inline namespace npusim {

class hw_context {
 public:
  enum class access_mode : uint8_t { exclusive = 0, shared = 1 };
  using cfg_param_type = std::map<std::string, uint32_t>;
  using qos_type = cfg_param_type;

  hw_context() = default;
  // Throws std::runtime_error if the uuid was not registered on the device
  // or the simulated device has no free context (Phoenix: 6).
  hw_context(const xrt::device& device, const xrt::uuid& xclbin_id,
             const cfg_param_type& cfg_param);
  hw_context(const xrt::device& device, const xrt::uuid& xclbin_id,
             access_mode mode);
  hw_context(const xrt::device& device, const xrt::uuid& xclbin_id)
      : hw_context(device, xclbin_id, access_mode::shared) {}

  void update_qos(const qos_type& qos);
  xrt::device get_device() const;
  xrt::uuid get_xclbin_uuid() const;
  xrt::xclbin get_xclbin() const;
  access_mode get_mode() const;

  explicit operator bool() const { return impl_ != nullptr; }
  const std::shared_ptr<::npusim::HwContextImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<::npusim::HwContextImpl> impl_;
};

}  // namespace npusim
}  // namespace xrt

#endif  // NPUSIM_XRT_XRT_HW_CONTEXT_H_
