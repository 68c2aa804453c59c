#include "kernels/tools/txn_package/kernel_package.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "server/common/status_macros.h"

namespace npuk::kernelpkg {
namespace fs = std::filesystem;
namespace {

constexpr uint32_t kFormat = 1;

std::string Hex(const unsigned char* data, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) absl::StrAppendFormat(&out, "%02x", data[i]);
  return out;
}

// A manifest path must stay inside the package directory.
absl::StatusOr<fs::path> Resolve(const fs::path& dir, const std::string& file) {
  const fs::path rel(file);
  if (file.empty() || rel.is_absolute() ||
      std::find(rel.begin(), rel.end(), "..") != rel.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir.string(), "/", kManifestFile, ": file \"", file,
        "\" must be a relative path inside the package directory"));
  }
  return dir / rel;
}

absl::Status VerifyEntry(const fs::path& dir, const FileEntry& entry) {
  NPUK_ASSIGN_OR_RETURN(const fs::path path, Resolve(dir, entry.file()));
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat(
        path.string(), " is listed in ", kManifestFile, " but cannot be read (",
        ec.message(), "); reinstall or rebuild the kernel package"));
  }
  if (size != entry.bytes()) {
    return absl::DataLossError(absl::StrCat(
        path.string(), " is ", size, " bytes but ", kManifestFile, " says ",
        entry.bytes(), "; the package is stale or damaged, rebuild it"));
  }
  NPUK_ASSIGN_OR_RETURN(const std::string sha, Sha256HexOfFile(path));
  if (sha != entry.sha256()) {
    return absl::DataLossError(absl::StrCat(
        path.string(), " has SHA-256 ", sha, " but ", kManifestFile, " says ",
        entry.sha256(), "; the package is stale or damaged, rebuild it"));
  }
  return absl::OkStatus();
}

absl::Status FillEntry(const fs::path& dir, FileEntry& entry) {
  NPUK_ASSIGN_OR_RETURN(const fs::path path, Resolve(dir, entry.file()));
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("cannot stat ", path.string(), ": ", ec.message()));
  }
  NPUK_ASSIGN_OR_RETURN(std::string sha, Sha256HexOfFile(path));
  entry.set_bytes(size);
  entry.set_sha256(std::move(sha));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", p.string(), " for reading"));
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

absl::StatusOr<std::string> Sha256HexOfFile(const fs::path& p) {
  NPUK_ASSIGN_OR_RETURN(const std::string data, ReadFile(p));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(),
                 nullptr) != 1) {
    return absl::InternalError("OpenSSL SHA-256 failed");
  }
  return Hex(digest, len);
}

absl::StatusOr<LoadedPackage> LoadPackage(const fs::path& kernel_dir,
                                          std::string_view kernel_name,
                                          std::string_view target_name) {
  // Debian's abseil does not alias std::string_view, so StrCat wants these.
  const std::string kernel(kernel_name);
  const std::string target(target_name);
  LoadedPackage pkg;
  pkg.dir = kernel_dir / kernel;
  const fs::path manifest_path = pkg.dir / kManifestFile;
  absl::StatusOr<std::string> json = ReadFile(manifest_path);
  if (!json.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "no kernel package for \"", kernel, "\": cannot read ",
        manifest_path.string(),
        "; point xrt.kernel_dir (or NPUK_KERNEL_DIR) at the directory that "
        "holds <kernel>/manifest.json (see kernels/README.md)"));
  }
  google::protobuf::util::JsonParseOptions opts;
  if (auto st = google::protobuf::util::JsonStringToMessage(
          *json, &pkg.manifest, opts);
      !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path.string(),
                     " is not a valid manifest: ", std::string(st.message())));
  }
  const Manifest& m = pkg.manifest;
  const std::string where = manifest_path.string();
  if (m.format() != kFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": manifest format ", m.format(),
                     " is not supported (this npukd reads format ", kFormat,
                     "); rebuild the package with this release"));
  }
  if (m.kernel() != kernel) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " describes kernel \"", m.kernel(),
                     "\" but sits in the directory for \"", kernel, "\""));
  }
  if (m.target() != target) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " was built for target \"", m.target(),
        "\" but this backend needs \"", target,
        "\" (npu-sim packages come from the build tree; real NPU packages "
        "from -DNPUK_BUILD_AIE=ON)"));
  }
  NPUK_ASSIGN_OR_RETURN(const txn::Design* design, txn::DesignFor(kernel));
  const std::vector<uint32_t> want_bytes = txn::ArgBytesPerItem(*design);
  const std::vector<uint32_t> got_bytes(m.arg_bytes_per_item().begin(),
                                        m.arg_bytes_per_item().end());
  if (got_bytes != want_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": per-item argument sizes [", absl::StrJoin(got_bytes, ", "),
        "] do not match this npukd's ", kernel, " design [",
        absl::StrJoin(want_bytes, ", "),
        "]; the package was built from different kernel sources"));
  }
  NPUK_RETURN_IF_ERROR(VerifyEntry(pkg.dir, m.xclbin()));
  pkg.xclbin_path = pkg.dir / m.xclbin().file();
  if (m.sequences().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " lists no instruction binaries"));
  }
  for (const Sequence& seq : m.sequences()) {
    if (seq.n() == 0 || pkg.sequences.contains(seq.n())) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": sequence N=", seq.n(), " is zero or listed twice"));
    }
    NPUK_RETURN_IF_ERROR(VerifyEntry(pkg.dir, seq.insts()));
    const fs::path path = pkg.dir / seq.insts().file();
    NPUK_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
    absl::StatusOr<std::vector<uint32_t>> words = txn::WordsFromBytes(
        {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
    absl::Status valid =
        words.ok() ? txn::ValidateInstructions(
                         *words, txn::ExpectationsFor(*design, seq.n()))
                   : words.status();
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), " (N=", seq.n(), "): ", valid.message()));
    }
    pkg.sequences.emplace(seq.n(), *std::move(words));
  }
  return pkg;
}

absl::Status WriteManifest(const fs::path& dir, Manifest manifest) {
  manifest.set_format(kFormat);
  NPUK_RETURN_IF_ERROR(FillEntry(dir, *manifest.mutable_xclbin()));
  for (Sequence& seq : *manifest.mutable_sequences()) {
    NPUK_RETURN_IF_ERROR(FillEntry(dir, *seq.mutable_insts()));
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  if (auto st =
          google::protobuf::util::MessageToJsonString(manifest, &json, opts);
      !st.ok()) {
    return absl::InternalError(std::string(st.message()));
  }
  std::ofstream out(dir / kManifestFile, std::ios::binary | std::ios::trunc);
  out << json;
  if (!out.flush()) {
    return absl::InternalError(
        absl::StrCat("cannot write ", (dir / kManifestFile).string()));
  }
  return absl::OkStatus();
}

std::string SimXclbinText(const txn::Design& design) {
  std::string out = "npu-sim-xclbin 1\n";
  // A stable per-design UUID, like aiecc's per-build one.
  const std::string seed = absl::StrCat("npuk-", design.kernel);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(seed.data(), seed.size(), digest, &len, EVP_sha256(), nullptr);
  absl::StrAppend(&out, "uuid ", Hex(digest, 16), "\n");
  absl::StrAppend(&out, "kernel MLIR_AIE\n");
  absl::StrAppend(&out, "core ", design.kernel, "\n");
  absl::StrAppend(&out, "arg 0 opcode scalar\narg 1 instr bo 1\n",
                  "arg 2 ninstr scalar\n");
  for (uint32_t i = 0; i < design.streams.size(); ++i) {
    absl::StrAppend(&out, "arg ", 3 + i, " bo", i, " bo ", 3 + i, "\n");
  }
  for (const txn::Stream& s : design.streams) {
    absl::StrAppend(&out, "stream ",
                    s.dir == txn::Direction::kMM2S ? "mm2s " : "s2mm ",
                    s.channel, " ", s.fifo, " ", s.bytes_per_item, "\n");
  }
  return out;
}

absl::Status WriteWords(const fs::path& path,
                        const std::vector<uint32_t>& words) {
  std::string bytes(words.size() * 4, '\0');
  for (size_t i = 0; i < words.size(); ++i) {
    for (int b = 0; b < 4; ++b) {
      bytes[4 * i + b] = static_cast<char>((words[i] >> (8 * b)) & 0xFF);
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) {
    return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  }
  return absl::OkStatus();
}

absl::Status WriteSimPackage(const fs::path& kernel_dir,
                             const txn::Design& design,
                             const std::vector<uint32_t>& batch_sizes) {
  const fs::path dir = kernel_dir / design.kernel;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  }
  Manifest m;
  m.set_kernel(design.kernel);
  m.set_target(kTargetSim);
  m.set_xclbin_kernel("MLIR_AIE");
  m.set_generator("npuk_txn_tool sim-package");
  const std::string xclbin_name = design.kernel + ".xclbin";
  {
    std::ofstream out(dir / xclbin_name, std::ios::binary | std::ios::trunc);
    out << SimXclbinText(design);
    if (!out.flush()) {
      return absl::InternalError(
          absl::StrCat("cannot write ", (dir / xclbin_name).string()));
    }
  }
  m.mutable_xclbin()->set_file(xclbin_name);
  for (uint32_t bytes : txn::ArgBytesPerItem(design)) {
    m.add_arg_bytes_per_item(bytes);
  }
  for (uint32_t n : batch_sizes) {
    NPUK_ASSIGN_OR_RETURN(const std::vector<uint32_t> words,
                          txn::BuildSequence(design, n));
    const std::string name = absl::StrCat("insts_", n, ".bin");
    NPUK_RETURN_IF_ERROR(WriteWords(dir / name, words));
    Sequence* seq = m.add_sequences();
    seq->set_n(n);
    seq->mutable_insts()->set_file(name);
  }
  return WriteManifest(dir, std::move(m));
}

}  // namespace npuk::kernelpkg
