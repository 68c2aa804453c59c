// npuk_txn_tool: build-time and field tool for NPU instruction binaries.
//
//   npuk_txn_tool sim-package OUT_DIR
//       the npu-sim kernel package of every registered kernel, every
//       standard N
//   npuk_txn_tool package OUT_DIR KERNEL XCLBIN N=INSTS...
//       an npu1_1col package from aiecc outputs: copies, validates, manifests
//   npuk_txn_tool validate KERNEL N INSTS
//   npuk_txn_tool dump INSTS
//   npuk_txn_tool designs
//       every registered kernel's design as JSON (the shim streams with their
//       bytes per item, the generator, source and entry): what
//       kernels/tools/lint_sequences.py checks the MLIR against
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/registry/registry.h"
#include "kernels/tools/txn/designs.h"
#include "kernels/tools/txn/txn.h"
#include "kernels/tools/txn_package/kernel_package.h"
#include "server/common/status_macros.h"

namespace {

namespace fs = std::filesystem;
using npuk::kernelpkg::ReadFile;
namespace txn = npuk::txn;

absl::StatusOr<std::vector<uint32_t>> LoadWords(const fs::path& path) {
  NPUK_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
  return txn::WordsFromBytes(
      {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

absl::Status Dump(const fs::path& path) {
  NPUK_ASSIGN_OR_RETURN(const std::vector<uint32_t> words, LoadWords(path));
  NPUK_ASSIGN_OR_RETURN(const txn::Program p, txn::Parse(words));
  const txn::Header& h = p.header;
  std::printf(
      "header: TXN %d.%d dev_gen %d rows %d cols %d memtile_rows %d "
      "ops %u bytes %u\n",
      h.major, h.minor, h.dev_gen, h.num_rows, h.num_cols, h.num_mem_tile_rows,
      h.op_count, h.total_bytes);
  for (const txn::Op& op : p.ops) {
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
  return absl::OkStatus();
}

absl::Status Validate(const std::string& kernel, const std::string& n_text,
                      const fs::path& path) {
  uint32_t n = 0;
  if (!absl::SimpleAtoi(n_text, &n) || n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("N must be a positive integer, got \"", n_text, "\""));
  }
  NPUK_ASSIGN_OR_RETURN(const txn::Design* design, txn::DesignFor(kernel));
  NPUK_ASSIGN_OR_RETURN(const std::vector<uint32_t> words, LoadWords(path));
  NPUK_RETURN_IF_ERROR(
      txn::ValidateInstructions(words, txn::ExpectationsFor(*design, n)));
  std::printf("%s: valid %s sequence for N=%u\n", path.c_str(), kernel.c_str(),
              n);
  return absl::OkStatus();
}

absl::Status Package(const fs::path& out, const std::string& kernel,
                     const fs::path& xclbin,
                     const std::vector<std::string>& specs) {
  NPUK_ASSIGN_OR_RETURN(const txn::Design* design, txn::DesignFor(kernel));
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
  for (uint32_t bytes : txn::ArgBytesPerItem(*design)) {
    m.add_arg_bytes_per_item(bytes);
  }
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    uint32_t n = 0;
    if (eq == std::string::npos || !absl::SimpleAtoi(spec.substr(0, eq), &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected N=INSTS, got \"", spec, "\""));
    }
    const fs::path src = spec.substr(eq + 1);
    NPUK_RETURN_IF_ERROR(Validate(kernel, std::to_string(n), src));
    const std::string name = absl::StrCat("insts_", n, ".bin");
    fs::copy_file(src, dir / name, fs::copy_options::overwrite_existing);
    auto* seq = m.add_sequences();
    seq->set_n(n);
    seq->mutable_insts()->set_file(name);
  }
  return npuk::kernelpkg::WriteManifest(dir, m);
}

absl::Status SimPackages(const fs::path& out) {
  for (const npuk::KernelSpec* spec : npuk::AllKernels()) {
    NPUK_RETURN_IF_ERROR(npuk::kernelpkg::WriteSimPackage(
        out, txn::DesignFor(*spec), txn::BatchSizesFor(txn::DesignFor(*spec))));
  }
  return absl::OkStatus();
}

// Names in a declaration are identifiers and file names; escape anyway so
// the output is JSON whatever they hold.
std::string Json(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

absl::Status Designs() {
  std::vector<std::string> kernels;
  for (const npuk::KernelSpec* spec : npuk::AllKernels()) {
    const txn::Design design = txn::DesignFor(*spec);
    std::vector<std::string> streams;
    for (const txn::Stream& s : design.streams) {
      streams.push_back(
          absl::StrCat("{\"fifo\": ", Json(s.fifo), ", \"arg\": ", s.arg_idx,
                       ", \"to_device\": ",
                       s.dir == txn::Direction::kMM2S ? "true" : "false",
                       ", \"channel\": ", s.channel, ", \"bd_id\": ", s.bd_id,
                       ", \"bytes_per_item\": ", s.bytes_per_item,
                       ", \"halo_bytes\": ", s.halo_bytes, "}"));
    }
    kernels.push_back(absl::StrCat(
        "  {\"name\": ", Json(spec->name),
        ", \"generator\": ", Json(spec->design.generator), ", \"source\": ",
        Json(spec->design.source), ", \"entry\": ", Json(spec->design.entry),
        ", \"cores\": ", design.cores, ", \"columns\": ", design.columns,
        ",\n   \"batch_sizes\": [",
        absl::StrJoin(txn::BatchSizesFor(design), ", "),
        "],\n   \"streams\": [", absl::StrJoin(streams, ",\n               "),
        "]}"));
  }
  std::printf("{\"batch_sizes\": [%s],\n \"kernels\": [\n%s\n]}\n",
              absl::StrJoin(txn::StandardBatchSizes(), ", ").c_str(),
              absl::StrJoin(kernels, ",\n").c_str());
  return absl::OkStatus();
}

// The command's status, or nullopt when the arguments name no command.
std::optional<absl::Status> Run(const std::vector<std::string>& args) {
  if (args.size() == 2 && args[0] == "sim-package") return SimPackages(args[1]);
  if (args.size() >= 5 && args[0] == "package") {
    return Package(args[1], args[2], args[3],
                   std::vector<std::string>(args.begin() + 4, args.end()));
  }
  if (args.size() == 4 && args[0] == "validate") {
    return Validate(args[1], args[2], args[3]);
  }
  if (args.size() == 2 && args[0] == "dump") return Dump(args[1]);
  if (args.size() == 1 && args[0] == "designs") return Designs();
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<absl::Status> s =
      Run(std::vector<std::string>(argv + 1, argv + argc));
  if (!s.has_value()) {
    std::fprintf(stderr,
                 "usage: npuk_txn_tool sim-package OUT_DIR\n"
                 "       npuk_txn_tool package OUT_DIR KERNEL XCLBIN "
                 "N=INSTS...\n"
                 "       npuk_txn_tool validate KERNEL N INSTS\n"
                 "       npuk_txn_tool dump INSTS\n"
                 "       npuk_txn_tool designs\n"
                 "kernels: %s\n",
                 npuk::KernelNames().c_str());
    return 2;
  }
  if (s->ok()) return 0;
  std::fprintf(stderr, "npuk_txn_tool: %s\n",
               std::string(s->message()).c_str());
  return 1;
}
