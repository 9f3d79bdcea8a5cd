/**
 * What crossed one node's bridge to the API server: bytes each way (TLS records, so upstream's
 * protobuf over HTTP/2 and kproxy's JSON over HTTP/2 are counted alike, compression included)
 * and TCP connections.
 *
 * @module
 */
import type { BridgeMeter } from "../../tests/fixtures/apiserver.ts";

/** Counters at one moment. */
export interface TrafficCount {
  /** Bytes the API server sent to the node. */
  readonly down: number;
  /** Bytes the node sent to the API server. */
  readonly up: number;
  /** Connections opened so far. */
  readonly connections: number;
  /** Connections open now. */
  readonly open: number;
}

/** `b - a` (open: `b`'s). */
export function trafficDelta(a: TrafficCount, b: TrafficCount): TrafficCount {
  return {
    down: b.down - a.down,
    up: b.up - a.up,
    connections: b.connections - a.connections,
    open: b.open,
  };
}

/** A {@link BridgeMeter} that keeps counts. */
export class TrafficMeter implements BridgeMeter {
  #down = 0;
  #up = 0;
  #connections = 0;
  #open = 0;

  /** A connection opened. */
  opened(): void {
    this.#connections++;
    this.#open++;
  }

  /** A connection closed. */
  closed(): void {
    this.#open--;
  }

  /** Bytes passed. */
  bytes(direction: "down" | "up", bytes: number): void {
    if (direction === "down") this.#down += bytes;
    else this.#up += bytes;
  }

  /** The counts now. */
  count(): TrafficCount {
    return { down: this.#down, up: this.#up, connections: this.#connections, open: this.#open };
  }
}
