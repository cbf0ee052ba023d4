// Watching an fd with a libuv poll handle, as the addon's Socket, Listener and EventFd do:
// one way to open the handle and one to close it. Shared by native.cc and eventfd.cc.
#pragma once

#include <napi.h>
#include <uv.h>

#include "errno-error.h"

// A poll handle for `fd` on env's loop whose data is `owner`; nullptr, with a JS error
// thrown, when libuv refuses it (the fd stays the caller's to close or keep).
inline uv_poll_t* OpenPoll(Napi::Env env, int fd, void* owner) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_t* poll = new uv_poll_t;
  int rc = uv_poll_init(loop, poll, fd);
  if (rc != 0) {
    delete poll;
    ThrowErrno(env, -rc, "uv_poll_init");
    return nullptr;
  }
  poll->data = owner;
  return poll;
}

// Stops a poll handle and closes it; libuv frees it once the loop has let go of it.
inline void ClosePoll(uv_poll_t* poll) {
  uv_poll_stop(poll);
  uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
}
