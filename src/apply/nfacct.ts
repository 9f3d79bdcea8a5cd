/**
 * nfacct counters through netlink (libc FFI, no tool): the I/O shell around netlink/nfacct.ts.
 * kube-proxy's iptables mode counts two kinds of packets in named counters (`-m nfacct`) and
 * reports them as metrics: `ct_state_invalid_dropped_pkts` (the INVALID drop in KUBE-FORWARD)
 * and `localhost_nps_accepted_pkts` (NodePorts reached on 127.0.0.0/8). Counters live in the
 * network namespace of the socket.
 *
 * @module
 */
import { errno, type Libc, netlinkSocket, openLibc } from "./netlink/libc.ts";
import { encodeMessages, type NftMessage, NLMSG_DONE, NLMSG_ERROR } from "./netlink/message.ts";
import { getCounter, newCounter, type NfacctCounter, parseCounter } from "./netlink/nfacct.ts";

export type { NfacctCounter };

const NETLINK_NETFILTER = 12;
const MSG_DONTWAIT = 0x40;
const ENOENT = 2;
const EBUSY = 16;

/** An nfacct request the kernel refused. */
export class NfacctError extends Error {
  /** Makes one. */
  constructor(message: string, readonly errno: number) {
    super(message);
    this.name = "NfacctError";
  }
}

/** Options of {@link NfacctClient.open}. */
export interface NfacctClientOptions {
  /** Open the socket inside this named network namespace (tests). */
  readonly netns?: string;
}

/** A netlink socket that creates and reads nfacct counters. */
export class NfacctClient {
  readonly #libc: Libc;
  readonly #fd: number;
  #seq: number;
  #closed = false;

  private constructor(libc: Libc, fd: number) {
    this.#libc = libc;
    this.#fd = fd;
    this.#seq = (Date.now() & 0x3fffffff) + 1;
  }

  /**
   * Opens a client and checks that the kernel has nfacct (as upstream: a GET of a counter that
   * may not exist must answer, or say ENOENT). Throws saying why it is unavailable.
   */
  static open(options: NfacctClientOptions = {}): NfacctClient {
    const c = openLibc();
    if (c === null) throw new Error("Cannot load libc through FFI (needs --allow-ffi)");
    const client = new NfacctClient(c, netlinkSocket(c, NETLINK_NETFILTER, options.netns));
    try {
      client.get("IMayExist");
    } catch (e) {
      client.close();
      throw new Error(`nfacct is not available: ${e instanceof Error ? e.message : e}`);
    }
    return client;
  }

  /** Sends one request; returns the reply messages before its acknowledgement. */
  #request(message: NftMessage, what: string): Uint8Array[] {
    if (this.#closed) throw new Error("The nfacct socket is closed");
    const c = this.#libc;
    const seq = this.#seq;
    this.#seq = (this.#seq + 1) & 0x7fffffff;
    const bytes = encodeMessages([message], seq);
    if (Number(c.send(this.#fd, bytes, BigInt(bytes.length), 0)) !== bytes.length) {
      throw new NfacctError(`Cannot ${what}: send failed, errno ${errno(c)}`, errno(c));
    }
    // The kernel answers a netlink request inside the send call: everything is queued now.
    const replies: Uint8Array[] = [];
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = Number(c.recv(this.#fd, buffer, BigInt(buffer.length), MSG_DONTWAIT));
      if (n <= 0) throw new NfacctError(`Cannot ${what}: no acknowledgement`, errno(c));
      const view = new DataView(buffer.buffer, 0, n);
      for (let at = 0; at + 16 <= n;) {
        const length = view.getUint32(at, true);
        if (length < 16 || at + length > n) break;
        const type = view.getUint16(at + 4, true);
        const replySeq = view.getUint32(at + 8, true);
        if (replySeq === seq) {
          if (type === NLMSG_ERROR) {
            const error = -view.getInt32(at + 16, true);
            if (error === 0) return replies;
            throw new NfacctError(`Cannot ${what}: errno ${error}`, error);
          }
          if (type !== NLMSG_DONE) replies.push(buffer.slice(at, at + length));
        }
        at += (length + 3) & ~3;
      }
    }
  }

  /** Counter `name`, or null when it does not exist. */
  get(name: string): NfacctCounter | null {
    try {
      for (const reply of this.#request(getCounter(name), `read nfacct counter ${name}`)) {
        const counter = parseCounter(reply);
        if (counter !== null) return counter;
      }
      return null;
    } catch (e) {
      if (e instanceof NfacctError && e.errno === ENOENT) return null;
      throw e;
    }
  }

  /** Creates counter `name` unless it exists (upstream's `Ensure`). */
  ensure(name: string): void {
    if (this.get(name) !== null) return;
    try {
      this.#request(newCounter(name), `create nfacct counter ${name}`);
    } catch (e) {
      // Created meanwhile by someone else: it exists, which is all we want.
      if (!(e instanceof NfacctError && e.errno === EBUSY)) throw e;
    }
  }

  /** Closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.close(this.#fd);
  }
}
