// Replays the committed golden files (kernels/<name>/golden/*.bin) through
// the AIE kernel entries, the code Peano compiles for the cores, and exits
// non-zero on the first differing byte. No test framework and no registry,
// only the entries and the files, so ctest can build it with a second
// compiler (clang, like Peano) and show that the compile-time tables and the
// integer math give the same bytes there.
//
//   npuk_kernels_golden_replay KERNELS_DIR
//
// The entries are listed below (a test may name kernels). A kernel folder
// with golden files but no entry is reported as not replayed, not failed:
// adding a kernel needs no file outside its folder, and golden_test already
// checks every registered kernel's reference under the build's compiler.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kernels/attention/attention_kernel.h"
#include "kernels/mel/mel_kernel.h"
#include "kernels/mel128/mel128_kernel.h"
#include "kernels/passthrough/passthrough_kernel.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

// One item through a kernel entry: in[a] points at the item's bytes of
// device input argument a.
struct Entry {
  const char* kernel;
  std::vector<size_t> arg_bytes;  // per item, device input arguments
  size_t out_bytes;
  void (*run)(const unsigned char* const* in, unsigned char* out);
};

void Mel(const unsigned char* const* in, unsigned char* out) {
  int16_t frame[npuk::kMelFrameSamples];
  std::memcpy(frame, in[0], sizeof(frame));  // little-endian host
  mel_kernel_simple(frame, reinterpret_cast<int8_t*>(out));
}

void Mel128(const unsigned char* const* in, unsigned char* out) {
  int16_t frame[npuk::kMelFrameSamples];
  std::memcpy(frame, in[0], sizeof(frame));
  mel128_kernel_simple(frame, reinterpret_cast<int8_t*>(out));
}

void Attention(const unsigned char* const* in, unsigned char* out) {
  int32_t record[2];  // {multiplier, shift}, little-endian
  std::memcpy(record, in[1], sizeof(record));
  attention_64x64(reinterpret_cast<const int8_t*>(in[0]),
                  reinterpret_cast<int8_t*>(out), record[0], record[1]);
}

void Passthrough(const unsigned char* const* in, unsigned char* out) {
  passthrough_4096(reinterpret_cast<const int8_t*>(in[0]),
                   reinterpret_cast<int8_t*>(out));
}

const Entry kEntries[] = {
    {"mel", {npuk::kMelFrameInBytes}, npuk::kMelFrameOutBytes, Mel},
    {"mel128", {npuk::kMelFrameInBytes}, npuk::kMel128FrameOutBytes, Mel128},
    {"attention",
     {npuk::kAttentionInBytes, 8},
     npuk::kAttentionOutBytes,
     Attention},
    {"passthrough",
     {npuk::kPassthroughBlockBytes},
     npuk::kPassthroughBlockBytes,
     Passthrough},
};

bool Read(const fs::path& path, Bytes* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), {});
  return true;
}

// 0 when every item reproduces; prints what failed otherwise.
int Replay(const Entry& e, const fs::path& dir) {
  std::vector<Bytes> args(e.arg_bytes.size());
  Bytes want;
  for (size_t a = 0; a < args.size(); ++a) {
    const fs::path p = dir / ("in" + std::to_string(a) + ".bin");
    if (!Read(p, &args[a])) {
      std::fprintf(stderr, "cannot read %s\n", p.c_str());
      return 1;
    }
  }
  if (!Read(dir / "out.bin", &want) || want.empty() ||
      want.size() % e.out_bytes != 0) {
    std::fprintf(stderr, "%s/out.bin is missing or not whole items\n",
                 dir.c_str());
    return 1;
  }
  const size_t items = want.size() / e.out_bytes;
  for (size_t a = 0; a < args.size(); ++a) {
    if (args[a].size() != items * e.arg_bytes[a]) {
      std::fprintf(stderr, "%s/in%zu.bin has %zu bytes, want %zu\n",
                   dir.c_str(), a, args[a].size(), items * e.arg_bytes[a]);
      return 1;
    }
  }
  Bytes out(e.out_bytes);
  for (size_t i = 0; i < items; ++i) {
    std::vector<const unsigned char*> in;
    for (size_t a = 0; a < args.size(); ++a) {
      in.push_back(args[a].data() + i * e.arg_bytes[a]);
    }
    e.run(in.data(), out.data());
    if (std::memcmp(out.data(), want.data() + i * e.out_bytes, e.out_bytes)) {
      std::fprintf(stderr, "%s golden item %zu differs on this compiler\n",
                   e.kernel, i);
      return 1;
    }
  }
  std::printf("golden: %zu %s items reproduced\n", items, e.kernel);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s KERNELS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path kernels = argv[1];
  int replayed = 0;
  std::error_code ec;
  for (const fs::directory_entry& d : fs::directory_iterator(kernels, ec)) {
    if (!fs::is_directory(d.path() / "golden")) continue;
    const std::string name = d.path().filename().string();
    const Entry* entry = nullptr;
    for (const Entry& e : kEntries) {
      if (name == e.kernel) entry = &e;
    }
    if (entry == nullptr) {
      std::printf(
          "golden: kernels/%s not replayed (no entry in "
          "tests/kernels/golden_replay.cc; add its AIE entry to check it "
          "under a second compiler)\n",
          name.c_str());
      continue;
    }
    if (Replay(*entry, d.path() / "golden") != 0) return 1;
    ++replayed;
  }
  if (ec || replayed == 0) {
    std::fprintf(stderr, "no golden files under %s\n", kernels.c_str());
    return 1;
  }
  return 0;
}
