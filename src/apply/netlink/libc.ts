/**
 * The few libc calls kproxy makes through Deno FFI to speak netlink: socket, send, recv,
 * setsockopt, close, and open + setns to open a socket inside a named network namespace.
 * The compiled binary may load only {@link LIBC_PATHS} (deploy/kproxy_permissions.ts).
 *
 * @module
 */

/**
 * Where glibc lives on Debian/Ubuntu (x86_64, arm64), RHEL-likes and Arch; the first that opens
 * is used.
 */
export const LIBC_PATHS: readonly string[] = Object.freeze([
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/usr/lib/libc.so.6",
]);

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  sendAsync: {
    name: "send",
    parameters: ["i32", "buffer", "usize", "i32"],
    result: "isize",
    nonblocking: true,
  },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The libc functions kproxy uses. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | null | undefined;

/** libc, or null when no allowed path opens (no FFI permission, not glibc). Opened once. */
export function openLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  for (const path of LIBC_PATHS) {
    try {
      if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") continue;
      libc = Deno.dlopen(path, SYMBOLS).symbols;
      break;
    } catch { /* not there, or not glibc: try the next */ }
  }
  return libc;
}

/** `errno` of the calling thread, right after a failed synchronous call. */
export function errno(c: Libc): number {
  const p = c.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;

function cString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text + "\0");
  return bytes;
}

/**
 * A netlink socket of `protocol`, created inside the named network namespace `netns`
 * (`/var/run/netns/NAME`) when given: the calling thread enters it for the `socket` call only
 * and returns at once (a socket stays in the namespace it was made in). Throws with the errno.
 */
export function netlinkSocket(c: Libc, protocol: number, netns?: string, flags = 0): number {
  if (netns === undefined) {
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | flags, protocol);
    if (fd < 0) throw new Error(`Cannot open a netlink socket: errno ${errno(c)}`);
    return fd;
  }
  const own = c.open(cString("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC);
  if (own < 0) throw new Error(`Cannot open this thread's network namespace: errno ${errno(c)}`);
  try {
    const target = c.open(cString(`/var/run/netns/${netns}`), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      throw new Error(`Cannot open network namespace ${netns}: errno ${errno(c)}`);
    }
    try {
      if (c.setns(target, CLONE_NEWNET) !== 0) {
        throw new Error(`Cannot enter network namespace ${netns}: errno ${errno(c)}`);
      }
      const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | flags, protocol);
      const socketErrno = fd < 0 ? errno(c) : 0;
      if (c.setns(own, CLONE_NEWNET) !== 0) {
        // Staying in the test namespace would send everything after this to the wrong place.
        if (fd >= 0) c.close(fd);
        throw new Error(`Cannot return from network namespace ${netns}: errno ${errno(c)}`);
      }
      if (fd < 0) {
        throw new Error(`Cannot open a netlink socket in ${netns}: errno ${socketErrno}`);
      }
      return fd;
    } finally {
      c.close(target);
    }
  } finally {
    c.close(own);
  }
}
