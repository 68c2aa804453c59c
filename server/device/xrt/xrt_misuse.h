// Ways to call XRT wrongly, each a mistake the prior attempt made or that
// mlir-aie issues report (reference/mlir_aie.md §1.4, reference/xrt.md).
// Only tests set these, through NewNpuSimDeviceForTest: they prove npu-sim
// punishes each one the way the hardware does (silent zeros) and that the
// health layer catches it. Only the npu-sim build of the backend
// (NPUK_XRT_NPUSIM, xrt_device.h) acts on them; the real-XRT build does not
// include this header and has no such code path. No flag or config field
// reaches them.
#ifndef NPUK_SERVER_DEVICE_XRT_XRT_MISUSE_H_
#define NPUK_SERVER_DEVICE_XRT_XRT_MISUSE_H_

namespace npuk::xrt_backend {

enum class Misuse {
  kNone,
  // Data BOs in memory group 0, not group_id(3+i). Real XRT warns and runs
  // the kernel on copies in the connected bank made at set_arg time
  // (validate_bo_at_index): the input copy is right, the result stays in
  // the output copy, so the output BO reads zeros. Not invisibility.
  kDataBoGroupZero,
  kDataBoNormalFlags,  // data BOs with flags::normal, not host_only
  kInstrCountInBytes,  // ninstr as a byte count instead of 32-bit words
  kNoInstructionBo,    // kernel(3, bo{}, 0, ...)
  kSkipInputSync,      // no TO_DEVICE sync of the inputs
  kSkipOutputSync,     // no FROM_DEVICE sync of the output
};

}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_XRT_MISUSE_H_
