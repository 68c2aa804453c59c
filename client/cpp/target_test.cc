#include "client/cpp/target.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace npuk {
namespace {

class TargetTest : public testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"NPUK_TARGET", "NPUK_SOCKET", "RUNTIME_DIRECTORY",
                          "XDG_RUNTIME_DIR"}) {
      ::unsetenv(v);
    }
  }
};

TEST_F(TargetTest, LookupOrderMatchesTheDaemon) {
  if (::getuid() == 0) {
    EXPECT_EQ(DefaultSocketPath(), "/run/npukd/npukd.sock");
  } else {
    EXPECT_EQ(DefaultSocketPath(),
              absl::StrCat("/tmp/npukd-", ::getuid(), ".sock"));
  }
  ::setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
  EXPECT_EQ(DefaultSocketPath(), "/run/user/1000/npukd.sock");
  ::setenv("RUNTIME_DIRECTORY", "/run/npukd:/run/other", 1);
  EXPECT_EQ(DefaultSocketPath(), "/run/npukd/npukd.sock");
  ::setenv("NPUK_SOCKET", "/tmp/x.sock", 1);
  EXPECT_EQ(DefaultSocketPath(), "/tmp/x.sock");
  EXPECT_EQ(DefaultTarget(), "unix:/tmp/x.sock");
  ::setenv("NPUK_TARGET", "127.0.0.1:9", 1);
  EXPECT_EQ(DefaultTarget(), "127.0.0.1:9");
  EXPECT_EQ(*ResolveTarget(""), "127.0.0.1:9");
}

TEST_F(TargetTest, AcceptsUnixAndHostPort) {
  EXPECT_EQ(*ResolveTarget("unix:/tmp/a.sock"), "unix:/tmp/a.sock");
  EXPECT_EQ(*ResolveTarget("localhost:8001"), "localhost:8001");
  EXPECT_EQ(*ResolveTarget("[::1]:8001"), "[::1]:8001");
}

TEST_F(TargetTest, RejectsMalformedTargetsWithTheAcceptedForms) {
  for (const char* bad : {"unix:", "localhost", "localhost:", ":80"}) {
    auto t = ResolveTarget(bad);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(t.status().message().find("HOST:PORT"), std::string::npos);
  }
}

}  // namespace
}  // namespace npuk
