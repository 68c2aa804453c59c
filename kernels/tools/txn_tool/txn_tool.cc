// npuk_txn_tool: build-time and field tool for NPU instruction binaries.
//
//   npuk_txn_tool sim-package OUT_DIR
//       the npu-sim kernel packages (mel, attention) for every standard N
//   npuk_txn_tool package OUT_DIR KERNEL XCLBIN N=INSTS...
//       an npu1_1col package from aiecc outputs: copies, validates, manifests
//   npuk_txn_tool validate KERNEL N INSTS
//   npuk_txn_tool dump INSTS
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "kernels/tools/txn/designs.h"
#include "kernels/tools/txn/txn.h"
#include "kernels/tools/txn_package/kernel_package.h"

namespace {

namespace fs = std::filesystem;
using npuk::kernelpkg::ReadFile;
namespace txn = npuk::txn;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "npuk_txn_tool: %s\n", std::string(s.message()).c_str());
  return 1;
}

absl::StatusOr<std::vector<uint32_t>> LoadWords(const fs::path& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return txn::WordsFromBytes(
      {reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()});
}

int Dump(const fs::path& path) {
  absl::StatusOr<std::vector<uint32_t>> words = LoadWords(path);
  if (!words.ok()) return Fail(words.status());
  absl::StatusOr<txn::Program> p = txn::Parse(*words);
  if (!p.ok()) return Fail(p.status());
  const txn::Header& h = p->header;
  std::printf(
      "header: TXN %d.%d dev_gen %d rows %d cols %d memtile_rows %d "
      "ops %u bytes %u\n",
      h.major, h.minor, h.dev_gen, h.num_rows, h.num_cols, h.num_mem_tile_rows,
      h.op_count, h.total_bytes);
  for (const txn::Op& op : p->ops) {
    std::printf("%5zu  ", op.word_offset);
    switch (op.opcode) {
      case txn::kOpWrite:
        std::printf("write32     0x%08x = 0x%08x\n", op.address(), op.value());
        break;
      case txn::kOpMaskWrite:
        std::printf("maskwrite32 0x%08x = 0x%08x mask 0x%08x\n", op.address(),
                    op.value(), op.mask());
        break;
      case txn::kOpBlockWrite:
        std::printf("blockwrite  0x%08x:", op.address());
        for (uint32_t w : op.block()) std::printf(" %08x", w);
        std::printf("\n");
        break;
      case txn::kOpSync:
        std::printf(
            "sync        col %u row %u %s channel %u\n", op.sync_column(),
            op.sync_row(),
            op.sync_direction() == txn::Direction::kMM2S ? "MM2S" : "S2MM",
            op.sync_channel());
        break;
      case txn::kOpAddressPatch:
        std::printf("ddr_patch   0x%08x <- arg %u + %u\n", op.address(),
                    op.arg_idx(), op.arg_plus());
        break;
    }
  }
  return 0;
}

int Validate(const std::string& kernel, const std::string& n_text,
             const fs::path& path) {
  uint32_t n = 0;
  if (!absl::SimpleAtoi(n_text, &n)) {
    return Fail(absl::InvalidArgumentError("N must be a positive integer"));
  }
  absl::StatusOr<const txn::Design*> design = txn::DesignFor(kernel);
  if (!design.ok()) return Fail(design.status());
  absl::StatusOr<std::vector<uint32_t>> words = LoadWords(path);
  if (!words.ok()) return Fail(words.status());
  absl::Status s =
      txn::ValidateInstructions(*words, txn::ExpectationsFor(**design, n));
  if (!s.ok()) return Fail(s);
  std::printf("%s: valid %s sequence for N=%u\n", path.c_str(), kernel.c_str(),
              n);
  return 0;
}

int Package(const fs::path& out, const std::string& kernel,
            const fs::path& xclbin, const std::vector<std::string>& specs) {
  absl::StatusOr<const txn::Design*> design = txn::DesignFor(kernel);
  if (!design.ok()) return Fail(design.status());
  const fs::path dir = out / kernel;
  fs::create_directories(dir);
  npuk::kernelpkg::Manifest m;
  m.set_kernel(kernel);
  m.set_target(npuk::kernelpkg::kTargetNpu1);
  m.set_xclbin_kernel("MLIR_AIE");
  m.set_generator("aiecc (kernels/aie_build.cmake)");
  fs::copy_file(xclbin, dir / (kernel + ".xclbin"),
                fs::copy_options::overwrite_existing);
  m.mutable_xclbin()->set_file(kernel + ".xclbin");
  for (uint32_t arg = 0; arg < (*design)->streams.size(); ++arg) {
    for (const txn::Stream& s : (*design)->streams) {
      if (s.arg_idx == arg) m.add_arg_bytes_per_item(s.bytes_per_item);
    }
  }
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    uint32_t n = 0;
    if (eq == std::string::npos || !absl::SimpleAtoi(spec.substr(0, eq), &n)) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("expected N=INSTS, got \"", spec, "\"")));
    }
    const fs::path src = spec.substr(eq + 1);
    if (Validate(kernel, std::to_string(n), src) != 0) return 1;
    const std::string name = absl::StrCat("insts_", n, ".bin");
    fs::copy_file(src, dir / name, fs::copy_options::overwrite_existing);
    auto* seq = m.add_sequences();
    seq->set_n(n);
    seq->mutable_insts()->set_file(name);
  }
  absl::Status s = npuk::kernelpkg::WriteManifest(dir, m);
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "sim-package") {
    for (const txn::Design* d : {&txn::MelDesign(), &txn::AttentionDesign()}) {
      absl::Status s = npuk::kernelpkg::WriteSimPackage(
          args[1], *d, txn::StandardBatchSizes());
      if (!s.ok()) return Fail(s);
    }
    return 0;
  }
  if (args.size() >= 5 && args[0] == "package") {
    return Package(args[1], args[2], args[3],
                   std::vector<std::string>(args.begin() + 4, args.end()));
  }
  if (args.size() == 4 && args[0] == "validate") {
    return Validate(args[1], args[2], args[3]);
  }
  if (args.size() == 2 && args[0] == "dump") return Dump(args[1]);
  std::fprintf(stderr,
               "usage: npuk_txn_tool sim-package OUT_DIR\n"
               "       npuk_txn_tool package OUT_DIR KERNEL XCLBIN N=INSTS...\n"
               "       npuk_txn_tool validate KERNEL N INSTS\n"
               "       npuk_txn_tool dump INSTS\n");
  return 2;
}
