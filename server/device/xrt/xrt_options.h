// Options of the XRT backend, shared by its two builds (npuk_device_xrt on
// real XRT, npuk_device_npu_sim on the simulator). Plain data, no XRT types.
#ifndef NPUK_SERVER_DEVICE_XRT_XRT_OPTIONS_H_
#define NPUK_SERVER_DEVICE_XRT_XRT_OPTIONS_H_

#include <filesystem>
#include <string>

#include "absl/time/time.h"

namespace npuk::xrt_backend {

struct Options {
  std::string backend_name;  // "xrt" or "npu-sim"
  std::string target;        // kernel package target the backend accepts
  std::filesystem::path kernel_dir;
  unsigned device_index = 0;
  absl::Duration run_timeout = absl::Milliseconds(2000);
  // After a run misses run_timeout it is never aborted (amdxdna refuses
  // ERT_ABORT) nor destroyed (XRT std::abort()s on a run in flight): the
  // executor waits this much longer for the driver's TDR (tdr_timeout_ms,
  // 2000 ms after the command started) to end it. If it is still in flight
  // then, the executor keeps it and refuses runs until it ends, because its
  // buffers are still the device's.
  absl::Duration tdr_wait = absl::Milliseconds(4000);
  // amdxdna runtime-suspends the NPU after this long idle; the first run
  // after it is slow (~135 ms). Only used to name such runs in the log.
  absl::Duration autosuspend = absl::Milliseconds(5000);
  // Batch with an xrt::runlist of single-item runs over sub-buffers instead
  // of one multi-item runtime sequence.
  bool use_runlist = false;
};

}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_XRT_OPTIONS_H_
