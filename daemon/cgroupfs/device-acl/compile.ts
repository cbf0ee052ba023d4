// Compiles a cgroup's device rule list to a BPF_PROG_TYPE_CGROUP_DEVICE program: the raw
// `struct bpf_insn` array the kernel loads. Pure. The program answers exactly what
// isDeviceAllowed (rules.ts) answers, like runc's devicefilter and crun's ebpf.c: one block
// per exception that jumps to the next block on any mismatch, and the default at the end.
// The context is struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } with
// the device type in the low 16 bits of access_type and the access bits in the high 16.
import { ANY, type DeviceException, type DeviceRules } from './rules';

/** Opcodes used (include/uapi/linux/bpf.h, bpf_common.h). 32-bit jumps (JMP32, Linux 5.1)
 * compare majors and minors up to 2^32-2 without sign-extension trouble. */
export const OP = {
  LDX_MEM_W: 0x61, // dst = *(u32 *)(src + off)
  ALU32_MOV_X: 0xbc, // dst = (u32)src
  ALU32_MOV_K: 0xb4, // dst = (u32)imm
  ALU32_AND_K: 0x54, // dst &= imm (32-bit)
  ALU32_RSH_K: 0x74, // dst >>= imm (32-bit)
  JMP32_JEQ_K: 0x16, // if (u32)dst == imm goto +off
  JMP32_JNE_K: 0x56, // if (u32)dst != imm goto +off
  JMP_EXIT: 0x95,
} as const;

/** Registers: r1 holds the context on entry, r0 the verdict on exit. */
const R0 = 0;
const R1 = 1;
const R_TYPE = 2;
const R_ACCESS = 3;
const R_MAJOR = 4;
const R_MINOR = 5;

export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });

/** Loads the context into r2..r5 (type, access, major, minor). */
function prologue(): Insn[] {
  return [
    insn(OP.LDX_MEM_W, R_TYPE, R1, 0, 0),
    insn(OP.ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
    insn(OP.LDX_MEM_W, R_ACCESS, R1, 0, 0),
    insn(OP.ALU32_RSH_K, R_ACCESS, 0, 0, 16),
    insn(OP.LDX_MEM_W, R_MAJOR, R1, 4, 0),
    insn(OP.LDX_MEM_W, R_MINOR, R1, 8, 0),
  ];
}

/** An immediate that reads back as the same u32 when the kernel compares 32 bits. */
function imm32(n: number): number {
  return n | 0;
}

/**
 * One exception: each test jumps to the end of the block (`skip` is filled in later) when
 * the exception does not apply; falling through the tests returns `verdict`. Deny lists match
 * partly (any common access bit denies), allow lists fully (every requested bit covered).
 */
function exceptionBlock(ex: DeviceException, verdict: 0 | 1): Insn[] {
  const SKIP = 0x7fff; // placeholder offset
  const block: Insn[] = [insn(OP.JMP32_JNE_K, R_TYPE, 0, SKIP, ex.type)];
  block.push(insn(OP.ALU32_MOV_X, R0, R_ACCESS, 0, 0));
  if (verdict === 0) {
    block.push(insn(OP.ALU32_AND_K, R0, 0, 0, ex.access), insn(OP.JMP32_JEQ_K, R0, 0, SKIP, 0));
  } else {
    block.push(insn(OP.ALU32_AND_K, R0, 0, 0, ~ex.access & 0xffff), insn(OP.JMP32_JNE_K, R0, 0, SKIP, 0));
  }
  if (ex.major !== ANY) block.push(insn(OP.JMP32_JNE_K, R_MAJOR, 0, SKIP, imm32(ex.major)));
  if (ex.minor !== ANY) block.push(insn(OP.JMP32_JNE_K, R_MINOR, 0, SKIP, imm32(ex.minor)));
  block.push(insn(OP.ALU32_MOV_K, R0, 0, 0, verdict), insn(OP.JMP_EXIT, 0, 0, 0, 0));
  // Every placeholder jumps to the first instruction after the block.
  return block.map((i, at) => (i.off === SKIP ? { ...i, off: block.length - at - 1 } : i));
}

/** The program for `rules`: exceptions in order, then the default (1 allows, 0 denies). */
export function compileDeviceRules(rules: DeviceRules): Insn[] {
  const onMatch = rules.behavior === 'allow' ? 0 : 1;
  const program = prologue();
  for (const ex of rules.exceptions) program.push(...exceptionBlock(ex, onMatch));
  program.push(insn(OP.ALU32_MOV_K, R0, 0, 0, rules.behavior === 'allow' ? 1 : 0), insn(OP.JMP_EXIT, 0, 0, 0, 0));
  return program;
}

/** struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }, little-endian x86/arm. */
export function encodeInsns(program: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((i, n) => {
    buf.writeUInt8(i.code, n * 8);
    buf.writeUInt8((i.src << 4) | i.dst, n * 8 + 1);
    buf.writeInt16LE(i.off, n * 8 + 2);
    buf.writeInt32LE(i.imm, n * 8 + 4);
  });
  return buf;
}

/** The kernel's limit for unprivileged programs is 4096 instructions; root may load 1M. */
export const MAX_INSNS = 1_000_000;
