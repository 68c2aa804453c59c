#include "tests/integration/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"

namespace npuk::testing {

std::string NpukdBinary() { return NPUKD_BINARY; }

DaemonProcess::DaemonProcess(
    std::vector<std::string> args,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  char tmpl[] = "/tmp/npukd-test-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  log_ = dir_ + "/npukd.log";
  bool has_listen = false;
  for (const auto& a : args) has_listen |= a.rfind("--listen=", 0) == 0;
  if (!has_listen) {
    target_ = "unix:" + dir_ + "/npukd.sock";
    args.insert(args.begin(), "--listen=" + target_);
  } else {
    for (const auto& a : args) {
      if (a.rfind("--listen=", 0) == 0) target_ = a.substr(9);
    }
  }
  std::vector<std::string> argv_s = {NpukdBinary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    // The daemon dies with the test, even if the test crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // Connect only once the socket exists: a channel that failed its first
  // connect waits out gRPC's reconnect backoff.
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  if (target_.rfind("unix:", 0) == 0) {
    const std::string path = target_.substr(5);
    while (::access(path.c_str(), F_OK) != 0 &&
           std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "npukd exited during start-up:\n" << log();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  channel_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  channel_ = grpc::CreateCustomChannel(target_, credentials, channel_args);
  auto stub = inference::GRPCInferenceService::NewStub(channel_);
  while (std::chrono::steady_clock::now() < give_up) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "npukd exited during start-up:\n" << log();
      return;
    }
    grpc::ClientContext ctx;
    // wait_for_ready: a connect (and TLS handshake) in progress is not cut
    // short by the attempt's deadline.
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(2));
    inference::ServerLiveRequest req;
    inference::ServerLiveResponse resp;
    if (stub->ServerLive(&ctx, req, &resp).ok() && resp.live()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "npukd did not answer ServerLive within 30 s:\n" << log();
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::unique_ptr<inference::GRPCInferenceService::Stub> DaemonProcess::stub()
    const {
  return inference::GRPCInferenceService::NewStub(channel_);
}

std::string DaemonProcess::log() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void DaemonProcess::Signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

int DaemonProcess::Stop(int sig, int timeout_s) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "npukd did not exit within " << timeout_s << " s";
  return -1;
}

}  // namespace npuk::testing
