// The native part of cgmanager: unix-socket syscalls that Node cannot make
// (SO_PEERCRED, SO_PASSCRED, SCM_CREDENTIALS, SCM_RIGHTS, sd_notify datagrams),
// and a libuv-driven socket that owns its fd so received fds are never lost.
// It trusts its arguments: addon/index.ts validates them. It never decides
// anything; it only moves bytes, fds and credentials.
#include <napi.h>
#include <uv.h>

#include "errno-error.h"
#include "uv-poll.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <deque>
#include <string>
#include <vector>

void InitBpf(Napi::Env env, Napi::Object exports);  // bpf.cc
void InitEventFd(Napi::Env env, Napi::Object exports);  // eventfd.cc

namespace {

constexpr int kMaxFdsPerMessage = 16;
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerWakeup = 32;

Napi::Object CredObject(Napi::Env env, const struct ucred& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, c.pid));
  o.Set("uid", Napi::Number::New(env, c.uid));
  o.Set("gid", Napi::Number::New(env, c.gid));
  return o;
}

bool ReadCred(const Napi::Value& v, struct ucred* out) {
  if (!v.IsObject()) return false;
  Napi::Object o = v.As<Napi::Object>();
  out->pid = o.Get("pid").As<Napi::Number>().Int32Value();
  out->uid = o.Get("uid").As<Napi::Number>().Uint32Value();
  out->gid = o.Get("gid").As<Napi::Number>().Uint32Value();
  return true;
}

std::vector<int> ReadFds(const Napi::Value& v) {
  std::vector<int> fds;
  if (!v.IsArray()) return fds;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) fds.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  return fds;
}

// A unix socket address as the bytes of sun_path (an abstract name keeps its leading
// NUL), or undefined for an unnamed socket.
Napi::Value AddressValue(Napi::Env env, const struct sockaddr_un& addr, socklen_t len) {
  size_t base = offsetof(struct sockaddr_un, sun_path);
  if (len <= base || len > sizeof addr) return env.Undefined();
  return Napi::Buffer<char>::Copy(env, addr.sun_path, len - base);
}

// One sendmsg with optional SCM_RIGHTS and SCM_CREDENTIALS. Returns bytes sent or -errno.
ssize_t SendWithControl(int fd, const char* data, size_t len, const std::vector<int>& fds,
                        const struct ucred* cred) {
  struct iovec iov;
  iov.iov_base = const_cast<char*>(data);
  iov.iov_len = len;
  union {
    char buf[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage) + CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  size_t controlLen = 0;
  if (!fds.empty() || cred) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    if (cred) {
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_CREDENTIALS;
      cm->cmsg_len = CMSG_LEN(sizeof(struct ucred));
      memcpy(CMSG_DATA(cm), cred, sizeof(struct ucred));
      controlLen += CMSG_SPACE(sizeof(struct ucred));
      cm = CMSG_NXTHDR(&msg, cm);
    }
    if (!fds.empty()) {
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
      controlLen += CMSG_SPACE(sizeof(int) * fds.size());
    }
    msg.msg_controllen = controlLen;
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n < 0 ? -errno : n;
  }
}

// ---------------------------------------------------------------------------
// Socket: a connected unix socket (stream or datagram) read and written by the
// addon itself, so that SCM_RIGHTS and SCM_CREDENTIALS survive. Reads are
// delivered as onRead(data, fds|undefined, cred|undefined); end of stream or a
// read error as onClose(errnoOrZero). An explicit close() calls neither. The
// optional onDrain() is called when a write queue that had to wait empties, so
// that JS can bound what a peer that does not read makes it buffer.
class Socket : public Napi::ObjectWrap<Socket> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Socket",
                       {InstanceMethod("write", &Socket::Write),
                        InstanceMethod("close", &Socket::Close),
                        InstanceMethod("setReading", &Socket::SetReading),
                        InstanceAccessor("fd", &Socket::GetFd, nullptr),
                        InstanceAccessor("pendingWrites", &Socket::GetPending, nullptr),
                        InstanceAccessor("queuedBytes", &Socket::GetQueuedBytes, nullptr)});
  }

  // new Socket(fd, isDatagram, onRead, onClose, onDrain?); takes ownership of fd.
  explicit Socket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Socket>(info) {
    Napi::Env env = info.Env();
    fd_ = info[0].As<Napi::Number>().Int32Value();
    dgram_ = info[1].As<Napi::Boolean>().Value();
    onRead_ = Napi::Persistent(info[2].As<Napi::Function>());
    onClose_ = Napi::Persistent(info[3].As<Napi::Function>());
    if (info.Length() > 4 && info[4].IsFunction()) onDrain_ = Napi::Persistent(info[4].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "cgmanager:socket");
    poll_ = OpenPoll(env, fd_, this);
    if (!poll_) {
      ::close(fd_);
      fd_ = -1;
      closed_ = true;
      return;
    }
    Ref();  // stay alive while the fd is open, even if JS drops us
    UpdatePoll();
  }

  ~Socket() override {
    delete context_;
  }

 private:
  struct Pending {
    std::vector<char> data;
    size_t offset = 0;
    std::vector<int> fds;  // dup'ed copies we own until sent
    bool hasCred = false;
    struct ucred cred;
  };

  int fd_ = -1;
  bool dgram_ = false;
  bool closed_ = false;
  bool reading_ = true;
  bool writeFailed_ = false;
  int events_ = 0;
  uv_poll_t* poll_ = nullptr;
  Napi::AsyncContext* context_ = nullptr;
  Napi::FunctionReference onRead_;
  Napi::FunctionReference onClose_;
  Napi::FunctionReference onDrain_;
  std::deque<Pending> queue_;
  size_t queuedBytes_ = 0;  // bytes of queue_ not yet sent

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value GetPending(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(queue_.size()));
  }
  Napi::Value GetQueuedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(queuedBytes_));
  }

  void UpdatePoll() {
    if (closed_ || !poll_) return;
    int want = (reading_ ? UV_READABLE : 0) | (queue_.empty() ? 0 : UV_WRITABLE);
    if (want == events_) return;
    events_ = want;
    if (want == 0)
      uv_poll_stop(poll_);
    else
      uv_poll_start(poll_, want, &Socket::OnPoll);
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    Socket* self = static_cast<Socket*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object keep = self->Value();  // no collection while we run JS callbacks
    (void)keep;
    if (status < 0) {
      // libuv reports POLLERR as an error and stops the poll. Take the real error off
      // the socket: a datagram socket whose peer left (ECONNREFUSED after a send) can
      // still hold datagrams to read, so it keeps going; a stream socket is done.
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (!self->dgram_) {
        self->Fail(err ? err : -status);
        return;
      }
      self->events_ = 0;
      self->ReadSome();
      self->UpdatePoll();
      return;
    }
    if (events & UV_WRITABLE) {
      bool waited = !self->queue_.empty();
      self->Flush();
      if (waited && self->queue_.empty() && !self->closed_ && !self->onDrain_.IsEmpty()) {
        self->onDrain_.MakeCallback(self->Value(), {}, *self->context_);
        if (env.IsExceptionPending()) return;
      }
    }
    if ((events & UV_READABLE) && !self->closed_) self->ReadSome();
    self->UpdatePoll();
  }

  void ReadSome() {
    Napi::Env env = Env();
    static char buf[kReadChunk];
    for (int i = 0; i < kReadsPerWakeup && !closed_ && reading_; i++) {
      struct iovec iov = {buf, sizeof buf};
      union {
        char b[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage) + CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
      } control;
      struct sockaddr_un from;
      struct msghdr msg;
      memset(&msg, 0, sizeof msg);
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.b;
      msg.msg_controllen = sizeof control.b;
      if (dgram_) {
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
      }
      ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        Fail(errno);
        return;
      }
      std::vector<int> fds;
      bool hasCred = false;
      struct ucred cred;
      for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET) continue;
        if (cm->cmsg_type == SCM_RIGHTS) {
          size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          const int* p = reinterpret_cast<const int*>(CMSG_DATA(cm));
          for (size_t k = 0; k < count; k++) fds.push_back(p[k]);
        } else if (cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
          memcpy(&cred, CMSG_DATA(cm), sizeof cred);
          hasCred = true;
        }
      }
      if (n == 0 && !dgram_) {
        for (int f : fds) ::close(f);
        Fail(0);
        return;
      }
      Napi::Value fdsValue = env.Undefined();
      if (!fds.empty()) {
        Napi::Array a = Napi::Array::New(env, fds.size());
        for (size_t k = 0; k < fds.size(); k++) a.Set(static_cast<uint32_t>(k), Napi::Number::New(env, fds[k]));
        fdsValue = a;
      }
      Napi::Value credValue = hasCred ? Napi::Value(CredObject(env, cred)) : env.Undefined();
      Napi::Value fromValue = dgram_ ? AddressValue(env, from, msg.msg_namelen) : env.Undefined();
      onRead_.MakeCallback(Value(), {Napi::Buffer<char>::Copy(env, buf, n), fdsValue, credValue, fromValue}, *context_);
      if (env.IsExceptionPending()) return;
    }
  }

  // Writes what it can now; returns false when the socket can no longer be written.
  void Flush() {
    while (!queue_.empty() && !closed_) {
      Pending& p = queue_.front();
      ssize_t n = SendWithControl(fd_, p.data.data() + p.offset, p.data.size() - p.offset,
                                  p.offset == 0 ? p.fds : std::vector<int>(),
                                  p.offset == 0 && p.hasCred ? &p.cred : nullptr);
      if (n == -EAGAIN || n == -EWOULDBLOCK) return;
      if (n < 0) {
        DropQueue();
        writeFailed_ = true;
        return;
      }
      for (int f : p.fds) ::close(f);
      p.fds.clear();
      size_t left = p.data.size() - p.offset;
      size_t done = dgram_ ? left : static_cast<size_t>(n);
      p.offset += done;
      queuedBytes_ -= done;
      if (dgram_ || p.offset >= p.data.size()) queue_.pop_front();
    }
  }

  void DropQueue() {
    for (Pending& p : queue_)
      for (int f : p.fds) ::close(f);
    queue_.clear();
    queuedBytes_ = 0;
  }

  // write(buffer, fds?, cred?) -> 0 sent, 1 queued, -errno refused (e.g. -ESRCH for a
  // credential naming a pid that is gone; -EPIPE after the peer left).
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_ || writeFailed_) return Napi::Number::New(env, -EPIPE);
    Napi::Buffer<char> data = info[0].As<Napi::Buffer<char>>();
    std::vector<int> fds = info.Length() > 1 ? ReadFds(info[1]) : std::vector<int>();
    struct ucred cred;
    bool hasCred = info.Length() > 2 && ReadCred(info[2], &cred);
    size_t sent = 0;
    if (queue_.empty()) {
      ssize_t n = SendWithControl(fd_, data.Data(), data.Length(), fds, hasCred ? &cred : nullptr);
      if (n >= 0 && (dgram_ || static_cast<size_t>(n) == data.Length())) return Napi::Number::New(env, 0);
      if (n < 0 && n != -EAGAIN && n != -EWOULDBLOCK) {
        if (!dgram_) writeFailed_ = true;
        return Napi::Number::New(env, static_cast<double>(n));
      }
      if (n > 0) {
        sent = static_cast<size_t>(n);
        fds.clear();
        hasCred = false;
      }
    }
    Pending p;
    p.data.assign(data.Data() + sent, data.Data() + data.Length());
    for (int f : fds) {
      int d = fcntl(f, F_DUPFD_CLOEXEC, 0);
      if (d >= 0) p.fds.push_back(d);
    }
    p.hasCred = hasCred;
    if (hasCred) p.cred = cred;
    queuedBytes_ += p.data.size();
    queue_.push_back(std::move(p));
    UpdatePoll();
    return Napi::Number::New(env, 1);
  }

  Napi::Value SetReading(const Napi::CallbackInfo& info) {
    reading_ = info[0].As<Napi::Boolean>().Value();
    UpdatePoll();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  // End of stream (err == 0) or a socket error: release everything and tell JS once.
  void Fail(int err) {
    if (closed_) return;
    Shutdown();
    Napi::Env env = Env();
    onClose_.MakeCallback(Value(), {Napi::Number::New(env, err)}, *context_);
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    DropQueue();
    if (poll_) {
      ClosePoll(poll_);
      poll_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    Unref();
  }
};

// ---------------------------------------------------------------------------
// Listener: accepts on a listening unix socket fd and hands each new fd
// (non-blocking, close-on-exec) to onConnection(fd). When accept fails for lack
// of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listening socket stays
// readable, so a level-triggered poll would spin at full CPU: instead polling
// pauses for retryMs and then resumes, and onError(errno) tells JS once per
// pause. Connections wait in the kernel's backlog meanwhile and are served as
// soon as fds free up.
class Listener : public Napi::ObjectWrap<Listener> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Listener", {InstanceMethod("close", &Listener::Close)});
  }

  // new Listener(fd, onConnection, onError?, retryMs?)
  explicit Listener(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Listener>(info) {
    Napi::Env env = info.Env();
    fd_ = info[0].As<Napi::Number>().Int32Value();
    onConnection_ = Napi::Persistent(info[1].As<Napi::Function>());
    if (info.Length() > 2 && info[2].IsFunction()) onError_ = Napi::Persistent(info[2].As<Napi::Function>());
    if (info.Length() > 3 && info[3].IsNumber()) retryMs_ = info[3].As<Napi::Number>().Uint32Value();
    context_ = new Napi::AsyncContext(env, "cgmanager:listener");
    poll_ = OpenPoll(env, fd_, this);  // the listening fd stays the caller's, also on failure
    if (!poll_) return;
    timer_ = new uv_timer_t;
    uv_timer_init(poll_->loop, timer_);
    timer_->data = this;
    Ref();
    uv_poll_start(poll_, UV_READABLE, &Listener::OnPoll);
  }

  ~Listener() override { delete context_; }

 private:
  int fd_ = -1;
  uint64_t retryMs_ = 100;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  Napi::AsyncContext* context_ = nullptr;
  Napi::FunctionReference onConnection_;
  Napi::FunctionReference onError_;

  static bool IsResourceShortage(int err) {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    Listener* self = static_cast<Listener*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object keep = self->Value();
    (void)keep;
    for (int i = 0; i < 64 && self->poll_; i++) {
      int fd = accept4(self->fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        if (err == EINTR || err == ECONNABORTED) continue;
        if (IsResourceShortage(err)) self->Pause(err);
        return;  // EAGAIN: the backlog is empty
      }
      self->onConnection_.MakeCallback(self->Value(), {Napi::Number::New(env, fd)}, *self->context_);
      if (env.IsExceptionPending()) return;
    }
  }

  void Pause(int err) {
    uv_poll_stop(poll_);
    uv_timer_start(timer_, &Listener::OnRetry, retryMs_, 0);
    if (!onError_.IsEmpty()) {
      Napi::Env env = Env();
      onError_.MakeCallback(Value(), {Napi::Number::New(env, err)}, *context_);
    }
  }

  static void OnRetry(uv_timer_t* handle) {
    Listener* self = static_cast<Listener*>(handle->data);
    if (self->poll_) uv_poll_start(self->poll_, UV_READABLE, &Listener::OnPoll);
  }

  // close(): stops accepting; the listening fd itself stays open (the caller owns it).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (poll_) {
      ClosePoll(poll_);
      poll_ = nullptr;
      uv_timer_stop(timer_);
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer_ = nullptr;
      Unref();
    }
    return info.Env().Undefined();
  }
};

// ---------------------------------------------------------------------------
// Free functions.

bool FillUnixAddress(const std::string& path, struct sockaddr_un* addr, socklen_t* len) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path) return false;
  memcpy(addr->sun_path, path.data(), path.size());
  if (path[0] == '@') addr->sun_path[0] = '\0';  // abstract namespace, as NOTIFY_SOCKET may use
  *len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
  return true;
}

// listenUnix(path, backlog) -> fd
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  struct sockaddr_un addr;
  socklen_t len;
  if (!FillUnixAddress(path, &addr, &len)) return ThrowErrno(env, ENAMETOOLONG, "bind");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, errno, "socket");
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), len) < 0) {
    int err = errno;
    ::close(fd);
    return ThrowErrno(env, err, "bind");
  }
  if (listen(fd, backlog) < 0) {
    int err = errno;
    ::close(fd);
    return ThrowErrno(env, err, "listen");
  }
  return Napi::Number::New(env, fd);
}

// connectUnix(path, nonBlocking) -> fd (stream, non-blocking after connect). A blocking
// connect makes the caller wait while the accept backlog is full; a non-blocking one
// fails with EAGAIN then (unix sockets never answer EINPROGRESS), and the caller retries
// on its own timer without blocking the event loop.
Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool nonBlocking = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  struct sockaddr_un addr;
  socklen_t len;
  if (!FillUnixAddress(path, &addr, &len)) return ThrowErrno(env, ENAMETOOLONG, "connect");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return ThrowErrno(env, errno, "socket");
  int rc;
  do rc = connect(fd, reinterpret_cast<struct sockaddr*>(&addr), len);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    ::close(fd);
    return ThrowErrno(env, err, "connect");
  }
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return Napi::Number::New(env, fd);
}

// peerCred(fd) -> {pid, uid, gid} as the kernel saw the peer at connect time.
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return ThrowErrno(env, errno, "getsockopt");
  return CredObject(env, cred);
}

// setPassCred(fd, on)
Napi::Value SetPassCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int on = info[1].As<Napi::Boolean>().Value() ? 1 : 0;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) return ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// socketKind(fd) -> {domain, type}; throws ENOTSOCK for anything that is not a socket.
Napi::Value SocketKind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int domain = 0, type = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) return ThrowErrno(env, errno, "getsockopt");
  len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return ThrowErrno(env, errno, "getsockopt");
  Napi::Object o = Napi::Object::New(env);
  o.Set("domain", Napi::String::New(env, domain == AF_UNIX ? "unix" : "other"));
  o.Set("type", Napi::String::New(env, type == SOCK_DGRAM ? "dgram" : type == SOCK_STREAM ? "stream" : type == SOCK_SEQPACKET ? "seqpacket" : "other"));
  return o;
}

// socketAddresses(fd, bindIfUnnamed) -> {local, peer}: getsockname and getpeername as
// address bytes (undefined when unnamed or not connected). With bindIfUnnamed an
// unnamed socket is first autobound to a fresh abstract name, so that everything it
// sends carries a sender address.
Napi::Value SocketAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool bindIfUnnamed = info[1].As<Napi::Boolean>().Value();
  struct sockaddr_un addr;
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) < 0) return ThrowErrno(env, errno, "getsockname");
  if (bindIfUnnamed && len <= offsetof(struct sockaddr_un, sun_path)) {
    sa_family_t family = AF_UNIX;
    // EINVAL: bound meanwhile by whoever else holds the socket; the name is read below.
    if (bind(fd, reinterpret_cast<struct sockaddr*>(&family), sizeof family) < 0 && errno != EINVAL)
      return ThrowErrno(env, errno, "bind");
    len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) < 0) return ThrowErrno(env, errno, "getsockname");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("local", AddressValue(env, addr, len));
  len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) == 0)
    o.Set("peer", AddressValue(env, addr, len));
  else
    o.Set("peer", env.Undefined());
  return o;
}

// drainDatagrams(fd, max) -> how many queued datagrams were discarded. Control data is
// not accepted, so fds passed along with them are released by the kernel.
Napi::Value DrainDatagrams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int max = info[1].As<Napi::Number>().Int32Value();
  int count = 0;
  char byte;
  while (count < max) {
    struct iovec iov = {&byte, 1};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return ThrowErrno(env, errno, "recvmsg");
    }
    count++;
  }
  return Napi::Number::New(env, count);
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

// pidfdOpen(pid) -> fd, or -1 where the kernel has no pidfds (before 5.3). A pidfd stays
// bound to the process it was opened for, even after that pid is reused.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = info[0].As<Napi::Number>().Int32Value();
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    if (errno == ENOSYS) return Napi::Number::New(env, -1);
    return ThrowErrno(env, errno, "pidfd_open");
  }
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// pidfdExited(fd) -> whether the process has exited (a pidfd polls readable then).
Napi::Value PidfdExited(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct pollfd p = {info[0].As<Napi::Number>().Int32Value(), POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, 0);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return ThrowErrno(env, errno, "poll");
  return Napi::Boolean::New(env, rc > 0 && (p.revents & (POLLIN | POLLHUP)) != 0);
}

// socketPair(datagram) -> [fd, fd], close-on-exec, blocking (I/O uses MSG_DONTWAIT).
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool dgram = info[0].As<Napi::Boolean>().Value();
  int sv[2];
  if (socketpair(AF_UNIX, (dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0, sv) < 0)
    return ThrowErrno(env, errno, "socketpair");
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, sv[0]));
  a.Set(1u, Napi::Number::New(env, sv[1]));
  return a;
}

// closeFd(fd)
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  ::close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// notifyDatagram(socketPath, text): one datagram to an sd_notify socket (path or @abstract).
Napi::Value NotifyDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string text = info[1].As<Napi::String>().Utf8Value();
  struct sockaddr_un addr;
  socklen_t len;
  if (!FillUnixAddress(path, &addr, &len)) return ThrowErrno(env, ENAMETOOLONG, "sendto");
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, errno, "socket");
  ssize_t n = sendto(fd, text.data(), text.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr), len);
  int err = errno;
  ::close(fd);
  if (n < 0) return ThrowErrno(env, err, "sendto");
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Socket", Socket::Init(env));
  exports.Set("Listener", Listener::Init(env));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix));
  exports.Set("connectUnix", Napi::Function::New(env, ConnectUnix));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
  exports.Set("setPassCred", Napi::Function::New(env, SetPassCred));
  exports.Set("socketKind", Napi::Function::New(env, SocketKind));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair));
  exports.Set("socketAddresses", Napi::Function::New(env, SocketAddresses));
  exports.Set("drainDatagrams", Napi::Function::New(env, DrainDatagrams));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen));
  exports.Set("pidfdExited", Napi::Function::New(env, PidfdExited));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("notifyDatagram", Napi::Function::New(env, NotifyDatagram));
  InitBpf(env, exports);  // bpf.cc: cgroup device programs
  InitEventFd(env, exports);  // eventfd.cc: v1 event notifications
  return exports;
}

}  // namespace

NODE_API_MODULE(cgm_native, Init)
