/**
 * The I/O shell of the netlink room: one `NETLINK_NETFILTER` socket (in this process's network
 * namespace or a named one) that sends a batch and reads the kernel's answers.
 *
 * The kernel handles a batch inside the `sendmsg` call — every message, then the commit or the
 * abort — and queues its answers before the call returns. So once `send` returns, reading until
 * the socket is empty gives every answer: an error for each failed message, and the
 * acknowledgement the last message asked for. No error means the transaction is committed and
 * live. The send runs off the JavaScript thread (a big table's commit can take a while).
 *
 * @module
 */
import { encodeBatch } from "./batch.ts";
import { errno, type Libc, netlinkSocket, openLibc } from "./libc.ts";
import { type NftMessage, NLMSG_DONE, NLMSG_ERROR } from "./message.ts";
import { parseAttributes } from "./attributes.ts";

const NETLINK_NETFILTER = 12;
const SOL_SOCKET = 1;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  12: "ENOMEM",
  16: "EBUSY",
  17: "EEXIST",
  22: "EINVAL",
  28: "ENOSPC",
  31: "EMLINK",
  34: "ERANGE",
  40: "ELOOP",
  90: "EMSGSIZE",
  95: "EOPNOTSUPP",
  105: "ENOBUFS",
};

/** One message the kernel refused. */
export interface NetlinkMessageError {
  /** Index of the message in the batch (0 = first after BATCH_BEGIN), or -1 if unknown. */
  readonly index: number;
  /** Positive errno. */
  readonly errno: number;
  /** The kernel's extended-ack text, when it gave one. */
  readonly detail: string | null;
}

/** A batch the kernel did not commit. Nothing of it is live. */
export class NetlinkBatchError extends Error {
  /** The refused messages. */
  readonly errors: readonly NetlinkMessageError[];
  /** Makes the error; `describe(i)` names message i (e.g. the nft command it came from). */
  constructor(errors: readonly NetlinkMessageError[], describe: (index: number) => string) {
    const first = errors[0];
    const what = first === undefined
      ? "no acknowledgement"
      : `${ERRNO_NAMES[first.errno] ?? `errno ${first.errno}`}${
        first.detail ? ` (${first.detail})` : ""
      } on ${first.index >= 0 ? describe(first.index) : "an unknown message"}`;
    super(
      `nf_tables netlink batch not committed: ${what}${
        errors.length > 1 ? ` and ${errors.length - 1} more` : ""
      }`,
    );
    this.name = "NetlinkBatchError";
    this.errors = errors;
  }
}

/** Options of {@link NftablesSocket.open}. */
export interface NftablesSocketOptions {
  /** Open the socket inside this named network namespace (tests and benches). */
  readonly netns?: string;
}

/** How to send a batch. */
export interface CommitOptions {
  /**
   * The batch only changes elements of data maps and sets (or verdicts without jumps): the kernel
   * commits it in microseconds, so it is sent without leaving the JavaScript thread.
   */
  readonly quick?: boolean;
}

/** What {@link NftablesSocket.commit} measured. */
export interface CommitTiming {
  /** Bytes sent. */
  readonly bytes: number;
  /** Time inside `sendmsg` (the kernel's processing and commit), ms. */
  readonly kernelMs: number;
}

/** A netfilter netlink socket that commits nf_tables batches. */
export class NftablesSocket {
  readonly #libc: Libc;
  readonly #fd: number;
  #seq: number;
  #sndbuf = 0;
  #closed = false;
  #busy: Promise<unknown> = Promise.resolve();
  readonly #replies = new Uint8Array(256 * 1024);

  private constructor(libc: Libc, fd: number) {
    this.#libc = libc;
    this.#fd = fd;
    this.#seq = (Date.now() & 0x3fffffff) + 1;
  }

  /** True when libc can be loaded (FFI permitted): {@link open} may then work. */
  static available(): boolean {
    return openLibc() !== null;
  }

  /** Opens a socket; throws when FFI is not allowed or the socket cannot be made. */
  static open(options: NftablesSocketOptions = {}): NftablesSocket {
    const c = openLibc();
    if (c === null) throw new Error("Cannot load libc through FFI (needs --allow-ffi)");
    const fd = netlinkSocket(c, NETLINK_NETFILTER, options.netns);
    const one = new Uint8Array(4);
    new DataView(one.buffer).setInt32(0, 1, true);
    // Short acknowledgements, with the kernel's error text when it has one.
    c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
    c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
    const socket = new NftablesSocket(c, fd);
    socket.#setBuffer(SO_RCVBUFFORCE, 4 << 20);
    return socket;
  }

  #setBuffer(option: number, bytes: number): void {
    const value = new Uint8Array(4);
    new DataView(value.buffer).setInt32(0, bytes, true);
    this.#libc.setsockopt(this.#fd, SOL_SOCKET, option, value, 4);
  }

  /**
   * Sends `messages` as one batch and resolves once the kernel committed it; rejects with a
   * {@link NetlinkBatchError} (nothing applied) otherwise. Calls are serialised.
   */
  commit(
    messages: readonly NftMessage[],
    describe: (index: number) => string = (i) => `message ${i}`,
    options: CommitOptions = {},
  ): Promise<CommitTiming> {
    const run = this.#busy.then(() => this.#commit(messages, describe, options.quick === true));
    this.#busy = run.catch(() => {});
    return run;
  }

  async #commit(
    messages: readonly NftMessage[],
    describe: (index: number) => string,
    quick: boolean,
  ): Promise<CommitTiming> {
    if (this.#closed) throw new Error("The nf_tables netlink socket is closed");
    const c = this.#libc;
    const batch = encodeBatch(messages, this.#seq);
    this.#seq = (this.#seq + messages.length + 2) & 0x7fffffff;
    if (batch.bytes.length + 65536 > this.#sndbuf) {
      this.#sndbuf = Math.max(batch.bytes.length * 2, 1 << 20);
      this.#setBuffer(SO_SNDBUFFORCE, this.#sndbuf);
    }
    this.#drain(); // answers nobody read (a previous failure) must not be taken for ours
    const t0 = performance.now();
    // A quick batch (elements only, nothing the kernel validates) is sent from this thread: a
    // hop to another thread would cost more than the kernel's work.
    const sent = quick
      ? Number(c.send(this.#fd, batch.bytes, BigInt(batch.bytes.length), 0))
      : Number(await c.sendAsync(this.#fd, batch.bytes, BigInt(batch.bytes.length), 0));
    const kernelMs = performance.now() - t0;
    if (sent !== batch.bytes.length) {
      throw new Error(
        `Cannot send an nf_tables batch of ${batch.bytes.length} bytes: send returned ${sent}`,
      );
    }
    const errors: NetlinkMessageError[] = [];
    let acknowledged = false;
    for (const reply of this.#drain()) {
      const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
      const type = view.getUint16(4, true);
      if (type === NLMSG_DONE) continue;
      if (type !== NLMSG_ERROR || reply.length < 36) continue;
      const error = -view.getInt32(16, true);
      const seq = view.getUint32(16 + 4 + 8, true);
      const index = seq - batch.firstSeq - 1;
      if (error === 0) {
        if (seq === batch.ackSeq) acknowledged = true;
        continue;
      }
      errors.push({
        index: index >= 0 && index < batch.count ? index : -1,
        errno: error,
        detail: extendedAckText(reply, view),
      });
    }
    if (errors.length > 0 || !acknowledged) throw new NetlinkBatchError(errors, describe);
    return { bytes: batch.bytes.length, kernelMs };
  }

  /** Reads every queued message (without waiting). */
  #drain(): Uint8Array[] {
    const c = this.#libc;
    const out: Uint8Array[] = [];
    const buffer = this.#replies;
    for (;;) {
      const n = Number(c.recv(this.#fd, buffer, BigInt(buffer.length), MSG_DONTWAIT));
      if (n < 0) {
        const e = errno(c);
        if (e === EAGAIN) return out;
        // ENOBUFS: answers were lost; the caller sees no acknowledgement and fails safe.
        return out;
      }
      if (n === 0) return out;
      const view = new DataView(buffer.buffer, 0, n);
      for (let at = 0; at + 16 <= n;) {
        const length = view.getUint32(at, true);
        if (length < 16 || at + length > n) break;
        out.push(buffer.slice(at, at + length));
        at += (length + 3) & ~3;
      }
    }
  }

  /** Closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.close(this.#fd);
  }
}

/** The `NLMSGERR_ATTR_MSG` text of an error reply, if any. */
function extendedAckText(reply: Uint8Array, view: DataView): string | null {
  const flags = view.getUint16(6, true);
  if ((flags & NLM_F_ACK_TLVS) === 0) return null;
  // struct nlmsgerr: error (4) + the offending nlmsghdr (16), plus its payload unless capped.
  let at = 16 + 4 + 16;
  if ((flags & NLM_F_CAPPED) === 0) at = 16 + 4 + view.getUint32(20, true);
  for (const a of parseAttributes(reply.subarray(at))) {
    if (a.type === NLMSGERR_ATTR_MSG) {
      return new TextDecoder().decode(a.payload).replace(/\0+$/, "");
    }
  }
  return null;
}
