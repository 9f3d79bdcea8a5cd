/**
 * The client-side rate limit to the API server (`--kube-api-qps`, `--kube-api-burst`): a token
 * bucket like client-go's, whose pure core says how long a request must wait.
 */

/** A token bucket's state: tokens left (negative when requests are waiting) at a time (ms). */
export interface TokenBucketState {
  /** Tokens available; below zero, that many requests already hold a reservation. */
  readonly tokens: number;
  /** When `tokens` was computed, ms. */
  readonly at: number;
}

/** Rate and bucket size; `qps <= 0` means no limit. */
export interface TokenBucketLimits {
  /** Tokens added per second. */
  readonly qps: number;
  /** Bucket size (the largest burst of requests sent at once); at least 1. */
  readonly burst: number;
}

/** A full bucket at time `now`. */
export function fullBucket(limits: TokenBucketLimits, now: number): TokenBucketState {
  return { tokens: Math.max(1, limits.burst), at: now };
}

/** Takes one token at `now`: the next state and how many ms the caller must wait first. */
export function reserveToken(
  state: TokenBucketState,
  limits: TokenBucketLimits,
  now: number,
): { readonly state: TokenBucketState; readonly waitMs: number } {
  if (limits.qps <= 0) return { state, waitMs: 0 };
  const burst = Math.max(1, limits.burst);
  const elapsed = Math.max(0, now - state.at);
  const refilled = Math.min(burst, state.tokens + (elapsed * limits.qps) / 1000);
  const tokens = refilled - 1;
  const waitMs = tokens >= 0 ? 0 : Math.ceil((-tokens * 1000) / limits.qps);
  return { state: { tokens, at: Math.max(now, state.at) }, waitMs };
}

/** A shared token bucket; every list page and watch start waits for a token. */
export class RateLimiter {
  #state: TokenBucketState;
  readonly #limits: TokenBucketLimits;

  /** Makes a full bucket. */
  constructor(limits: TokenBucketLimits) {
    this.#limits = limits;
    this.#state = fullBucket(limits, Date.now());
  }

  /** Resolves when the request may be sent (at once when tokens are left); rejects on abort. */
  wait(signal?: AbortSignal): Promise<void> {
    const { state, waitMs } = reserveToken(this.#state, this.#limits, Date.now());
    this.#state = state;
    if (waitMs === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        // Give the token back: the request will not be sent.
        this.#state = { ...this.#state, tokens: this.#state.tokens + 1 };
        reject(signal?.reason ?? new Error("aborted"));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, waitMs);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
