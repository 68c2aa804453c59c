// Kernel packages: <dir>/manifest.json + xclbin + insts_<N>.bin. The loader
// trusts nothing: every file's size and SHA-256 must match the manifest,
// the manifest must describe the design we expect (arguments, byte sizes),
// and every instruction binary must pass txn::ValidateInstructions for its
// N. Errors name the file and what to do.
#ifndef NPUK_KERNELS_TOOLS_TXN_PACKAGE_KERNEL_PACKAGE_H_
#define NPUK_KERNELS_TOOLS_TXN_PACKAGE_KERNEL_PACKAGE_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/util/json_util.h"
#include "kernel_package.pb.h"
#include "kernels/tools/txn/designs.h"

namespace npuk::kernelpkg {

inline constexpr char kManifestFile[] = "manifest.json";
inline constexpr char kTargetNpu1[] = "npu1_1col";
inline constexpr char kTargetSim[] = "npu-sim";

absl::StatusOr<std::string> Sha256HexOfFile(const std::filesystem::path& p);
absl::StatusOr<std::string> ReadFile(const std::filesystem::path& p);

struct LoadedPackage {
  std::filesystem::path dir;
  Manifest manifest;
  std::filesystem::path xclbin_path;
  // Validated instruction words per N, ascending.
  std::map<uint32_t, std::vector<uint32_t>> sequences;
};

// Loads <kernel_dir>/<kernel>/ and verifies it for `target`.
absl::StatusOr<LoadedPackage> LoadPackage(
    const std::filesystem::path& kernel_dir, std::string_view kernel,
    std::string_view target);

// Fills in bytes and sha256 of every file named by `manifest` (which must
// already sit in `dir`) and writes dir/manifest.json.
absl::Status WriteManifest(const std::filesystem::path& dir, Manifest manifest);

// The npu-sim "xclbin" for a design (format: server/device/npu_sim/README.md).
std::string SimXclbinText(const txn::Design& design);

// Writes <kernel_dir>/<design.kernel>/ for the simulator: the sim xclbin,
// insts_<N>.bin from txn::BuildSequence for each of `batch_sizes`, and the
// manifest.
absl::Status WriteSimPackage(const std::filesystem::path& kernel_dir,
                             const txn::Design& design,
                             const std::vector<uint32_t>& batch_sizes);

// Writes words as raw little-endian uint32 (aiecc's insts.bin format).
absl::Status WriteWords(const std::filesystem::path& path,
                        const std::vector<uint32_t>& words);

}  // namespace npuk::kernelpkg

#endif  // NPUK_KERNELS_TOOLS_TXN_PACKAGE_KERNEL_PACKAGE_H_
