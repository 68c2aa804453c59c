#include "server/device/npu_sim/npu_sim_device.h"

#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kernels/registry/registry.h"
#include "npusim/machine.h"
#include "server/common/status_macros.h"
#include "server/device/xrt/xrt_device.h"
#include "spdlog/spdlog.h"
#include "xrt/xrt_device.h"

namespace npuk {
namespace {

namespace fs = std::filesystem;

bool HasEveryPackage(const fs::path& dir) {
  for (const KernelSpec* spec : AllKernels()) {
    std::error_code ec;
    if (!fs::exists(dir / spec->name / "manifest.json", ec)) return false;
  }
  return true;
}

class SimDevice final : public NpuSimDevice {
 public:
  SimDevice(std::unique_ptr<Device> backend,
            std::shared_ptr<npusim::Machine> machine)
      : backend_(std::move(backend)), machine_(std::move(machine)) {}

  std::string_view name() const override { return backend_->name(); }
  absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      const KernelSpec& kernel, size_t max_items) override {
    return backend_->CreateExecutor(kernel, max_items);
  }
  npusim::Machine& machine() override { return *machine_; }

 private:
  std::unique_ptr<Device> backend_;
  // Also held by the backend's xrt::device; kept here so machine() needs
  // no XRT types.
  std::shared_ptr<npusim::Machine> machine_;
};

absl::StatusOr<std::unique_ptr<NpuSimDevice>> Open(const config::Config& config,
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
  if (sim.core_variant() == "scalar") {
    settings.vector_kernels = false;
  } else if (!sim.core_variant().empty() && sim.core_variant() != "vector") {
    return absl::InvalidArgumentError(absl::StrCat(
        "npu_sim.core_variant is \"", sim.core_variant().substr(0, 32),
        "\"; use \"vector\" (the default) or \"scalar\""));
  }
  // The layout is each kernel's design (KernelSpec::design.cores x
  // .columns), which the package was built from; npu_sim.cores / .columns,
  // where a config still sets them, must agree with it.
  for (const KernelSpec* spec : AllKernels()) {
    if ((sim.cores() != 0 && sim.cores() != spec->design.cores) ||
        (sim.columns() != 0 && sim.columns() != spec->design.columns)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "npu_sim.cores is ", sim.cores(), " and npu_sim.columns ",
          sim.columns(), " but the ", spec->name, " design has ",
          spec->design.cores, " cores x ", spec->design.columns,
          " columns (KernelSpec::design.cores x .columns, kernels/", spec->name,
          "/", spec->design.generator,
          "); npu-sim runs each kernel's design as its package was built, so "
          "the layout is not a setting: remove npu_sim.cores and "
          "npu_sim.columns from the config"));
    }
  }

  xrt::device device;
  try {
    device = xrt::device(config.xrt().device_index());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("npu-sim: ", e.what(),
                     "; set xrt.device_index to 0 (the simulator has one "
                     "device)"));
  }
  std::shared_ptr<npusim::Machine> machine = npusim::MachineOf(device);
  machine->Configure(settings);
  if (!sim.fault().empty()) {
    NPUK_ASSIGN_OR_RETURN(const npusim::Fault fault,
                          ParseNpuSimFault(sim.fault()));
    machine->InjectFault(fault);
    spdlog::warn(
        "npu-sim: simulated NPU fault {} in force (drills only, never in "
        "production)",
        sim.fault());
  }

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
  return std::make_unique<SimDevice>(
      xrt_backend::NewBackend(options, std::move(device), misuse),
      std::move(machine));
}

}  // namespace

absl::StatusOr<npusim::Fault> ParseNpuSimFault(std::string_view text) {
  static constexpr std::pair<const char*, npusim::FaultKind> kKinds[] = {
      {"hang", npusim::FaultKind::kTimeout},
      {"error", npusim::FaultKind::kError},
      {"zeros", npusim::FaultKind::kZeros},
      {"garbage", npusim::FaultKind::kGarbage},
      {"cold", npusim::FaultKind::kCold},
      {"slow", npusim::FaultKind::kSlow},
  };
  const std::string quoted(text);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "npu_sim fault \"", quoted, "\": ", why,
        "; expected KIND[:RATE] with KIND one of hang, error, zeros, garbage, "
        "cold, slow and RATE in (0, 1], e.g. hang:0.05"));
  };
  const std::vector<std::string> parts = absl::StrSplit(quoted, ':');
  if (parts.size() > 2) return bad("too many ':'");
  npusim::Fault fault;
  fault.runs = 0;  // in force for the device's life
  fault.extra = absl::Milliseconds(50);
  bool known = false;
  for (const auto& [name, kind] : kKinds) {
    if (parts[0] == name) {
      fault.kind = kind;
      known = true;
    }
  }
  if (!known) return bad(absl::StrCat("unknown kind \"", parts[0], "\""));
  if (parts.size() == 2) {
    double rate = 0;
    if (!absl::SimpleAtod(parts[1], &rate) || !(rate > 0 && rate <= 1)) {
      return bad(absl::StrCat("rate \"", parts[1], "\" is not in (0, 1]"));
    }
    fault.rate = rate;
  }
  return fault;
}

fs::path DefaultNpuSimKernelDir() {
  if (const char* env = std::getenv("NPUK_KERNEL_DIR"); env && *env) {
    return env;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed =
        exe.parent_path().parent_path() / "share" / "npukd" / "kernels";
    if (HasEveryPackage(installed)) return installed;
  }
  return NPUK_SIM_KERNEL_DIR;
}

absl::StatusOr<std::unique_ptr<NpuSimDevice>> NewNpuSimDevice(
    const config::Config& config) {
  return Open(config, xrt_backend::Misuse::kNone);
}

absl::StatusOr<std::unique_ptr<NpuSimDevice>> NewNpuSimDeviceForTest(
    const config::Config& config, xrt_backend::Misuse misuse) {
  return Open(config, misuse);
}

}  // namespace npuk
