// npu-sim stand-in for xrt/xrt_kernel.h: kernel, run, run::command_error.
#ifndef NPUSIM_XRT_XRT_KERNEL_H_
#define NPUSIM_XRT_XRT_KERNEL_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "ert.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_hw_context.h"

namespace npusim {
struct KernelImpl;
struct RunImpl;
}  // namespace npusim

namespace xrt {
inline namespace npusim {

class kernel;

class run {
 public:
  class command_error : public std::exception {
   public:
    command_error(ert_cmd_state state, std::string what)
        : state_(state), what_(std::move(what)) {}
    ert_cmd_state get_command_state() const { return state_; }
    const char* what() const noexcept override { return what_.c_str(); }

   private:
    ert_cmd_state state_;
    std::string what_;
  };

  run() = default;
  explicit run(const kernel& krnl);

  // Scalars are copied by value (sizeof(arg) bytes); BOs by handle.
  template <typename ArgType>
  void set_arg(int index, ArgType&& arg) {
    using T = std::remove_cv_t<std::remove_reference_t<ArgType>>;
    if constexpr (std::is_same_v<T, xrt::bo>) {
      set_bo_arg(index, arg);
    } else {
      static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                    "npu-sim supports BO and scalar (<= 8 byte) arguments");
      uint64_t raw = 0;
      std::memcpy(&raw, &arg, sizeof(T));
      set_scalar_arg(index, raw, sizeof(T));
    }
  }

  void start();
  ert_cmd_state wait(const std::chrono::milliseconds& timeout =
                         std::chrono::milliseconds{0}) const;
  ert_cmd_state wait(unsigned int timeout_ms) const {
    return wait(std::chrono::milliseconds{timeout_ms});
  }
  // no_timeout only when COMPLETED; other final states throw command_error.
  std::cv_status wait2(const std::chrono::milliseconds& timeout) const;
  void wait2() const { wait2(std::chrono::milliseconds{0}); }
  ert_cmd_state state() const;
  ert_cmd_state abort();

  explicit operator bool() const { return impl_ != nullptr; }
  const std::shared_ptr<::npusim::RunImpl>& impl() const { return impl_; }

 private:
  void set_bo_arg(int index, const xrt::bo& bo);
  void set_scalar_arg(int index, uint64_t raw, size_t bytes);

  std::shared_ptr<::npusim::RunImpl> impl_;
};

class kernel {
 public:
  kernel() = default;
  // Throws std::runtime_error if the context's xclbin has no such kernel.
  kernel(const xrt::hw_context& ctx, const std::string& name);

  // The memory group argument `argno` is connected to; throws for an
  // argument index the kernel does not have, -1 for scalar arguments.
  int group_id(int argno) const;

  template <typename... Args>
  run operator()(Args&&... args) {
    run r(*this);
    int index = 0;
    (r.set_arg(index++, std::forward<Args>(args)), ...);
    r.start();
    return r;
  }

  explicit operator bool() const { return impl_ != nullptr; }
  const std::shared_ptr<::npusim::KernelImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<::npusim::KernelImpl> impl_;
};

}  // namespace npusim
}  // namespace xrt

#endif  // NPUSIM_XRT_XRT_KERNEL_H_
