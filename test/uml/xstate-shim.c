/*
 * xstate-shim: an LD_PRELOAD library that lets Debian's UML kernel (linux.uml 6.1) run on a
 * host whose XSAVE area is larger than UML's fixed FPU buffer (Intel AMX: 11008 bytes on
 * the host, 2696 in UML, which holds everything up to AVX-512).
 *
 * Why: UML saves and restores its processes' FPU state with
 * ptrace(PTRACE_{GET,SET}REGSET, NT_X86_XSTATE). The host kernel truncates a short GET, but
 * refuses a short SET with EFAULT ("a whole standard-format XSAVE buffer is needed"), so
 * UML's first process dies with "ptrace set fp regs failed, errno = 14". Newer UML kernels
 * size the buffer from the host.
 *
 * What: a short SETREGSET of NT_X86_XSTATE is widened to the host's size: UML's bytes,
 * then zeros, with the components that lie beyond UML's bytes (the AMX tiles) marked as in
 * their initial state in the XSAVE header, which is what they are in a guest (UML never
 * saw them, and nothing there asks the host for AMX). Every other call goes straight to
 * libc. Stateless.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

#define MAX_XSTATE (64 * 1024)
/* The XSAVE header's XSTATE_BV (which components the buffer holds) */
#define XSTATE_BV_OFFSET 512

static unsigned char full[MAX_XSTATE];
static size_t host_size; /* the host's NT_X86_XSTATE size, learnt by the first full GET */

static ptrace_fn real_ptrace(void)
{
	static ptrace_fn fn;
	if (!fn)
		fn = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
	return fn;
}

/* Clears in XSTATE_BV every component that does not fit in the first `len` bytes. */
static void mark_beyond_as_init(size_t len)
{
	uint64_t bv;
	memcpy(&bv, full + XSTATE_BV_OFFSET, sizeof bv);
	for (unsigned i = 2; i < 64; i++) {
		unsigned size, offset, ecx, edx;
		if (!(bv & (1ull << i)))
			continue;
		__cpuid_count(0xd, i, size, offset, ecx, edx);
		if (size == 0 || (size_t)offset + size > len)
			bv &= ~(1ull << i);
	}
	memcpy(full + XSTATE_BV_OFFSET, &bv, sizeof bv);
}

static long set_xstate(pid_t pid, struct iovec *uml)
{
	if (!host_size) {
		struct iovec probe = { .iov_base = full, .iov_len = MAX_XSTATE };
		if (real_ptrace()(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &probe) < 0)
			return -1;
		host_size = probe.iov_len;
	}
	if (uml->iov_len >= host_size || uml->iov_len <= XSTATE_BV_OFFSET + 8)
		return real_ptrace()(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, uml);
	memcpy(full, uml->iov_base, uml->iov_len);
	memset(full + uml->iov_len, 0, host_size - uml->iov_len);
	mark_beyond_as_init(uml->iov_len);
	struct iovec iov = { .iov_base = full, .iov_len = host_size };
	return real_ptrace()(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &iov);
}

long ptrace(enum __ptrace_request request, ...)
{
	va_list ap;
	va_start(ap, request);
	pid_t pid = va_arg(ap, pid_t);
	void *addr = va_arg(ap, void *);
	void *data = va_arg(ap, void *);
	va_end(ap);

	if (request == PTRACE_SETREGSET && (uintptr_t)addr == NT_X86_XSTATE && data)
		return set_xstate(pid, data);
	return real_ptrace()(request, pid, addr, data);
}
