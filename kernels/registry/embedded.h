// Files embedded in the binary at build time (npuk_kernel() in
// cmake/NpukKernel.cmake turns kernels/<name>/golden/<stem>.bin into the
// symbols npuk_embedded_<name>_<stem> and npuk_embedded_<name>_<stem>_size).
#ifndef NPUK_KERNELS_REGISTRY_EMBEDDED_H_
#define NPUK_KERNELS_REGISTRY_EMBEDDED_H_

#include <cstddef>
#include <cstdint>
#include <span>

// Declares the embedded file and expands to a std::span over its bytes.
// Use at namespace scope once per file: NPUK_DECLARE_EMBEDDED(mel, in0);
// then NPUK_EMBEDDED(mel, in0) where the bytes are needed.
#define NPUK_DECLARE_EMBEDDED(kernel, stem)                   \
  extern "C" const uint8_t npuk_embedded_##kernel##_##stem[]; \
  extern "C" const size_t npuk_embedded_##kernel##_##stem##_size

#define NPUK_EMBEDDED(kernel, stem)                         \
  std::span<const uint8_t>(npuk_embedded_##kernel##_##stem, \
                           npuk_embedded_##kernel##_##stem##_size)

#endif  // NPUK_KERNELS_REGISTRY_EMBEDDED_H_
