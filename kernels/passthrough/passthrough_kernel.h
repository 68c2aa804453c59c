// The passthrough kernel entry, compiled for the AIE2 cores (Peano) and for
// the host. One 4096-byte block in, the same bytes out: no compute, so a
// mismatch on real hardware is a DMA, buffer or synchronisation fault, not
// arithmetic (kernels/passthrough/README.md).
#ifndef NPUK_KERNELS_PASSTHROUGH_PASSTHROUGH_KERNEL_H_
#define NPUK_KERNELS_PASSTHROUGH_PASSTHROUGH_KERNEL_H_

#include <cstddef>
#include <cstdint>

namespace npuk {
inline constexpr size_t kPassthroughBlockBytes = 4096;  // int8, per block
}  // namespace npuk

// in: 4096 int8; out: the same 4096 int8. in and out must not overlap.
extern "C" void passthrough_4096(const int8_t* in, int8_t* out);

#endif  // NPUK_KERNELS_PASSTHROUGH_PASSTHROUGH_KERNEL_H_
