// An eventfd watched by libuv, for the cgroup v1 notifications that arrive through one
// (memory.oom_control registered in cgroup.event_control): the kernel adds to its
// counter, we read and reset it and hand the count to JS. Thin on purpose: which file
// it is registered for, and what a wake means, is decided in TypeScript.
#include <napi.h>
#include <uv.h>

#include "errno-error.h"
#include "uv-poll.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace {

class EventFd : public Napi::ObjectWrap<EventFd> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "EventFd",
                       {InstanceMethod("close", &EventFd::Close), InstanceAccessor("fd", &EventFd::GetFd, nullptr)});
  }

  // new EventFd(onSignal(count)): a non-blocking, close-on-exec eventfd that we own.
  explicit EventFd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventFd>(info) {
    Napi::Env env = info.Env();
    onSignal_ = Napi::Persistent(info[0].As<Napi::Function>());
    fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) {
      ThrowErrno(env, errno, "eventfd");
      return;
    }
    context_ = new Napi::AsyncContext(env, "cgmanager:eventfd");
    poll_ = OpenPoll(env, fd_, this);
    if (!poll_) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    // Like fs.watch({ persistent: false }): a watch alone never keeps the process alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    Ref();
    uv_poll_start(poll_, UV_READABLE, &EventFd::OnPoll);
  }

  ~EventFd() override { delete context_; }

 private:
  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  Napi::AsyncContext* context_ = nullptr;
  Napi::FunctionReference onSignal_;

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    EventFd* self = static_cast<EventFd*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object keep = self->Value();
    (void)keep;
    uint64_t count = 0;
    ssize_t n;
    do n = read(self->fd_, &count, sizeof count);
    while (n < 0 && errno == EINTR);
    if (n != sizeof count) return;  // EAGAIN: another wake took it
    self->onSignal_.MakeCallback(self->Value(), {Napi::Number::New(env, static_cast<double>(count))}, *self->context_);
  }

  // close(): stops watching and closes the eventfd (the kernel drops its registration).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (poll_) {
      ClosePoll(poll_);
      poll_ = nullptr;
      ::close(fd_);
      fd_ = -1;
      Unref();
    }
    return info.Env().Undefined();
  }
};

}  // namespace

void InitEventFd(Napi::Env env, Napi::Object exports) { exports.Set("EventFd", EventFd::Init(env)); }
