// Early-return helpers for absl::Status / absl::StatusOr, in the style of
// the macros Google's internal code uses (abseil does not ship them).
//
//   NPUK_RETURN_IF_ERROR(device->Open());
//   NPUK_ASSIGN_OR_RETURN(std::unique_ptr<Executor> ex,
//                         device->CreateExecutor(spec, 64));
//
// The error is returned unchanged; callers that add context do so where
// they build the message, not here.
#ifndef NPUK_SERVER_COMMON_STATUS_MACROS_H_
#define NPUK_SERVER_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define NPUK_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    if (::absl::Status npuk_status_ = (expr); !npuk_status_.ok()) { \
      return npuk_status_;                                          \
    }                                                               \
  } while (false)

#define NPUK_STATUS_CONCAT_INNER_(a, b) a##b
#define NPUK_STATUS_CONCAT_(a, b) NPUK_STATUS_CONCAT_INNER_(a, b)

#define NPUK_ASSIGN_OR_RETURN(lhs, expr)                                     \
  NPUK_ASSIGN_OR_RETURN_IMPL_(NPUK_STATUS_CONCAT_(npuk_statusor_, __LINE__), \
                              lhs, expr)

// `statusor` names a variable and `lhs` may be a declaration
// ("std::string s"), so neither can be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define NPUK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)   \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)
// NOLINTEND(bugprone-macro-parentheses)

#endif  // NPUK_SERVER_COMMON_STATUS_MACROS_H_
