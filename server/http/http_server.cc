#include "server/http/http_server.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <list>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/common/status_macros.h"
#include "spdlog/spdlog.h"

namespace npuk {

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

namespace {

absl::Status SplitHostPort(const std::string& flag,
                           const std::string& host_port, std::string& host,
                           std::string& port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon + 1 == host_port.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, "=\"", host_port, "\" is not HOST:PORT (e.g. 127.0.0.1:8000)"));
  }
  absl::string_view h = absl::string_view(host_port).substr(0, colon);
  port = host_port.substr(colon + 1);
  if (absl::ConsumePrefix(&h, "[") && !absl::ConsumeSuffix(&h, "]")) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", host_port, ": unbalanced [ in the host"));
  }
  host = std::string(h);
  return absl::OkStatus();
}

HttpResponse ErrorResponse(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  // A tiny JSON object; the message is ours (never client bytes), but
  // escape quotes and backslashes anyway.
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  r.body = absl::StrCat("{\"error\":\"", escaped, "\"}");
  return r;
}

void LogFromMhd(void*, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line(buf);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.pop_back();
  }
  spdlog::debug("http: {}", line);
}

}  // namespace

class HttpServer::Impl {
 public:
  // One request from its first access-handler call to its completion.
  struct Call {
    MHD_Connection* connection = nullptr;
    HttpRequest request;
    size_t reserved = 0;                // counted in buffered_bytes_
    std::atomic<bool> handled{false};   // the handler has been called
    std::optional<HttpResponse> early;  // refused before the handler ran
    std::atomic<bool> refused{false};   // `early` is set
    absl::Mutex mu;
    bool answered ABSL_GUARDED_BY(mu) = false;
    bool suspended ABSL_GUARDED_BY(mu) = false;
    std::optional<HttpResponse> answer ABSL_GUARDED_BY(mu);
  };
  // One TCP connection, for the request timeout.
  struct Conn {
    int fd = -1;
    absl::Time since;   // start of the request being received
    bool busy = false;  // a complete request is being answered
    bool cut = false;
  };

  Impl(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  ~Impl() { Stop(absl::Now()); }

  absl::Status Start(const std::string& host_port);
  void Stop(absl::Time deadline);
  int port() const { return port_; }

 private:
  static MHD_Result OnAccess(void* cls, MHD_Connection* connection,
                             const char* url, const char* method,
                             const char* version, const char* upload_data,
                             size_t* upload_data_size, void** con_cls) {
    (void)version;
    return static_cast<Impl*>(cls)->Access(connection, url, method, upload_data,
                                           upload_data_size, con_cls);
  }
  static void OnCompleted(void* cls, MHD_Connection* connection, void** con_cls,
                          MHD_RequestTerminationCode) {
    static_cast<Impl*>(cls)->Completed(connection, con_cls);
  }
  static void OnConnection(void* cls, MHD_Connection* connection,
                           void** socket_context,
                           MHD_ConnectionNotificationCode code) {
    static_cast<Impl*>(cls)->ConnectionEvent(connection, socket_context, code);
  }

  MHD_Result Access(MHD_Connection* connection, const char* url,
                    const char* method, const char* upload_data,
                    size_t* upload_data_size, void** con_cls);
  MHD_Result Begin(MHD_Connection* connection, const char* url,
                   const char* method, std::shared_ptr<Call>* call);
  void Completed(MHD_Connection* connection, void** con_cls);
  void ConnectionEvent(MHD_Connection* connection, void** socket_context,
                       MHD_ConnectionNotificationCode code);
  MHD_Result Queue(MHD_Connection* connection, const HttpResponse& response);
  static void Answer(const std::shared_ptr<Call>& call, HttpResponse response);
  Conn* ConnOf(MHD_Connection* connection);
  bool Reserve(size_t bytes);
  void Release(size_t bytes) { buffered_bytes_.fetch_sub(bytes); }
  void Reap();
  bool AcceptStalled();

  const HttpServerOptions options_;
  const HttpHandler handler_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  int listen_fd_ = -1;
  int stalled_ticks_ = 0;  // the reaper's count of ticks AcceptStalled()
  std::atomic<size_t> buffered_bytes_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::list<std::shared_ptr<Call>> calls_ ABSL_GUARDED_BY(mu_);
  std::list<Conn*> conns_ ABSL_GUARDED_BY(mu_);
  absl::Notification reaper_stop_;
  std::thread reaper_;
};

absl::Status HttpServer::Impl::Start(const std::string& host_port) {
  std::string host, port;
  NPUK_RETURN_IF_ERROR(SplitHostPort(options_.flag, host_port, host, port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(),
                           &hints, &res);
      rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        options_.flag, "=", host_port, ": cannot resolve: ", gai_strerror(rc),
        " (use HOST:PORT with a numeric port, e.g. 127.0.0.1:8000)"));
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, res->ai_addr,
              std::min<size_t>(res->ai_addrlen, sizeof(addr)));
  const bool v6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);

  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (v6) flags |= MHD_USE_IPv6;
  const auto idle = static_cast<unsigned>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options_.idle_timeout)));
  MHD_OptionItem opts[] = {
      {MHD_OPTION_CONNECTION_LIMIT, options_.max_connections, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, idle, nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
       static_cast<intptr_t>(options_.connection_memory_bytes), nullptr},
      {MHD_OPTION_SOCK_ADDR, 0, &addr},
      {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED,
       reinterpret_cast<intptr_t>(&Impl::OnCompleted), this},
      {MHD_OPTION_NOTIFY_CONNECTION,
       reinterpret_cast<intptr_t>(&Impl::OnConnection), this},
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&LogFromMhd),
       nullptr},
      {options_.internal_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE
                                     : MHD_OPTION_END,
       options_.internal_threads, nullptr},
      {MHD_OPTION_END, 0, nullptr},
  };
  daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::OnAccess, this,
                             MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (daemon_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(options_.flag, "=", host_port,
                     ": cannot listen (address in use or not local?); pick a "
                     "free port or another address"));
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  port_ = info != nullptr ? info->port : 0;
  const MHD_DaemonInfo* listen =
      MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_LISTEN_FD);
  listen_fd_ = listen != nullptr ? listen->listen_fd : -1;
  reaper_ = std::thread([this] { Reap(); });
  return absl::OkStatus();
}

bool HttpServer::Impl::Reserve(size_t bytes) {
  size_t now = buffered_bytes_.load();
  do {
    if (now + bytes > options_.max_buffered_bytes) return false;
  } while (!buffered_bytes_.compare_exchange_weak(now, now + bytes));
  return true;
}

HttpServer::Impl::Conn* HttpServer::Impl::ConnOf(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return info == nullptr ? nullptr : static_cast<Conn*>(info->socket_context);
}

void HttpServer::Impl::ConnectionEvent(MHD_Connection* connection,
                                       void** socket_context,
                                       MHD_ConnectionNotificationCode code) {
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    auto* c = new Conn();
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = info != nullptr ? info->connect_fd : -1;
    c->since = absl::Now();
    *socket_context = c;
    absl::MutexLock lock(&mu_);
    conns_.push_back(c);
    return;
  }
  auto* c = static_cast<Conn*>(*socket_context);
  if (c == nullptr) return;
  {
    absl::MutexLock lock(&mu_);
    conns_.remove(c);
  }
  delete c;
  *socket_context = nullptr;
}

// True when a connection waits on the listening socket although this
// process could open a file descriptor now. libmicrohttpd stops accepting
// when accept() fails for lack of fds while it has connections, and starts
// again only when one of them closes ("temporarily suspending accept()"):
// after fd exhaustion an idle keep-alive or silent connection would keep
// the port dead for the whole idle timeout.
bool HttpServer::Impl::AcceptStalled() {
  if (listen_fd_ < 0) return false;
  pollfd p{.fd = listen_fd_, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, 0) != 1 || (p.revents & POLLIN) == 0) return false;
  const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (probe < 0) return false;  // still out of fds: cutting would not help
  ::close(probe);
  return true;
}

// Cuts off connections whose request has not arrived within
// request_timeout, and, when accepting has stalled for two ticks (250 ms
// each, so a connection waiting that long is not one MHD is about to
// take) below max_connections, the oldest idle connection, whose close
// makes MHD accept again.
// Holding mu_ keeps each fd open: MHD reports the close (ConnectionEvent
// takes mu_) before it closes the socket.
void HttpServer::Impl::Reap() {
  while (
      !reaper_stop_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
    const absl::Time now = absl::Now();
    stalled_ticks_ = AcceptStalled() ? stalled_ticks_ + 1 : 0;
    absl::MutexLock lock(&mu_);
    for (Conn* c : conns_) {
      if (!c->busy && !c->cut && c->fd >= 0 &&
          now - c->since > options_.request_timeout) {
        c->cut = true;
        ::shutdown(c->fd, SHUT_RDWR);
      }
    }
    // At max_connections the waiting is by design (REST.md, Limits).
    if (stalled_ticks_ < 2 || conns_.size() >= options_.max_connections) {
      continue;
    }
    stalled_ticks_ = 0;
    for (Conn* c : conns_) {  // oldest first
      if (!c->busy && !c->cut && c->fd >= 0) {
        c->cut = true;
        ::shutdown(c->fd, SHUT_RDWR);
        spdlog::warn(
            "{}: accepting had stopped (it ran out of file descriptors); "
            "closed an idle connection to start it again",
            options_.flag);
        break;
      }
    }
  }
}

MHD_Result HttpServer::Impl::Queue(MHD_Connection* connection,
                                   const HttpResponse& response) {
  auto* body = new std::string(response.body);
  MHD_Response* r = MHD_create_response_from_buffer_with_free_callback_cls(
      body->size(), body->data(),
      [](void* cls) { delete static_cast<std::string*>(cls); }, body);
  if (r == nullptr) {
    delete body;
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                          response.content_type.c_str());
  for (const auto& [name, value] : response.headers) {
    MHD_add_response_header(r, name.c_str(), value.c_str());
  }
  const MHD_Result rc =
      MHD_queue_response(connection, static_cast<unsigned>(response.status), r);
  MHD_destroy_response(r);
  return rc;
}

void HttpServer::Impl::Answer(const std::shared_ptr<Call>& call,
                              HttpResponse response) {
  absl::MutexLock lock(&call->mu);
  if (call->answered) return;
  call->answered = true;
  call->answer = std::move(response);
  if (call->suspended) {
    call->suspended = false;
    MHD_resume_connection(call->connection);
  }
}

MHD_Result HttpServer::Impl::Begin(MHD_Connection* connection, const char* url,
                                   const char* method,
                                   std::shared_ptr<Call>* holder) {
  auto call = std::make_shared<Call>();
  *holder = call;
  call->connection = connection;
  call->request.method = method;
  call->request.path = url;
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back(call);
    if (stopping_) {
      call->refused = true;
      call->early = ErrorResponse(
          503,
          "npukd is shutting down and accepts no new requests; retry on "
          "another replica or after restart");
      return MHD_YES;
    }
  }
  const char* length = MHD_lookup_connection_value(
      connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  uint64_t declared = 0;
  if (length != nullptr && absl::SimpleAtoi(length, &declared)) {
    if (declared > options_.max_body_bytes) {
      call->refused = true;
      call->early = ErrorResponse(
          413, absl::StrCat("request body of ", declared,
                            " bytes is over this server's limit of ",
                            options_.max_body_bytes,
                            " bytes (max_message_bytes); send smaller "
                            "requests"));
      return MHD_YES;
    }
    if (!Reserve(declared)) {
      call->refused = true;
      call->early = ErrorResponse(
          503,
          absl::StrCat("npukd is already buffering ", buffered_bytes_.load(),
                       " bytes of request bodies (limit ",
                       options_.max_buffered_bytes, "); retry shortly"));
      return MHD_YES;
    }
    call->reserved = declared;
    call->request.body.reserve(declared);
  }
  return MHD_YES;
}

MHD_Result HttpServer::Impl::Access(MHD_Connection* connection, const char* url,
                                    const char* method, const char* upload_data,
                                    size_t* upload_data_size, void** con_cls) {
  if (*con_cls == nullptr) {
    auto* holder = new std::shared_ptr<Call>();
    *con_cls = holder;
    if (Conn* c = ConnOf(connection); c != nullptr) {
      absl::MutexLock lock(&mu_);
      c->busy = false;
    }
    Begin(connection, url, method, holder);
    // Refused at once (too large, no room, shutting down): answer before
    // reading any of the body; libmicrohttpd then closes the connection.
    if ((*holder)->refused) return Queue(connection, *(*holder)->early);
    return MHD_YES;
  }
  const std::shared_ptr<Call>& call =
      *static_cast<std::shared_ptr<Call>*>(*con_cls);
  if (*upload_data_size > 0) {
    const size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (call->early.has_value()) return MHD_YES;  // discard the rest
    std::string& body = call->request.body;
    if (body.size() + n > options_.max_body_bytes) {
      call->refused = true;
      call->early = ErrorResponse(
          413, absl::StrCat("request body is over this server's limit of ",
                            options_.max_body_bytes,
                            " bytes (max_message_bytes); send smaller "
                            "requests"));
      Release(call->reserved);
      call->reserved = 0;
      std::string().swap(body);
      return MHD_YES;
    }
    if (body.size() + n > call->reserved) {  // chunked, or a longer body
      const size_t more = body.size() + n - call->reserved;
      if (!Reserve(more)) {
        call->refused = true;
        call->early = ErrorResponse(
            503,
            absl::StrCat("npukd is already buffering request bodies up "
                         "to its limit of ",
                         options_.max_buffered_bytes, " bytes; retry shortly"));
        Release(call->reserved);
        call->reserved = 0;
        std::string().swap(body);
        return MHD_YES;
      }
      call->reserved += more;
    }
    body.append(upload_data, n);
    return MHD_YES;
  }
  // The whole request has arrived (or the connection was resumed).
  if (call->early.has_value()) return Queue(connection, *call->early);
  if (call->handled) {
    absl::MutexLock lock(&call->mu);
    if (!call->answer.has_value()) return MHD_NO;  // cannot happen
    return Queue(connection, *call->answer);
  }
  call->handled = true;
  if (Conn* c = ConnOf(connection); c != nullptr) {
    absl::MutexLock lock(&mu_);
    c->busy = true;
  }
  for (const std::string& name : options_.headers) {
    const char* v =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name.c_str());
    if (v != nullptr) call->request.headers.emplace_back(name, v);
  }
  handler_(call->request, [call](HttpResponse response) mutable {
    Answer(call, std::move(response));
  });
  absl::MutexLock lock(&call->mu);
  if (call->answered) return Queue(connection, *call->answer);
  call->suspended = true;
  MHD_suspend_connection(connection);
  return MHD_YES;
}

void HttpServer::Impl::Completed(MHD_Connection* connection, void** con_cls) {
  auto* holder = static_cast<std::shared_ptr<Call>*>(*con_cls);
  *con_cls = nullptr;
  if (holder == nullptr) return;
  Release((*holder)->reserved);
  (*holder)->reserved = 0;
  std::string().swap((*holder)->request.body);
  {
    absl::MutexLock lock(&mu_);
    calls_.remove(*holder);
    if (Conn* c = ConnOf(connection); c != nullptr) {
      c->busy = false;
      c->since = absl::Now();
    }
  }
  delete holder;
}

void HttpServer::Impl::Stop(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && daemon_ == nullptr) return;
    stopping_ = true;
    if (daemon_ == nullptr) return;
  }
  // Let answers that are on their way arrive, until the deadline.
  // mu_ is never held while taking a call's mu (Answer takes that, then
  // libmicrohttpd's own lock).
  auto waiting = [this] {
    std::vector<std::shared_ptr<Call>> calls, out;
    {
      absl::MutexLock lock(&mu_);
      calls.assign(calls_.begin(), calls_.end());
    }
    for (const auto& c : calls) {
      absl::MutexLock call_lock(&c->mu);
      if (c->handled && !c->answered) out.push_back(c);
    }
    return out;
  };
  while (absl::Now() < deadline && !waiting().empty()) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  for (const auto& c : waiting()) {
    Answer(c, ErrorResponse(503,
                            "npukd shut down before this request was "
                            "answered; retry on another replica or after "
                            "restart"));
  }
  // A short grace for the last answers to be written.
  const absl::Time grace = absl::Now() + absl::Milliseconds(200);
  for (;;) {
    bool pending = false;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& c : calls_) pending |= c->handled || c->refused;
    }
    if (!pending || absl::Now() >= grace) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  reaper_stop_.Notify();
  if (reaper_.joinable()) reaper_.join();
  MHD_stop_daemon(daemon_);
  absl::MutexLock lock(&mu_);
  daemon_ = nullptr;
  stopped_ = true;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& host_port, HttpServerOptions options,
    HttpHandler handler) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  NPUK_RETURN_IF_ERROR(impl->Start(host_port));
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;
int HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop(absl::Time deadline) { impl_->Stop(deadline); }

}  // namespace npuk
