/** Exponential backoff with jitter for restarting lists and watches (pure). */

/** Backoff bounds. */
export interface BackoffPolicy {
  /** Delay after the first failure, ms. */
  readonly initialMs: number;
  /** Largest delay, ms. */
  readonly maxMs: number;
  /** Up to this fraction of the delay is added at random (0..1). */
  readonly jitter: number;
}

/** client-go's reflector-like default: 250 ms doubling up to 30 s, 20 % jitter. */
export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  initialMs: 250,
  maxMs: 30_000,
  jitter: 0.2,
});

/** The delay before retry number `failures` (1 = first retry); `random` is in [0, 1). */
export function backoffDelayMs(
  failures: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: number = Math.random(),
): number {
  if (failures <= 0) return 0;
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(Math.min(policy.maxMs, base * (1 + policy.jitter * random)));
}
