// npuk::Client over system shared memory against the real daemon: results
// byte-identical to plain gRPC, the regions registered once and removed on
// destruction, fallback when the daemon loses a region, the off switches.
#include "client/cpp/shm_transport.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace npuk {
namespace {

std::set<std::string> OurShmObjects() {
  std::set<std::string> out;
  const std::string prefix = absl::StrCat("npuk_", getpid(), "_");
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      if (absl::StartsWith(e->d_name, prefix)) out.insert(e->d_name);
    }
    closedir(d);
  }
  return out;
}

size_t RegionCount(inference::GRPCInferenceService::Stub& stub) {
  grpc::ClientContext ctx;
  inference::SystemSharedMemoryStatusResponse resp;
  EXPECT_TRUE(stub.SystemSharedMemoryStatus(
                      &ctx, inference::SystemSharedMemoryStatusRequest(), &resp)
                  .ok());
  return resp.regions_size();
}

TEST(ShmTransport, LocalTargets) {
  EXPECT_TRUE(IsLocalTarget("unix:/run/npukd/npukd.sock"));
  EXPECT_TRUE(IsLocalTarget("127.0.0.1:8001"));
  EXPECT_TRUE(IsLocalTarget("localhost:8001"));
  EXPECT_TRUE(IsLocalTarget("[::1]:8001"));
  EXPECT_TRUE(IsLocalTarget("dns:///localhost:8001"));
  EXPECT_FALSE(IsLocalTarget("10.0.0.2:8001"));
  EXPECT_FALSE(IsLocalTarget("npu-host.example:8001"));
}

TEST(ShmTransport, ClientResultsMatchPlainGrpc) {
  testing::DaemonProcess daemon({"--backend=cpu"});
  auto plain =
      Client::Connect({.target = daemon.target(), .shared_memory = false});
  auto shm = Client::Connect({.target = daemon.target()});  // auto: local
  ASSERT_TRUE(plain.ok() && shm.ok());
  ASSERT_EQ((*plain)->shared_memory(), nullptr);
  ASSERT_NE((*shm)->shared_memory(), nullptr);

  std::mt19937 rng(3);
  std::vector<int16_t> frames(100 * 400);
  for (auto& s : frames) s = static_cast<int16_t>(rng() & 0xffff);
  std::vector<int8_t> q(2 * 4096), k(2 * 4096), v(2 * 4096);
  for (auto* t : {&q, &k, &v}) {
    for (auto& x : *t) x = static_cast<int8_t>(rng() & 0xff);
  }
  const std::set<std::string> before = OurShmObjects();
  auto want_mel = (*plain)->Mel(frames);
  auto want_att = (*plain)->Attention(q, k, v, 0.1);
  ASSERT_TRUE(want_mel.ok() && want_att.ok());
  auto got_mel = (*shm)->Mel(frames);
  auto got_att = (*shm)->Attention(q, k, v, 0.1);
  ASSERT_TRUE(got_mel.ok()) << got_mel.status();
  ASSERT_TRUE(got_att.ok()) << got_att.status();
  EXPECT_EQ(got_mel->log_mel, want_mel->log_mel);
  EXPECT_EQ(got_att->out, want_att->out);
  EXPECT_GT(got_mel->timing.compute, absl::ZeroDuration());
  const ShmTransport* t = (*shm)->shared_memory();
  EXPECT_EQ(t->shm_requests(), 2);
  EXPECT_EQ(t->fallbacks(), 0);
  EXPECT_EQ(OurShmObjects().size(), before.size() + 1);  // one region, reused
  auto stub = daemon.stub();
  EXPECT_EQ(RegionCount(*stub), 1u);

  // Someone unregisters every region: the call still answers (plainly) and
  // the next one registers a new region.
  {
    grpc::ClientContext ctx;
    inference::SystemSharedMemoryUnregisterResponse r;
    ASSERT_TRUE(
        stub->SystemSharedMemoryUnregister(
                &ctx, inference::SystemSharedMemoryUnregisterRequest(), &r)
            .ok());
  }
  auto again = (*shm)->Mel(frames);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->log_mel, want_mel->log_mel);
  EXPECT_EQ(t->fallbacks(), 1);
  auto third = (*shm)->Mel(frames);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->log_mel, want_mel->log_mel);
  EXPECT_EQ(t->shm_requests(), 3);

  shm->reset();  // unregisters and unlinks
  EXPECT_EQ(OurShmObjects(), before);
  EXPECT_EQ(RegionCount(*stub), 0u);
}

TEST(ShmTransport, EnvironmentTurnsItOff) {
  setenv("NPUK_SHM", "0", 1);
  auto c = Client::Connect({.target = "unix:/nonexistent/npukd.sock"});
  unsetenv("NPUK_SHM");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->shared_memory(), nullptr);
  auto on = Client::Connect({.target = "unix:/nonexistent/npukd.sock"});
  ASSERT_TRUE(on.ok());
  EXPECT_NE((*on)->shared_memory(), nullptr);
  auto remote = Client::Connect({.target = "10.0.0.2:1"});
  ASSERT_TRUE(remote.ok());
  EXPECT_EQ((*remote)->shared_memory(), nullptr);
}

}  // namespace
}  // namespace npuk
