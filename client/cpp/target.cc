#include "client/cpp/target.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace npuk {
namespace {

constexpr char kSystemSocket[] = "/run/npukd/npukd.sock";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

std::string DefaultSocketPath() {
  if (std::string s = Env("NPUK_SOCKET"); !s.empty()) return s;
  // systemd joins several RuntimeDirectory= entries with ':'; ours is first.
  if (std::string s = Env("RUNTIME_DIRECTORY"); !s.empty()) {
    return absl::StrCat(s.substr(0, s.find(':')), "/npukd.sock");
  }
  if (std::string s = Env("XDG_RUNTIME_DIR"); !s.empty()) {
    return absl::StrCat(s, "/npukd.sock");
  }
  if (::getuid() == 0) return kSystemSocket;
  return absl::StrCat("/tmp/npukd-", ::getuid(), ".sock");
}

std::string DefaultTarget() {
  if (std::string t = Env("NPUK_TARGET"); !t.empty()) return t;
  std::string path = DefaultSocketPath();
  if (!IsSocket(path) && IsSocket(kSystemSocket)) path = kSystemSocket;
  return absl::StrCat("unix:", path);
}

absl::StatusOr<std::string> ResolveTarget(absl::string_view target) {
  if (target.empty()) return DefaultTarget();
  if (absl::StartsWith(target, "unix:") ||
      absl::StartsWith(target, "unix-abstract:") ||
      absl::StartsWith(target, "dns:") || absl::StartsWith(target, "ipv4:") ||
      absl::StartsWith(target, "ipv6:")) {
    if (target.find(':') + 1 == target.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("target '", target,
                       "' has no address after the scheme; use "
                       "unix:/path/to/npukd.sock or HOST:PORT"));
    }
    return std::string(target);
  }
  const size_t colon = target.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      colon + 1 == target.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target '", target,
        "' is neither unix:PATH nor HOST:PORT; e.g. "
        "--target=unix:/run/npukd/npukd.sock or --target=127.0.0.1:8001"));
  }
  return std::string(target);
}

}  // namespace npuk
