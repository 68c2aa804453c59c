#include "tests/adversarial/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/daemon_process.h"

namespace npuk::testing {
namespace {

long StatusField(const std::string& text, const std::string& key) {
  const size_t at = text.find("\n" + key + ":");
  if (at == std::string::npos) return -1;
  std::istringstream in(text.substr(at + key.size() + 2));
  long v = -1;
  in >> v;
  return v;
}

std::string Mb(long kb) {
  if (kb < 0) return "?";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(kb) / 1024);
  return buf;
}

}  // namespace

ProcFigures ReadProcFigures(pid_t pid) {
  ProcFigures f;
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream in(base + "/status");
  if (in) {
    std::stringstream s;
    s << "\n" << in.rdbuf();
    const std::string text = s.str();
    f.rss_kb = StatusField(text, "VmRSS");
    f.peak_rss_kb = StatusField(text, "VmHWM");
    f.threads = StatusField(text, "Threads");
  }
  if (DIR* dir = ::opendir((base + "/fd").c_str()); dir != nullptr) {
    long n = 0;
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(dir);
    f.fds = n;
  }
  return f;
}

std::string FormatFigures(const ProcFigures& f) {
  std::ostringstream out;
  out << "RSS " << Mb(f.rss_kb) << " (peak " << Mb(f.peak_rss_kb) << "), "
      << f.fds << " fds, " << f.threads << " threads";
  return out.str();
}

AttackFigures::AttackFigures(pid_t pid, std::string name)
    : pid_(pid), name_(std::move(name)), before_(ReadProcFigures(pid)) {}

const ProcFigures& AttackFigures::Report(const std::string& stage) {
  after_ = ReadProcFigures(pid_);
  std::printf("[attack] %s: before %s; %s %s\n", name_.c_str(),
              FormatFigures(before_).c_str(), stage.c_str(),
              FormatFigures(after_).c_str());
  std::fflush(stdout);
  return after_;
}

std::chrono::milliseconds WaitUntil(const std::function<bool()>& condition,
                                    std::chrono::milliseconds timeout,
                                    std::chrono::milliseconds poll) {
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    if (condition()) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
    }
    if (std::chrono::steady_clock::now() - start >= timeout) {
      return std::chrono::milliseconds(-1);
    }
    std::this_thread::sleep_for(poll);
  }
}

std::shared_ptr<grpc::Channel> FreshChannel(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also uses it as the connect
  // timeout, and a daemon busy with an attack may take longer than that to
  // send its SETTINGS.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(target, credentials, args);
}

TestCertificates::TestCertificates() : dir_(TempDir()) {
  const std::string script =
      "set -e; cd " + dir_ +
      "; exec >openssl.log 2>&1;"
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
      "-days 1 -subj /CN=npuk-test-ca;"
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out "
      "server.csr -subj /CN=localhost;"
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > server.ext;"
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -out server.pem -days 1 -extfile server.ext;"
      "openssl req -newkey rsa:2048 -nodes -keyout client.key -out "
      "client.csr -subj /CN=npuk-test-client;"
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -out client.pem -days 1";
  ok_ = std::system(("bash -c \"" + script + "\"").c_str()) == 0;
}

std::string TestCertificates::path(const std::string& name) const {
  return dir_ + "/" + name;
}

std::vector<std::string> TestCertificates::MutualTlsFlags() const {
  return {"--tls_cert=" + path("server.pem"), "--tls_key=" + path("server.key"),
          "--tls_client_ca=" + path("ca.pem")};
}

std::shared_ptr<grpc::ChannelCredentials> TestCertificates::ClientCredentials()
    const {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadText(path("ca.pem"));
  tls.pem_private_key = ReadText(path("client.key"));
  tls.pem_cert_chain = ReadText(path("client.pem"));
  return grpc::SslCredentials(tls);
}

pid_t SpawnNpukd(const std::vector<std::string>& args,
                 const std::string& log_path, mode_t umask_value) {
  std::vector<std::string> argv_s = {NpukdBinary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::umask(umask_value);
    const int fd = ::open(log_path.c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

NpukdRun RunNpukd(const std::vector<std::string>& args,
                  std::chrono::milliseconds timeout) {
  const std::string dir = TempDir();
  const std::string log = dir + "/npukd.log";
  NpukdRun run;
  run.exit_code = WaitExit(SpawnNpukd(args, log), timeout);
  run.output = ReadText(log);
  return run;
}

std::string TempDir() {
  char tmpl[] = "/tmp/npukd-adv-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  return dir != nullptr ? dir : "/tmp";
}

}  // namespace npuk::testing
