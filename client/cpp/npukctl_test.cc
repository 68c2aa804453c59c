// npukctl as a user runs it: exit codes and output against a real npukd.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <iterator>
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
  EXPECT_THAT(models.out, HasSubstr("out INT8[-1,-1,64]"));

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

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The generic commands on passthrough, which npukctl has no code for: every
// shape and datatype comes from the daemon's metadata.
TEST(Npukctl, GenericCommandsServeAModelFromItsMetadata) {
  testing::DaemonProcess d({"--backend=cpu"});
  const std::string t = "--target=" + d.target();
  AwaitServing(d.target(), "passthrough");
  const std::string dir = ::testing::TempDir();

  CtlRun models = Npukctl("models " + t);
  EXPECT_EQ(models.exit_code, 0) << models.out;
  EXPECT_THAT(models.out, HasSubstr("passthrough"));
  EXPECT_THAT(models.out, HasSubstr("in INT8[-1,4096]"));
  EXPECT_THAT(models.out, HasSubstr("param score_scale"));

  CtlRun random =
      Npukctl("infer --model=passthrough --items=3 --output=" + dir +
              "/random.bin " + t);
  EXPECT_EQ(random.exit_code, 0) << random.out;
  EXPECT_THAT(random.out, HasSubstr("out INT8[3,4096]"));
  EXPECT_EQ(ReadAll(dir + "/random.bin").size(), 3 * 4096u);

  // A file in, the same bytes out; both ways of naming the input.
  std::string bytes(2 * 4096, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  std::ofstream(dir + "/in.bin", std::ios::binary) << bytes;
  for (const std::string& input : {"in=" + dir + "/in.bin", dir + "/in.bin"}) {
    CtlRun r = Npukctl("infer --model=passthrough --input=" + input +
                       " --output=" + dir + "/out.bin " + t);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr("out INT8[2,4096]: 0 7 14 21"));
    EXPECT_EQ(ReadAll(dir + "/out.bin"), bytes);
  }

  CtlRun unknown = Npukctl("infer --model=passthrough --input=in=" + dir +
                           "/random.bin --param=nosuch=1 " + t);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out;
  EXPECT_THAT(unknown.out, HasSubstr("nosuch"));
  CtlRun wrong =
      Npukctl("infer --model=passthrough --input=x=" + dir + "/in.bin " + t);
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;
  EXPECT_THAT(wrong.out, HasSubstr("NAME=FILE"));
  CtlRun no_model = Npukctl("infer " + t);
  EXPECT_EQ(no_model.exit_code, 1) << no_model.out;
  EXPECT_THAT(no_model.out, HasSubstr("passthrough"));

  CtlRun bench = Npukctl(
      "bench --model=passthrough --items=2 --concurrency=4 --count=100 "
      "--warmup=0s --json " +
      t);
  EXPECT_EQ(bench.exit_code, 0) << bench.out;
  EXPECT_THAT(bench.out, HasSubstr("\"requests\": 100,"));
  EXPECT_THAT(bench.out, HasSubstr("\"errors\": 0,"));

  CtlRun stats = Npukctl("stats --model=passthrough --json " + t);
  EXPECT_EQ(stats.exit_code, 0) << stats.out;
  // 3 + 2 + 2 items by infer, 100 x 2 by bench.
  EXPECT_THAT(stats.out, HasSubstr("\"inference_count\": 207"));

  CtlRun deep = Npukctl("health --deep --model=passthrough " + t);
  EXPECT_EQ(deep.exit_code, 0) << deep.out;
  EXPECT_THAT(deep.out, HasSubstr("golden output matches"));
}

TEST(Npukctl, ParametersAreTypedFromTheModelConfig) {
  testing::DaemonProcess d({"--backend=cpu"});
  const std::string t = "--target=" + d.target();
  AwaitServing(d.target(), "attention");
  const std::string dir = ::testing::TempDir();
  // score_scale is a double: "1" must reach the daemon as 1.0 and change
  // the answer against the default 0.125.
  CtlRun a = Npukctl("infer --model=attention --output=" + dir +
                     "/a.bin --param=score_scale=1 " + t);
  EXPECT_EQ(a.exit_code, 0) << a.out;
  CtlRun b = Npukctl("infer --model=attention --output=" + dir + "/b.bin " + t);
  EXPECT_EQ(b.exit_code, 0) << b.out;
  EXPECT_EQ(ReadAll(dir + "/a.bin").size(), 4096u);
  EXPECT_NE(ReadAll(dir + "/a.bin"), ReadAll(dir + "/b.bin"));
  CtlRun bad = Npukctl("infer --model=attention --param=score_scale=big " + t);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("a double"));
  CtlRun range = Npukctl("infer --model=attention --param=score_scale=-1 " + t);
  EXPECT_EQ(range.exit_code, 1) << range.out;
  EXPECT_THAT(range.out, HasSubstr("INVALID_ARGUMENT"));
}

}  // namespace
}  // namespace npuk
