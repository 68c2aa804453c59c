// Picks and builds the backend named by the config (--backend).
#ifndef NPUK_SERVER_DEVICE_FACTORY_H_
#define NPUK_SERVER_DEVICE_FACTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config.pb.h"
#include "server/device/device.h"

namespace npuk {

// The backends this binary was built with, e.g. {"cpu", "npu-sim"}.
std::vector<std::string> AvailableBackends();

// Builds config.backend(). Errors name the backend and what to do (an
// unknown name lists the available ones; xrt explains how to get it).
absl::StatusOr<std::unique_ptr<Device>> CreateDevice(
    const config::Config& config);

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_FACTORY_H_
