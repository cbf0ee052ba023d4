// bpf(2) for cgroup device programs: load given instructions (license "GPL"), attach to and
// detach from a cgroup directory fd, query what is attached, look a program up by id, and
// its id from an fd. Syscalls only; the instructions come compiled and checked from
// daemon/cgroupfs/device-acl, and addon/index.ts validates every argument.
#include <napi.h>
#include <uv.h>

#include "errno-error.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

constexpr size_t kVerifierLogBytes = 256 * 1024;

long Bpf(int cmd, union bpf_attr* attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}


// bpfLoadDeviceProgram(insns: Buffer, name: string) -> fd. On failure the load is retried
// with a verifier log (as libbpf does: no log cost when it succeeds), attached as `log`.
Napi::Value LoadDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> insns = info[0].As<Napi::Buffer<uint8_t>>();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  static const char kLicense[] = "GPL";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uintptr_t>(insns.Data());
  attr.insn_cnt = static_cast<uint32_t>(insns.Length() / sizeof(struct bpf_insn));
  attr.license = reinterpret_cast<uintptr_t>(kLicense);
  strncpy(attr.prog_name, name.c_str(), sizeof attr.prog_name - 1);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return Napi::Number::New(env, fd);
  int err = errno;
  std::vector<char> log(kVerifierLogBytes, '\0');
  attr.log_level = 1;
  attr.log_buf = reinterpret_cast<uintptr_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return Napi::Number::New(env, fd);  // passed the second time: keep it
  Napi::Error e = ErrnoError(env, err, "bpf(BPF_PROG_LOAD)");
  e.Set("log", Napi::String::New(env, log.data(), strnlen(log.data(), log.size())));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// bpfAttachDeviceProgram(cgroupFd, progFd, replaceFd): BPF_F_ALLOW_MULTI, and with
// replaceFd >= 0 BPF_F_REPLACE, which swaps the program in place in one step.
Napi::Value AttachDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = info[0].As<Napi::Number>().Uint32Value();
  attr.attach_bpf_fd = info[1].As<Napi::Number>().Uint32Value();
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  int replace = info[2].As<Napi::Number>().Int32Value();
  if (replace >= 0) {
    attr.attach_flags |= BPF_F_REPLACE;
    attr.replace_bpf_fd = static_cast<uint32_t>(replace);
  }
  if (Bpf(BPF_PROG_ATTACH, &attr) < 0) return ThrowErrno(env, errno, "bpf(BPF_PROG_ATTACH)");
  return env.Undefined();
}

// bpfDetachDeviceProgram(cgroupFd, progFd)
Napi::Value DetachDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = info[0].As<Napi::Number>().Uint32Value();
  attr.attach_bpf_fd = info[1].As<Napi::Number>().Uint32Value();
  attr.attach_type = BPF_CGROUP_DEVICE;
  if (Bpf(BPF_PROG_DETACH, &attr) < 0) return ThrowErrno(env, errno, "bpf(BPF_PROG_DETACH)");
  return env.Undefined();
}

// bpfQueryDevicePrograms(cgroupFd) -> ids of the device programs attached to this cgroup itself.
Napi::Value QueryDevicePrograms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint32_t> ids(64);
  union bpf_attr attr;
  for (;;) {
    memset(&attr, 0, sizeof attr);
    attr.query.target_fd = info[0].As<Napi::Number>().Uint32Value();
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = reinterpret_cast<uintptr_t>(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    if (Bpf(BPF_PROG_QUERY, &attr) == 0) break;
    // ENOSPC: more than we had room for; prog_cnt says how many.
    if (errno != ENOSPC || attr.query.prog_cnt <= ids.size()) return ThrowErrno(env, errno, "bpf(BPF_PROG_QUERY)");
    ids.resize(attr.query.prog_cnt);
  }
  Napi::Array out = Napi::Array::New(env, attr.query.prog_cnt);
  for (uint32_t i = 0; i < attr.query.prog_cnt && i < ids.size(); i++) out.Set(i, Napi::Number::New(env, ids[i]));
  return out;
}

// bpfProgramFdById(id) -> fd
Napi::Value ProgramFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = info[0].As<Napi::Number>().Uint32Value();
  int fd = static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &attr));
  if (fd < 0) return ThrowErrno(env, errno, "bpf(BPF_PROG_GET_FD_BY_ID)");
  return Napi::Number::New(env, fd);
}

// bpfProgramId(fd) -> the program's id (BPF_OBJ_GET_INFO_BY_FD)
Napi::Value ProgramId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_prog_info prog;
  memset(&prog, 0, sizeof prog);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.info.bpf_fd = info[0].As<Napi::Number>().Uint32Value();
  attr.info.info_len = sizeof prog;
  attr.info.info = reinterpret_cast<uintptr_t>(&prog);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) return ThrowErrno(env, errno, "bpf(BPF_OBJ_GET_INFO_BY_FD)");
  return Napi::Number::New(env, prog.id);
}

}  // namespace

// The one hook native.cc calls from its Init.
void InitBpf(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfLoadDeviceProgram", Napi::Function::New(env, LoadDeviceProgram));
  exports.Set("bpfAttachDeviceProgram", Napi::Function::New(env, AttachDeviceProgram));
  exports.Set("bpfDetachDeviceProgram", Napi::Function::New(env, DetachDeviceProgram));
  exports.Set("bpfQueryDevicePrograms", Napi::Function::New(env, QueryDevicePrograms));
  exports.Set("bpfProgramFdById", Napi::Function::New(env, ProgramFdById));
  exports.Set("bpfProgramId", Napi::Function::New(env, ProgramId));
}
