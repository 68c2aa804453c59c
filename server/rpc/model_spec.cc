#include "server/rpc/model_spec.h"

namespace npuk {

size_t TensorSpec::item_elements() const {
  size_t n = 1;
  for (int64_t d : item_dims) n *= static_cast<size_t>(d);
  return n;
}

std::span<const ModelSpec> AllModelSpecs() {
  static const std::vector<ModelSpec>* const kSpecs =
      new std::vector<ModelSpec>{
          {.name = "mel",
           .kernel = KernelId::kMel,
           .inputs = {{"audio", "INT16", inference::TYPE_INT16, 2, {400}}},
           .output = {"log_mel", "INT8", inference::TYPE_INT8, 1, {80}},
           .parameters = {}},
          {.name = "attention",
           .kernel = KernelId::kAttention,
           .inputs = {{"q", "INT8", inference::TYPE_INT8, 1, {64, 64}},
                      {"k", "INT8", inference::TYPE_INT8, 1, {64, 64}},
                      {"v", "INT8", inference::TYPE_INT8, 1, {64, 64}}},
           .output = {"out", "INT8", inference::TYPE_INT8, 1, {64, 64}},
           .parameters = {"score_scale"}},
      };
  return *kSpecs;
}

const ModelSpec* FindModelSpec(std::string_view name) {
  for (const ModelSpec& spec : AllModelSpecs()) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

}  // namespace npuk
