#include "server/device/xrt/host_checks.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk::xrt_backend {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path MakeDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(HostChecks, MissingDeviceNode) {
  absl::Status s = CheckHost({MakeDir("accel_empty"), RLIM_INFINITY});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("amdxdna driver"));
}

TEST(HostChecks, NodeWithoutPermission) {
  if (geteuid() == 0) GTEST_SKIP() << "root bypasses file permissions";
  const fs::path dir = MakeDir("accel_noperm");
  std::ofstream(dir / "accel0") << "";
  fs::permissions(dir / "accel0", fs::perms::none);
  absl::Status s = CheckHost({dir, RLIM_INFINITY});
  EXPECT_THAT(std::string(s.message()), HasSubstr("group `render`"));
}

TEST(HostChecks, MemlockTooLow) {
  const fs::path dir = MakeDir("accel_ok");
  std::ofstream(dir / "accel0") << "";
  absl::Status s = CheckHost({dir, rlim_t{8} << 20});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("LimitMEMLOCK=infinity"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("8192 KiB"));
}

TEST(HostChecks, HealthyHost) {
  const fs::path dir = MakeDir("accel_good");
  std::ofstream(dir / "accel0") << "";
  EXPECT_TRUE(CheckHost({dir, RLIM_INFINITY}).ok());
  EXPECT_TRUE(CheckHost({dir, kMinMemlockBytes}).ok());
}

}  // namespace
}  // namespace npuk::xrt_backend
