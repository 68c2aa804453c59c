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
  // Batch with an xrt::runlist of single-item runs over sub-buffers instead
  // of one multi-item runtime sequence.
  bool use_runlist = false;
};

}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_XRT_OPTIONS_H_
