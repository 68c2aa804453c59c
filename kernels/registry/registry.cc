#include "kernels/registry/registry.h"

#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/registry/registered_kernels.h"

namespace npuk {
namespace {

std::string Sha256Hex(std::span<const uint8_t> bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::Status CheckGolden(const KernelSpec& spec, const GoldenFile& f) {
  const std::string got = Sha256Hex(f.bytes);
  if (got == f.sha256) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("kernels/", spec.name, "/golden/", f.file, " has SHA-256 ",
                   got, " but the declaration says ", f.sha256,
                   "; regenerate the goldens with npuk_make_golden and update "
                   "kernels/",
                   spec.name, "/kernel.cc"));
}

std::vector<const KernelSpec*> Validated() {
  std::vector<const KernelSpec*> all = RegisteredKernels();
  for (const KernelSpec* spec : all) {
    absl::Status s = ValidateKernelSpec(*spec);
    for (const GoldenFile& f : spec->golden.inputs) {
      if (s.ok()) s = CheckGolden(*spec, f);
    }
    if (s.ok()) s = CheckGolden(*spec, spec->golden.output);
    for (const KernelSpec* other : all) {
      if (s.ok() && other != spec && other->name == spec->name) {
        s = absl::InternalError(
            absl::StrCat("kernel '", spec->name, "' is registered twice"));
      }
    }
    if (!s.ok()) {
      // A declaration is part of the build: nothing can be served from a
      // broken one, and no user input leads here.
      std::fprintf(stderr, "npuk kernel registry: %s\n",
                   std::string(s.message()).c_str());
      std::abort();
    }
  }
  return all;
}

}  // namespace

std::span<const KernelSpec* const> AllKernels() {
  static const std::vector<const KernelSpec*>* const kAll =
      new std::vector<const KernelSpec*>(Validated());
  return *kAll;
}

const KernelSpec* FindKernel(std::string_view name) {
  for (const KernelSpec* spec : AllKernels()) {
    if (spec->name == name) return spec;
  }
  return nullptr;
}

std::string KernelNames() {
  std::vector<std::string> names;
  for (const KernelSpec* spec : AllKernels()) names.push_back(spec->name);
  return absl::StrJoin(names, ", ");
}

}  // namespace npuk
