// Errors from the addon look like Node's own: message "CODE: strerror, syscall", plus the
// properties code, errno (negative, as libuv's) and syscall. Shared by native.cc and bpf.cc.
#pragma once

#include <napi.h>
#include <uv.h>

#include <string.h>

#include <string>

inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  std::string code = uv_err_name(-err);
  Napi::Error e = Napi::Error::New(env, code + ": " + strerror(err) + ", " + syscall);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

inline Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
  return env.Undefined();
}
