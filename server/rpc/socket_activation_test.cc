#include "server/rpc/socket_activation.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "server/health/health_service.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

extern "C" char** environ;

constexpr char kChildEnv[] = "NPUK_TEST_ACTIVATED_SOCKET";

// What systemd does for npukd.socket: a listening unix socket at fd 3 and
// LISTEN_FDS=1 / LISTEN_PID=<pid>, across exec. gRPC opens descriptors
// while this binary starts, so fd 3 cannot be freed in-process: the test
// re-runs itself (only `test`) in a child that inherits the socket as fd 3,
// exactly like a socket-activated npukd. Returns the child's exit status;
// in the child (kChildEnv set) it is never called.
int RunActivated(const std::string& test, int type, bool listening,
                 std::string* path_out) {
  const std::string path =
      ::testing::TempDir() + "/activated." + std::to_string(getpid()) + ".sock";
  *path_out = path;
  unlink(path.c_str());
  const int fd = socket(AF_UNIX, type, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  if (listening) {
    EXPECT_EQ(listen(fd, 16), 0);
  }
  // Everything the child needs is prepared before fork (only
  // async-signal-safe calls may follow it).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (strncmp(*e, "LISTEN_", 7) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back("LISTEN_FDS=1");
  env_strings.push_back(std::string(kChildEnv) + "=" + path);
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  const size_t pid_slot = env.size();
  env.push_back(nullptr);  // LISTEN_PID, filled in the child
  env.push_back(nullptr);
  char pid_buf[64];
  std::string exe = "/proc/self/exe";
  std::string filter = "--gtest_filter=SocketActivation." + test;
  char* argv[] = {exe.data(), filter.data(), nullptr};

  const pid_t child = fork();
  if (child == 0) {
    // LISTEN_PID must be the child's own pid, which exec keeps.
    const long pid = static_cast<long>(getpid());
    int len = 0;
    char digits[32];
    long v = pid;
    do {
      digits[len++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v > 0);
    memcpy(pid_buf, "LISTEN_PID=", 11);
    for (int i = 0; i < len; ++i) pid_buf[11 + i] = digits[len - 1 - i];
    pid_buf[11 + len] = '\0';
    env[pid_slot] = pid_buf;
    if (dup2(fd, 3) != 3) _exit(90);
    if (fd != 3) close(fd);
    execve(argv[0], argv, env.data());
    _exit(91);
  }
  close(fd);
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, 0), child);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool InChild() { return getenv(kChildEnv) != nullptr; }

TEST(SocketActivation, NotActivatedWithoutListenFds) {
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  absl::StatusOr<std::optional<int>> fd = TakeActivatedUnixSocket();
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_FALSE(fd->has_value());
}

TEST(SocketActivation, ListenFdsForAnotherProcessAreIgnored) {
  setenv("LISTEN_FDS", "1", 1);
  setenv("LISTEN_PID", std::to_string(getpid() + 1).c_str(), 1);
  absl::StatusOr<std::optional<int>> fd = TakeActivatedUnixSocket();
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_FALSE(fd->has_value());
}

TEST(SocketActivation, RejectsADatagramSocket) {
  if (!InChild()) {
    std::string path;
    EXPECT_EQ(RunActivated("RejectsADatagramSocket", SOCK_DGRAM, false, &path),
              0);
    unlink(path.c_str());
    return;
  }
  absl::StatusOr<std::optional<int>> fd = TakeActivatedUnixSocket();
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fd.status().message(), HasSubstr("ListenStream="));
}

TEST(SocketActivation, ServesGrpcOverTheInheritedSocket) {
  if (!InChild()) {
    std::string path;
    EXPECT_EQ(RunActivated("ServesGrpcOverTheInheritedSocket", SOCK_STREAM,
                           true, &path),
              0);
    unlink(path.c_str());
    return;
  }
  const std::string path = getenv(kChildEnv);
  absl::StatusOr<std::optional<int>> fd = TakeActivatedUnixSocket();
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_TRUE(fd->has_value());
  EXPECT_EQ(**fd, 3);
  EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);  // not passed on to children
  EXPECT_EQ(UnixSocketPath(**fd), path);

  HealthService health({"mel"});
  health.SetServing("mel", true);
  grpc::ServerBuilder builder;  // no listening port: the acceptor feeds it
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto acceptor = std::make_unique<ActivatedSocketAcceptor>(**fd);
  ASSERT_TRUE(acceptor->Start(server.get()).ok());

  for (int client = 0; client < 3; ++client) {
    // Separate channels are separate connections.
    grpc::ChannelArguments args;
    args.SetInt("npuk.test.client", client);
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateCustomChannel(
        "unix:" + path, grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("mel");
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  EXPECT_EQ(acceptor->accepted(), 3u);

  acceptor->Stop();
  // The listening socket is closed: new connections are refused.
  const int probe = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  EXPECT_NE(connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  close(probe);
  health.Shutdown();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  acceptor.reset();
}

}  // namespace
}  // namespace npuk
