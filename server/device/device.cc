#include "server/device/device.h"

namespace npuk {

std::string_view KernelName(KernelId id) {
  switch (id) {
    case KernelId::kMel:
      return "mel";
    case KernelId::kAttention:
      return "attention";
  }
  return "unknown";
}

}  // namespace npuk
