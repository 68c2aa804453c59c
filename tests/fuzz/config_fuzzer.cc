// libFuzzer harness: the config parser, exactly as npukd reads --config:
// LoadConfigFile (text-format npuk.config.Config, errors with file:line:col)
// then FinalizeConfig (defaults and range checks). LoadConfigFile takes a
// path, so the input is written to an in-memory file and read back by path.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernels/registry/registry.h"
#include "server/config.h"

namespace {

// An in-memory file (memfd) reached by path: no disk I/O per input (ext4
// flushes a truncated-and-rewritten file on close, ~4 ms a run).
int ConfigFd() {
  static const int fd = [] {
    const int f = ::memfd_create("npuk-config-fuzz", MFD_CLOEXEC);
    if (f < 0) std::abort();
    return f;
  }();
  return fd;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ConfigFd();
  if (::ftruncate(fd, 0) != 0) std::abort();
  for (size_t done = 0; done < size;) {
    const ssize_t n =
        ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);

  absl::StatusOr<npuk::config::Config> config = npuk::LoadConfigFile(path);
  if (!config.ok()) {
    Check(!config.status().message().empty());
    return 0;
  }
  const absl::Status finalized = npuk::FinalizeConfig(*config);
  if (!finalized.ok()) {
    Check(!finalized.message().empty());
    return 0;
  }
  // A finalized config names every model once, with usable settings.
  for (const npuk::KernelSpec* kernel : npuk::AllKernels()) {
    const std::string& model = kernel->name;
    int seen = 0;
    for (const auto& m : config->models()) seen += m.name() == model;
    Check(seen == 1);
    const npuk::config::ModelSettings* s =
        npuk::FindModelSettings(*config, model);
    if (s == nullptr) continue;  // disabled
    Check(s->max_batch_frames() >= 1 && s->max_batch_frames() <= 65536);
    Check(s->instances() >= 1 && s->instances() <= 16);
    Check(s->max_queue_size() >= 1);
  }
  Check(!config->backend().empty() && !config->listen().empty());
  Check(config->max_message_bytes() > 0);
  return 0;
}
