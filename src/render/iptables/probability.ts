/**
 * The `--probability` text kube-proxy writes for `-m statistic`: 1/n with ten decimals, rounded
 * the way Go's `%0.10f` rounds the float64 value (exactly, ties to even).
 */

const cache: string[] = [];

/** The probability text for picking one of `n` remaining endpoints (n ≥ 1). */
export function probability(n: number): string {
  const hit = cache[n];
  if (hit !== undefined) return hit;
  const text = formatFixed10(1 / n);
  if (n < 4096) cache[n] = text;
  return text;
}

/** `x` (0 < x ≤ 1) with exactly ten decimals, correctly rounded from its exact binary value. */
export function formatFixed10(x: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & 0xfffffffffffffn;
  let e2: number;
  if (exponent === 0) e2 = -1074;
  else {
    mantissa |= 1n << 52n;
    e2 = exponent - 1075;
  }
  // x = mantissa × 2^e2; scaled = x × 10^10 = num / den.
  let num = mantissa * 10n ** 10n;
  let den = 1n;
  if (e2 >= 0) num <<= BigInt(e2);
  else den <<= BigInt(-e2);
  let q = num / den;
  const twiceRem = (num % den) * 2n;
  if (twiceRem > den || (twiceRem === den && q % 2n === 1n)) q += 1n;
  const digits = q.toString().padStart(11, "0");
  return `${digits.slice(0, -10)}.${digits.slice(-10)}`;
}
