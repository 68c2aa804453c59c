// npu-sim stand-in for experimental/xrt_kernel.h: xrt::runlist (XRT 2.17).
#ifndef NPUSIM_EXPERIMENTAL_XRT_KERNEL_H_
#define NPUSIM_EXPERIMENTAL_XRT_KERNEL_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <string>
#include <vector>

#include "xrt/xrt_hw_context.h"
#include "xrt/xrt_kernel.h"

namespace npusim {
struct RunlistImpl;
}

namespace xrt {
inline namespace npusim {

class runlist {
 public:
  class command_error : public std::exception {
   public:
    command_error(xrt::run run, ert_cmd_state state, std::string what)
        : run_(std::move(run)), state_(state), what_(std::move(what)) {}
    xrt::run get_run() const { return run_; }
    ert_cmd_state get_command_state() const { return state_; }
    const char* what() const noexcept override { return what_.c_str(); }

   private:
    xrt::run run_;
    ert_cmd_state state_;
    std::string what_;
  };

  runlist() = default;
  explicit runlist(const xrt::hw_context& hwctx);

  // Runs must not have been started; throws once the list was executed.
  void add(const xrt::run& run);
  void add(xrt::run&& run) { add(static_cast<const xrt::run&>(run)); }
  void execute();
  // no_timeout when every run COMPLETED; throws command_error naming the
  // first run that ended otherwise; timeout if still running after
  // `timeout` (0 = wait until done).
  std::cv_status wait(const std::chrono::milliseconds& timeout) const;
  void wait() const { wait(std::chrono::milliseconds{0}); }
  void reset();

 private:
  std::shared_ptr<::npusim::RunlistImpl> impl_;
};

}  // namespace npusim
}  // namespace xrt

#endif  // NPUSIM_EXPERIMENTAL_XRT_KERNEL_H_
