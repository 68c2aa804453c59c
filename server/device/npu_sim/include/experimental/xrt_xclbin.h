// npu-sim stand-in for experimental/xrt_xclbin.h. The simulator's xclbin is
// a small text file (server/device/npu_sim/README.md) naming the kernel,
// its argument layout and the core it runs.
#ifndef NPUSIM_EXPERIMENTAL_XRT_XCLBIN_H_
#define NPUSIM_EXPERIMENTAL_XRT_XCLBIN_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xrt/xrt_uuid.h"

namespace npusim {
struct XclbinImpl;
}

namespace xrt {
inline namespace npusim {

class xclbin {
 public:
  class kernel {
   public:
    kernel() = default;
    explicit kernel(std::string name) : name_(std::move(name)) {}
    std::string get_name() const { return name_; }

   private:
    std::string name_;
  };

  xclbin() = default;
  // Reads the file; throws std::runtime_error if it is missing or malformed.
  explicit xclbin(const std::string& filename);
  // The xclbin's content already in memory. Newest XRT has both overloads,
  // so xclbin("a.xclbin") with a string literal is ambiguous there and
  // here: pass a std::string.
  explicit xclbin(std::string_view data);

  uuid get_uuid() const;
  std::vector<kernel> get_kernels() const;

  const ::npusim::XclbinImpl* impl() const { return impl_.get(); }

 private:
  std::shared_ptr<const ::npusim::XclbinImpl> impl_;
};

}  // namespace npusim
}  // namespace xrt

#endif  // NPUSIM_EXPERIMENTAL_XRT_XCLBIN_H_
