#include "server/health/health_service.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "server/device/fault/fault_device.h"
#include "server/health/health_testing.h"

namespace npuk {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

class HealthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/health_service_test." +
            std::to_string(getpid()) + ".sock";
    unlink(path_.c_str());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + path_,
                             grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = Health::NewStub(grpc::CreateChannel(
        "unix:" + path_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    service_.Shutdown();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    unlink(path_.c_str());
  }

  grpc::Status Check(const std::string& service,
                     HealthCheckResponse::ServingStatus* status) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    grpc::Status s = stub_->Check(&ctx, req, &resp);
    *status = resp.status();
    return s;
  }

  std::string path_;
  HealthService service_{{"mel", "attention"},
                         {"inference.GRPCInferenceService"}};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Health::Stub> stub_;
};

TEST_F(HealthServiceTest, CheckFollowsModelStates) {
  HealthCheckResponse::ServingStatus st;
  ASSERT_TRUE(Check("", &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::NOT_SERVING);
  service_.SetServing("mel", true);
  ASSERT_TRUE(Check("mel", &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::SERVING);
  ASSERT_TRUE(Check("", &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::NOT_SERVING);  // attention is not
  service_.SetServing("attention", true);
  ASSERT_TRUE(Check("", &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::SERVING);
  service_.SetDraining();
  for (const char* s : {"", "mel", "attention"}) {
    ASSERT_TRUE(Check(s, &st).ok());
    EXPECT_EQ(st, HealthCheckResponse::NOT_SERVING) << s;
  }
}

TEST_F(HealthServiceTest, ServerWideNameAnswersAsTheWholeServer) {
  const std::string name = "inference.GRPCInferenceService";
  HealthCheckResponse::ServingStatus st;
  ASSERT_TRUE(Check(name, &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::NOT_SERVING);
  service_.SetServing("mel", true);
  ASSERT_TRUE(Check(name, &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::NOT_SERVING);  // attention is not
  service_.SetServing("attention", true);
  ASSERT_TRUE(Check(name, &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::SERVING);
  EXPECT_EQ(service_.StatusOf(name), service_.StatusOf(""));
  // Only the exact name: a prefix or another package is unknown.
  EXPECT_EQ(service_.StatusOf("inference"),
            HealthCheckResponse::SERVICE_UNKNOWN);
  EXPECT_EQ(service_.StatusOf("GRPCInferenceService"),
            HealthCheckResponse::SERVICE_UNKNOWN);
  service_.SetDraining();
  ASSERT_TRUE(Check(name, &st).ok());
  EXPECT_EQ(st, HealthCheckResponse::NOT_SERVING);
}

TEST_F(HealthServiceTest, UnknownServiceIsNotFound) {
  HealthCheckResponse::ServingStatus st;
  grpc::Status s = Check("whisper", &st);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("'whisper'"));
  EXPECT_THAT(s.error_message(), HasSubstr("attention"));
  EXPECT_EQ(service_.StatusOf("whisper"), HealthCheckResponse::SERVICE_UNKNOWN);
}

TEST_F(HealthServiceTest, WatchStreamsChangesAndEndsAtShutdown) {
  grpc::ClientContext ctx;
  HealthCheckRequest req;
  req.set_service("mel");
  auto reader = stub_->Watch(&ctx, req);
  HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  service_.SetServing("mel", true);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  // A change of another model does not concern this stream.
  service_.SetServing("attention", true);
  service_.SetServing("mel", false);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  service_.SetServing("mel", true);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  service_.Shutdown();
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(HealthServiceTest, WatchUnknownServiceSaysServiceUnknown) {
  grpc::ClientContext ctx;
  HealthCheckRequest req;
  req.set_service("whisper");
  auto reader = stub_->Watch(&ctx, req);
  HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  ctx.TryCancel();
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(HealthServiceTest, WatchAfterShutdownEndsAtOnce) {
  service_.Shutdown();
  grpc::ClientContext ctx;
  HealthCheckRequest req;
  auto reader = stub_->Watch(&ctx, req);
  HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(HealthServiceTest, ManyWatchersConvergeOnTheLastState) {
  constexpr int kWatchers = 8;
  std::vector<std::thread> readers;
  std::vector<std::vector<int>> seen(kWatchers);
  std::vector<grpc::Status> finished(kWatchers);
  std::vector<std::atomic<int>> latest(kWatchers);
  absl::Notification all_started;
  std::atomic<int> started{0};
  for (int i = 0; i < kWatchers; ++i) {
    readers.emplace_back([&, i] {
      grpc::ClientContext ctx;
      HealthCheckRequest req;
      req.set_service(i % 2 == 0 ? "" : "attention");
      auto reader = stub_->Watch(&ctx, req);
      HealthCheckResponse resp;
      bool first = true;
      while (reader->Read(&resp)) {
        seen[i].push_back(resp.status());
        latest[i] = resp.status();
        if (first && ++started == kWatchers) all_started.Notify();
        first = false;
      }
      finished[i] = reader->Finish();
    });
  }
  ASSERT_TRUE(all_started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  for (int round = 0; round < 200; ++round) {
    service_.SetServing("mel", round % 2 == 0);
    service_.SetServing("attention", round % 3 == 0);
  }
  service_.SetServing("mel", true);
  service_.SetServing("attention", true);
  // Let the final state reach every stream before Shutdown overrides it.
  const absl::Time limit = absl::Now() + absl::Seconds(30);
  for (int i = 0; i < kWatchers && absl::Now() < limit; ++i) {
    while (latest[i] != HealthCheckResponse::SERVING && absl::Now() < limit) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  service_.Shutdown();
  for (std::thread& t : readers) t.join();
  for (int i = 0; i < kWatchers; ++i) {
    EXPECT_TRUE(finished[i].ok()) << i << ": " << finished[i].error_message();
    // Intermediate states may be skipped (only the latest is written), but
    // the last two are the final state and the shutdown.
    ASSERT_GE(seen[i].size(), 2u) << i;
    EXPECT_EQ(seen[i][seen[i].size() - 2], HealthCheckResponse::SERVING) << i;
    EXPECT_EQ(seen[i].back(), HealthCheckResponse::NOT_SERVING) << i;
    for (size_t j = 1; j < seen[i].size(); ++j) {
      EXPECT_NE(seen[i][j], seen[i][j - 1]) << "repeated state on " << i;
    }
  }
}

TEST(HealthServiceAttach, FollowsTheMonitor) {
  FaultController faults;
  auto device =
      WithFaults(std::make_unique<testing::FakeDevice>(), {}, &faults);
  HealthMonitor monitor;
  auto mel = testing::MakeBatcher(*device, testing::Kernel("mel"), nullptr);
  auto att =
      testing::MakeBatcher(*device, testing::Kernel("attention"), nullptr);
  monitor.AddModel(mel.get(), testing::FakeCanary(testing::Kernel("mel"), 2));
  monitor.AddModel(att.get(),
                   testing::FakeCanary(testing::Kernel("attention"), 1));
  HealthService service(monitor.model_names());
  service.Attach(&monitor);
  EXPECT_EQ(service.StatusOf(""), HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(monitor.RunInitialCanaries().ok());
  EXPECT_EQ(service.StatusOf(""), HealthCheckResponse::SERVING);
  faults.Set({*ParseFaultSpec("mel:zeros")});
  monitor.ReportFault("mel", absl::InternalError("zero frame"));
  EXPECT_EQ(service.StatusOf("mel"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(service.StatusOf("attention"), HealthCheckResponse::SERVING);
  EXPECT_EQ(service.StatusOf(""), HealthCheckResponse::NOT_SERVING);
  monitor.Stop();
}

}  // namespace
}  // namespace npuk
