#include "server/device/npu_sim/npu_sim_device.h"

#include <unistd.h>

#include <cstdlib>
#include <system_error>

#include "npusim/machine.h"
#include "server/device/xrt/xrt_device.h"

namespace npuk {
namespace {

namespace fs = std::filesystem;

bool HasPackage(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "mel" / "manifest.json", ec);
}

absl::StatusOr<std::unique_ptr<Device>> Open(const config::Config& config,
                                             xrt_backend::Misuse misuse) {
  const config::NpuSimSettings& sim = config.npu_sim();
  npusim::Settings settings;
  if (sim.run_latency_us() != 0) {
    settings.run_latency = absl::Microseconds(sim.run_latency_us());
  }
  if (sim.runlist_run_latency_us() != 0) {
    settings.runlist_run_latency =
        absl::Microseconds(sim.runlist_run_latency_us());
  }
  if (sim.dma_mbytes_per_s() != 0) {
    settings.dma_bytes_per_s = uint64_t{sim.dma_mbytes_per_s()} * 1000 * 1000;
  }
  settings.realtime = !sim.has_realtime() || sim.realtime();
  npusim::Machine* machine = npusim::Machine::Get(config.xrt().device_index());
  if (machine == nullptr) {
    return absl::InvalidArgumentError(
        "npu-sim: xrt.device_index must be 0 (the simulator has one device)");
  }
  machine->Configure(settings);

  xrt_backend::Options options;
  options.backend_name = "npu-sim";
  options.target = "npu-sim";
  options.kernel_dir = config.xrt().kernel_dir().empty()
                           ? DefaultNpuSimKernelDir()
                           : fs::path(config.xrt().kernel_dir());
  options.device_index = config.xrt().device_index();
  if (config.xrt().run_timeout_ms() != 0) {
    options.run_timeout = absl::Milliseconds(config.xrt().run_timeout_ms());
  }
  options.use_runlist = config.xrt().use_runlist();
  options.misuse = misuse;
  return xrt_backend::NewBackend(options);
}

}  // namespace

fs::path DefaultNpuSimKernelDir() {
  if (const char* env = std::getenv("NPUK_KERNEL_DIR"); env && *env) {
    return env;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed =
        exe.parent_path().parent_path() / "share" / "npukd" / "kernels";
    if (HasPackage(installed)) return installed;
  }
  return NPUK_SIM_KERNEL_DIR;
}

absl::StatusOr<std::unique_ptr<Device>> NewNpuSimDevice(
    const config::Config& config) {
  return Open(config, xrt_backend::Misuse::kNone);
}

absl::StatusOr<std::unique_ptr<Device>> NewNpuSimDeviceForTest(
    const config::Config& config, xrt_backend::Misuse misuse) {
  return Open(config, misuse);
}

}  // namespace npuk
