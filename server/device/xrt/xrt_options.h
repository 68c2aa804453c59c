// Options of the XRT backend, shared by its two builds (npuk_device_xrt on
// real XRT, npuk_device_npu_sim on the simulator). Plain data, no XRT types.
#ifndef NPUK_SERVER_DEVICE_XRT_XRT_OPTIONS_H_
#define NPUK_SERVER_DEVICE_XRT_XRT_OPTIONS_H_

#include <filesystem>
#include <string>

#include "absl/time/time.h"

namespace npuk::xrt_backend {

// Ways to call XRT wrongly, each a mistake the prior attempt made or that
// mlir-aie issues report (reference/mlir_aie.md §1.4, reference/xrt.md).
// Only tests set these: they prove npu-sim punishes each one the way the
// hardware does (silent zeros) and that the health layer catches it. No
// flag or config field reaches them.
enum class Misuse {
  kNone,
  kDataBoGroupZero,    // data BOs in memory group 0, not group_id(3+i)
  kDataBoNormalFlags,  // data BOs with flags::normal, not host_only
  kInstrCountInBytes,  // ninstr as a byte count instead of 32-bit words
  kNoInstructionBo,    // kernel(3, bo{}, 0, ...)
  kSkipInputSync,      // no TO_DEVICE sync of the inputs
  kSkipOutputSync,     // no FROM_DEVICE sync of the output
};

struct Options {
  std::string backend_name;  // "xrt" or "npu-sim"
  std::string target;        // kernel package target the backend accepts
  std::filesystem::path kernel_dir;
  unsigned device_index = 0;
  absl::Duration run_timeout = absl::Milliseconds(2000);
  // Batch with an xrt::runlist of single-item runs over sub-buffers instead
  // of one multi-item runtime sequence.
  bool use_runlist = false;
  Misuse misuse = Misuse::kNone;
};

}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_XRT_OPTIONS_H_
