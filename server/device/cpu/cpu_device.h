// The CPU backend: every registered kernel's CPU batch path
// (KernelSpec::cpu, vectorised and byte-identical to its reference) behind
// the Device interface. The default backend.
#ifndef NPUK_SERVER_DEVICE_CPU_CPU_DEVICE_H_
#define NPUK_SERVER_DEVICE_CPU_CPU_DEVICE_H_

#include <memory>

#include "server/device/device.h"

namespace npuk {

// A device whose executors split each run across a worker pool of
// `threads` threads shared by all its executors (threads <= 1: every run
// executes inline on the calling thread). The device must outlive its
// executors.
std::unique_ptr<Device> NewCpuDevice(int threads);

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_CPU_CPU_DEVICE_H_
