// Every kernel npukd serves, in a stable order. The list is made at build
// time from NPUK_KERNELS in kernels/CMakeLists.txt (one line per kernel);
// each kernels/<name>/ defines npuk::kernels::<name>::Spec().
#ifndef NPUK_KERNELS_REGISTRY_REGISTRY_H_
#define NPUK_KERNELS_REGISTRY_REGISTRY_H_

#include <span>
#include <string>
#include <string_view>

#include "kernels/registry/kernel_spec.h"

namespace npuk {

// Validated on first use (ValidateKernelSpec, golden SHA-256); a bad
// declaration is a build mistake and aborts with a message naming it.
std::span<const KernelSpec* const> AllKernels();

// nullptr when no kernel has that name.
const KernelSpec* FindKernel(std::string_view name);

// "mel, attention, passthrough": for error messages.
std::string KernelNames();

}  // namespace npuk

#endif  // NPUK_KERNELS_REGISTRY_REGISTRY_H_
