// Bounded quoting of client input for error texts and logs.
//
// Anything a client sent (model, tensor and parameter names, versions,
// datatypes, shared-memory region names, ...) may be of any length and hold
// any bytes. An error text that echoed it whole could exceed the status
// metadata limit (the client then sees RESOURCE_EXHAUSTED instead of the
// real error) or push a stream's answer over the send limit. Every server
// error text quotes client input through QuoteBounded.
#ifndef NPUK_SERVER_COMMON_QUOTE_H_
#define NPUK_SERVER_COMMON_QUOTE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace npuk {

// Input bytes quoted by default; the escaped text is at most 4x as long.
inline constexpr size_t kQuoteMaxBytes = 64;

// `s` in single quotes, with quotes, backslashes and non-printable bytes
// C-escaped (\' \\ \xNN). Longer than `max` bytes: the first `max` bytes
// are quoted and the total length follows, e.g. 'aaaa'... (10240 bytes).
inline std::string QuoteBounded(absl::string_view s,
                                size_t max = kQuoteMaxBytes) {
  const bool cut = s.size() > max;
  std::string out =
      absl::StrCat("'", absl::CHexEscape(cut ? s.substr(0, max) : s), "'");
  if (cut) absl::StrAppend(&out, "... (", s.size(), " bytes)");
  return out;
}

// A client-sent shape as "[d0,d1,...]", at most `max` dims shown, e.g.
// "[1,2,3,...] (100000 dims)".
inline std::string ShapeBounded(absl::Span<const int64_t> dims,
                                size_t max = 8) {
  if (dims.size() <= max)
    return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
  return absl::StrCat("[", absl::StrJoin(dims.subspan(0, max), ","), ",...] (",
                      dims.size(), " dims)");
}

}  // namespace npuk

#endif  // NPUK_SERVER_COMMON_QUOTE_H_
