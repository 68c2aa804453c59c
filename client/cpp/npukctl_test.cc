// npukctl as a user runs it: exit codes and output against a real npukd.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cpp/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

struct CtlRun {
  int exit_code;
  std::string out;
};

CtlRun Npukctl(const std::string& args) {
  const std::string cmd = absl::StrCat(NPUKCTL_PATH, " ", args, " 2>&1");
  FILE* p = ::popen(cmd.c_str(), "r");
  CtlRun r{-1, ""};
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Start-up canaries may still be running; wait until `model` is SERVING.
void AwaitServing(const std::string& target, const std::string& model) {
  auto c = Client::Connect({.target = target});
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 100; ++i) {
    auto h = (*c)->Health(model);
    if (h.ok() && *h == grpc::health::v1::HealthCheckResponse::SERVING) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
  FAIL() << model << " never became SERVING";
}

TEST(NpukctlHealth, ExitCodesZeroOneTwo) {
  testing::DaemonProcess d({"--backend=cpu"});
  const std::string t = "--target=" + d.target();
  AwaitServing(d.target(), "");

  CtlRun ok = Npukctl("health " + t);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("mel"));
  EXPECT_THAT(ok.out, HasSubstr("attention"));
  EXPECT_THAT(ok.out, HasSubstr("SERVING"));

  CtlRun deep = Npukctl("health --deep " + t);
  EXPECT_EQ(deep.exit_code, 0) << deep.out;
  EXPECT_THAT(deep.out, HasSubstr("golden output matches"));

  CtlRun unknown = Npukctl("health --model=mel,nosuchmodel " + t);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out;

  CtlRun down = Npukctl("health --target=unix:/nonexistent/npukd.sock");
  EXPECT_EQ(down.exit_code, 2) << down.out;
  EXPECT_THAT(down.out, HasSubstr("is npukd running"));
}

TEST(NpukctlHealth, ExitsOneWhenAModelReturnsZeros) {
  // The fault decorator makes mel's device runs return all-zero frames; the
  // canary must catch it and health must say so.
  testing::DaemonProcess d(
      {"--backend=cpu", "--fault=mel:zeros", "--health_interval=200ms"});
  const std::string t = "--target=" + d.target();
  CtlRun r{0, ""};
  for (int i = 0; i < 50 && r.exit_code != 1; ++i) {
    r = Npukctl("health --model=mel " + t);
    if (r.exit_code != 1) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(r.exit_code, 1) << r.out;
  CtlRun att = Npukctl("health --model=attention --deep " + t);
  EXPECT_EQ(att.exit_code, 0) << att.out;
}

TEST(Npukctl, ModelsStatsInferAndBench) {
  testing::DaemonProcess d({"--backend=cpu"});
  const std::string t = "--target=" + d.target();
  AwaitServing(d.target(), "");

  CtlRun models = Npukctl("models " + t);
  EXPECT_EQ(models.exit_code, 0) << models.out;
  EXPECT_THAT(models.out, HasSubstr("audio INT16[-1,400]"));
  EXPECT_THAT(models.out, HasSubstr("out INT8[-1,64,64]"));

  CtlRun infer = Npukctl("infer --model=attention --frames=2 " + t);
  EXPECT_EQ(infer.exit_code, 0) << infer.out;
  EXPECT_THAT(infer.out, HasSubstr("out INT8[2,64,64]"));
  EXPECT_THAT(infer.out, HasSubstr("backend cpu"));

  CtlRun bad = Npukctl("infer --model=mel --frames=5000 " + t);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("INVALID_ARGUMENT"));

  CtlRun bench = Npukctl(
      "bench --model=mel --frames=4 --concurrency=8 --count=400 "
      "--warmup=0s --json " +
      t);
  EXPECT_EQ(bench.exit_code, 0) << bench.out;
  EXPECT_THAT(bench.out, HasSubstr("\"requests\": 400,"));
  EXPECT_THAT(bench.out, HasSubstr("\"errors\": 0,"));

  CtlRun stats = Npukctl("stats --model=mel --json " + t);
  EXPECT_EQ(stats.exit_code, 0) << stats.out;
  EXPECT_THAT(stats.out, HasSubstr("\"inference_count\": 1600"));
}

}  // namespace
}  // namespace npuk
