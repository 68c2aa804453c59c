// The kernels listed in NPUK_KERNELS (kernels/CMakeLists.txt), in that
// order. Defined in a source generated at configure time
// (registered_kernels.cc.in); use AllKernels() (registry.h), which also
// validates them.
#ifndef NPUK_KERNELS_REGISTRY_REGISTERED_KERNELS_H_
#define NPUK_KERNELS_REGISTRY_REGISTERED_KERNELS_H_

#include <vector>

#include "kernels/registry/kernel_spec.h"

namespace npuk {

std::vector<const KernelSpec*> RegisteredKernels();

}  // namespace npuk

#endif  // NPUK_KERNELS_REGISTRY_REGISTERED_KERNELS_H_
