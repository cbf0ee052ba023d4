// Unit tests for the rule-list-to-BPF compiler: the encoded instruction bytes, and the
// programs run by a small interpreter of exactly the opcodes the compiler emits, which must
// agree with isDeviceAllowed on every device and access of a grid (wildcards, both defaults).
// The kernel's verifier and real opens are the integration test's part.
import { describe, expect, it } from 'vitest';
import { compileDeviceRules, encodeInsns, OP, type Insn } from '../../../../daemon/cgroupfs/device-acl/compile';
import {
  ACC_MKNOD,
  ACC_READ,
  ACC_WRITE,
  DEV_BLOCK,
  DEV_CHAR,
  isDeviceAllowed,
} from '../../../../daemon/cgroupfs/device-acl/rules';
import { rulesFrom } from '../../../helpers/device-rules';

/** Runs `program` on struct bpf_cgroup_dev_ctx { access_type, major, minor } as the kernel would. */
function run(program: readonly Insn[], ctx: { type: number; access: number; major: number; minor: number }): number {
  const mem = [((ctx.access << 16) | ctx.type) >>> 0, ctx.major >>> 0, ctx.minor >>> 0];
  const reg = new Array<number>(11).fill(0);
  for (let pc = 0, steps = 0; pc < program.length; pc++, steps++) {
    if (steps > 10_000) throw new Error('loop');
    const i = program[pc] as Insn;
    const u32 = (n: number): number => n >>> 0;
    switch (i.code) {
      case OP.LDX_MEM_W: {
        if (i.src !== 1 || i.off % 4 !== 0 || i.off < 0 || i.off > 8) throw new Error(`bad ctx load at ${pc}`);
        reg[i.dst] = mem[i.off / 4] as number;
        break;
      }
      case OP.ALU32_MOV_X: reg[i.dst] = u32(reg[i.src] as number); break;
      case OP.ALU32_MOV_K: reg[i.dst] = u32(i.imm); break;
      case OP.ALU32_AND_K: reg[i.dst] = u32((reg[i.dst] as number) & i.imm); break;
      case OP.ALU32_RSH_K: reg[i.dst] = u32(reg[i.dst] as number) >>> i.imm; break;
      case OP.JMP32_JEQ_K: if (u32(reg[i.dst] as number) === u32(i.imm)) pc += i.off; break;
      case OP.JMP32_JNE_K: if (u32(reg[i.dst] as number) !== u32(i.imm)) pc += i.off; break;
      case OP.JMP_EXIT: return reg[0] as number;
      default: throw new Error(`opcode 0x${i.code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end');
}

const LISTS: Record<string, string[]> = {
  'allow all': [],
  'deny all': ['deny a'],
  libvirt: ['deny a', 'allow c 1:3 rwm', 'allow c 1:5 rwm', 'allow c 1:7 rwm', 'allow c 5:1 rwm', 'allow c 1:8 rwm', 'allow c 1:9 rwm'],
  'deny default, wildcards and partial access': ['deny a', 'allow c 136:* rw', 'allow b *:0 r', 'allow c *:* m', 'allow c 1:3 r'],
  'allow default with denies': ['deny c 1:3 w', 'deny b 8:* rwm', 'deny c *:5 m'],
  'big numbers': ['deny a', 'allow c 4000000000:4294967294 rw', 'allow b 2147483648:* r'],
};

const MAJORS = [0, 1, 5, 8, 136, 2147483648, 4000000000];
const MINORS = [0, 1, 3, 5, 7, 4294967294];
const ACCESSES = [ACC_READ, ACC_WRITE, ACC_MKNOD, ACC_READ | ACC_WRITE, ACC_READ | ACC_WRITE | ACC_MKNOD];

describe('compileDeviceRules', () => {
  it.each(Object.keys(LISTS))('%s: the program answers as the rules do, on the whole grid', (name) => {
    const rules = rulesFrom(LISTS[name] as string[]);
    const program = compileDeviceRules(rules);
    let checked = 0;
    for (const type of [DEV_BLOCK, DEV_CHAR] as const) {
      for (const major of MAJORS) {
        for (const minor of MINORS) {
          for (const access of ACCESSES) {
            const want = isDeviceAllowed(rules, type, major, minor, access) ? 1 : 0;
            expect(run(program, { type, access, major, minor }), `${type} ${major}:${minor} ${access}`).toBe(want);
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(2 * MAJORS.length * MINORS.length * ACCESSES.length);
  });

  it.each<[string, number]>([
    ['allow all', 8], // 6 loads + mov + exit
    ['deny all', 8],
    ['libvirt', 8 + 6 * 8], // per exception: type, mov, and, test, major, minor, mov, exit
  ])('%s compiles to %i instructions', (name, count) => {
    expect(compileDeviceRules(rulesFrom(LISTS[name] as string[]))).toHaveLength(count);
  });

  it('a wildcard costs no comparison', () => {
    const one = compileDeviceRules(rulesFrom(['deny a', 'allow c *:* rwm']));
    expect(one).toHaveLength(8 + 6);
  });

  it('every jump lands inside the program and the last instruction exits', () => {
    for (const lines of Object.values(LISTS)) {
      const program = compileDeviceRules(rulesFrom(lines));
      program.forEach((i, pc) => {
        if (i.code === OP.JMP32_JEQ_K || i.code === OP.JMP32_JNE_K) {
          expect(pc + 1 + i.off).toBeGreaterThan(pc);
          expect(pc + 1 + i.off).toBeLessThan(program.length);
        }
      });
      expect(program.at(-1)?.code).toBe(OP.JMP_EXIT);
    }
  });
});

describe('encodeInsns', () => {
  it('writes struct bpf_insn: code, dst in the low nibble, src in the high one, off, imm (little-endian)', () => {
    const buf = encodeInsns([
      { code: OP.LDX_MEM_W, dst: 2, src: 1, off: 4, imm: 0 },
      { code: OP.JMP32_JNE_K, dst: 4, src: 0, off: -2, imm: -294967296 }, // 4000000000 as a u32: 0xee6b2800
    ]);
    expect(buf.toString('hex')).toBe(['6112040000000000', '5604feff' + '00286bee'].join(''));
  });
});
