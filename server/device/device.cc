#include "server/device/device.h"

namespace npuk {

const char* KernelName(KernelId id) {
  switch (id) {
    case KernelId::kMel:
      return "mel";
    case KernelId::kAttention:
      return "attention";
  }
  return "unknown";
}

}  // namespace npuk
