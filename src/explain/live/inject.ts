/**
 * Puts one packet where the kernel would see it (libc through Deno FFI, like the nf_tables
 * generation check):
 *
 * - a packet from one of the node's own addresses is sent on a raw socket (`IPPROTO_RAW`, the
 *   header written by us): it takes the output path, as a packet of a process on the node would;
 * - a packet from anywhere else arrives on a TUN device made for the moment (`kpx` + 6 random
 *   characters), so it takes the prerouting path as a packet from a pod or a client would; the
 *   device goes away when its file descriptor is closed.
 *
 * With `netns`, the sockets and the device are made inside that named network namespace (the
 * calling thread enters it for those few system calls, then returns).
 *
 * @module
 */
import { LIBC_PATHS } from "../../apply/nft_generation.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_RAW = 255;
const O_RDWR = 2;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const CLONE_NEWNET = 0x40000000;
const IFREQ_BYTES = 40;
const SOCK_DGRAM = 2;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
const EPERM = 1;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | null = null;

function open(): Libc {
  if (libc !== null) return libc;
  for (const path of LIBC_PATHS) {
    try {
      libc = Deno.dlopen(path, SYMBOLS).symbols;
      return libc;
    } catch {
      // try the next
    }
  }
  throw new Error(`Cannot load libc for --live (tried ${LIBC_PATHS.join(", ")})`);
}

function errno(c: Libc): number {
  const p = c.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function cString(text: string): Uint8Array {
  return new TextEncoder().encode(text + "\0");
}

/** Runs `fn` (synchronous system calls only) with the calling thread in network namespace `netns`. */
function inNetns<T>(c: Libc, netns: string | undefined, fn: () => T): T {
  if (netns === undefined) return fn();
  const self = c.open(cString("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC);
  if (self < 0) throw new Error(`Cannot open this thread's network namespace (errno ${errno(c)})`);
  const target = c.open(cString(`/var/run/netns/${netns}`), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    c.close(self);
    throw new Error(`Cannot open network namespace ${netns} (errno ${errno(c)})`);
  }
  try {
    if (c.setns(target, CLONE_NEWNET) !== 0) {
      throw new Error(`Cannot enter network namespace ${netns} (errno ${errno(c)})`);
    }
    let out: { value: T } | { error: unknown };
    try {
      out = { value: fn() };
    } catch (error) {
      out = { error };
    }
    if (c.setns(self, CLONE_NEWNET) !== 0) {
      // Nothing sane can go on in the wrong namespace.
      throw new Error(`Cannot return from network namespace ${netns} (errno ${errno(c)})`);
    }
    if ("error" in out) throw out.error;
    return out.value;
  } finally {
    c.close(target);
    c.close(self);
  }
}

function sockaddr(family: 4 | 6, destination: Uint8Array): Uint8Array {
  if (family === 4) {
    const sa = new Uint8Array(16);
    new DataView(sa.buffer).setUint16(0, AF_INET, true);
    sa.set(destination, 4);
    return sa;
  }
  const sa = new Uint8Array(28);
  new DataView(sa.buffer).setUint16(0, AF_INET6, true);
  sa.set(destination, 8);
  return sa;
}

/**
 * Sends `packet` (a whole IP packet) from this node on a raw socket: the output path. The
 * source address in it must be one of the node's.
 */
export function sendFromNode(packet: Uint8Array, options: { readonly netns?: string } = {}) {
  const c = open();
  const family = (packet[0] as number) >> 4 === 6 ? 6 : 4;
  const destination = family === 4 ? packet.slice(16, 20) : packet.slice(24, 40);
  const fd = inNetns(
    c,
    options.netns,
    () => c.socket(family === 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW),
  );
  if (fd < 0) throw new Error(`Cannot open a raw socket (errno ${errno(c)}; --live needs root)`);
  try {
    const sa = sockaddr(family, destination);
    const sent = Number(c.sendto(fd, packet, BigInt(packet.length), 0, sa, sa.length));
    // EPERM: a rule dropped or rejected it on the output path — the trace says which.
    if (sent !== packet.length && errno(c) !== EPERM) {
      throw new Error(`Cannot send the probe packet on a raw socket (errno ${errno(c)})`);
    }
  } finally {
    c.close(fd);
  }
}

/** A TUN device that lives until {@link TunDevice.close}. */
export interface TunDevice {
  /** Its interface name. */
  readonly name: string;
  /** Hands `packet` (a whole IP packet) to the kernel as if it arrived on the device. */
  write(packet: Uint8Array): void;
  /** Closes the device (the kernel removes it). */
  close(): void;
}

/** Sets IFF_UP on interface `name` (SIOCGIFFLAGS, SIOCSIFFLAGS). */
function bringUp(c: Libc, name: string): void {
  const s = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw new Error(`Cannot open a socket to bring ${name} up (errno ${errno(c)})`);
  try {
    const ifr = new Uint8Array(IFREQ_BYTES);
    ifr.set(new TextEncoder().encode(name));
    if (c.ioctl(s, BigInt(SIOCGIFFLAGS), ifr) !== 0) {
      throw new Error(`Cannot read the flags of ${name} (errno ${errno(c)})`);
    }
    const view = new DataView(ifr.buffer);
    view.setUint16(16, view.getUint16(16, true) | IFF_UP, true);
    if (c.ioctl(s, BigInt(SIOCSIFFLAGS), ifr) !== 0) {
      throw new Error(`Cannot bring ${name} up (errno ${errno(c)})`);
    }
  } finally {
    c.close(s);
  }
}

/** Reads a file from the calling thread inside `netns` (`/proc/thread-self/net/…`, sysctls). */
export function readInNetns(
  path: string,
  options: { readonly netns?: string } = {},
): string | null {
  const c = open();
  return inNetns(c, options.netns, () => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return null;
    }
  });
}

/**
 * Makes a TUN device in `netns` (or here), brings it up, and takes packets from it. Its name is
 * `name` (at most 15 bytes; the packet's input interface) or `kpx` + 6 random characters.
 */
export function openTun(
  options: { readonly netns?: string; readonly name?: string } = {},
): TunDevice {
  const c = open();
  const name = options.name ?? `kpx${Math.random().toString(36).slice(2, 8).padEnd(6, "0")}`;
  const fd = inNetns(c, options.netns, () => {
    const f = c.open(cString("/dev/net/tun"), O_RDWR | O_CLOEXEC);
    if (f < 0) throw new Error(`Cannot open /dev/net/tun (errno ${errno(c)}; --live needs root)`);
    try {
      const ifr = new Uint8Array(IFREQ_BYTES);
      ifr.set(new TextEncoder().encode(name));
      new DataView(ifr.buffer).setUint16(16, IFF_TUN | IFF_NO_PI, true);
      if (c.ioctl(f, BigInt(TUNSETIFF), ifr) !== 0) {
        throw new Error(`Cannot create TUN device ${name} (errno ${errno(c)})`);
      }
      // A probe from a pod address arrives on a device its route does not point to (the
      // effective rp_filter is the larger of this and conf/all).
      const sysctl = c.open(
        cString(`/proc/sys/net/ipv4/conf/${name}/rp_filter`),
        O_WRONLY | O_CLOEXEC,
      );
      if (sysctl >= 0) {
        c.write(sysctl, new TextEncoder().encode("0\n"), 2n);
        c.close(sysctl);
      }
      bringUp(c, name);
      return f;
    } catch (e) {
      c.close(f);
      throw e;
    }
  });
  let closed = false;
  return {
    name,
    write(packet) {
      const n = Number(c.write(fd, packet, BigInt(packet.length)));
      if (n !== packet.length) {
        throw new Error(`Cannot write the probe packet to ${name} (errno ${errno(c)})`);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      c.close(fd);
    },
  };
}
