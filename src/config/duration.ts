/** Go-style duration text (`1m30s`, `250ms`) to milliseconds and back. */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration such as `30s`, `1m0s` or `250ms`; returns null when it is not one. */
export function parseDuration(text: string): number | null {
  if (typeof text !== "string") return null;
  const s = text.trim();
  if (s === "0") return 0;
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) return null;
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? 0);
    pos = re.lastIndex;
  }
  // Go durations are whole nanoseconds: round away float noise such as 4.35m → 260999.99…ms.
  return pos === 0 ? null : Math.round(total * 1e6) / 1e6;
}

/** Formats milliseconds as a short Go duration (`1m30s`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${s}s`;
}
