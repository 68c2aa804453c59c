// Triton's reserved request parameters (server:docs/protocol/
// extension_parameters.md): every model accepts them and, except "timeout",
// ignores them. Shared by the generic tensor mapping and the host models.
#ifndef NPUK_SERVER_COMMON_RESERVED_PARAMETERS_H_
#define NPUK_SERVER_COMMON_RESERVED_PARAMETERS_H_

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace npuk {

inline bool IsReservedParameter(absl::string_view name) {
  return name == "sequence_id" || name == "sequence_start" ||
         name == "sequence_end" || name == "priority" || name == "timeout" ||
         name == "headers" || name == "binary_data_output" ||
         absl::StartsWith(name, "triton_");
}

}  // namespace npuk

#endif  // NPUK_SERVER_COMMON_RESERVED_PARAMETERS_H_
