// The served models as the wire sees them: tensor names, datatypes and the
// per-item dims behind the leading batch dimension N (DESIGN.md, "Kernels").
#ifndef NPUK_SERVER_RPC_MODEL_SPEC_H_
#define NPUK_SERVER_RPC_MODEL_SPEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "model_config.pb.h"
#include "server/device/device.h"

namespace npuk {

struct TensorSpec {
  const char* name;
  const char* datatype;  // KServe v2 string: "INT16", "INT8"
  inference::DataType config_type;
  size_t element_bytes;
  std::vector<int64_t> item_dims;  // dims after N

  size_t item_elements() const;
  size_t item_bytes() const { return item_elements() * element_bytes; }
};

struct ModelSpec {
  const char* name;
  KernelId kernel;
  std::vector<TensorSpec> inputs;  // in device-layout plane order
  TensorSpec output;
  // Request parameters the model understands (beyond Triton's reserved ones).
  std::vector<const char*> parameters;
};

// Every model npukd knows, in a stable order.
std::span<const ModelSpec> AllModelSpecs();
// nullptr when no model has that name.
const ModelSpec* FindModelSpec(std::string_view name);

// Attention's score_scale when the request does not set it (1/sqrt(64)).
inline constexpr double kDefaultScoreScale = 0.125;

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_MODEL_SPEC_H_
