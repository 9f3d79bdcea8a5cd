/** Line diffs in unified format (pure), for rule text and snapshots. */

/** One edit of a line diff. */
export type DiffOp = { readonly op: " " | "-" | "+"; readonly line: string };

/** Options of {@link unifiedDiff}. */
export interface UnifiedDiffOptions {
  /** Label of the old text (`--- label`). */
  readonly fromLabel?: string;
  /** Label of the new text (`+++ label`). */
  readonly toLabel?: string;
  /** Lines of context around each change (default 3). */
  readonly context?: number;
}

/** Beyond this many edits the diff stops looking for a minimal script. */
const MAX_EDIT_DISTANCE = 4000;

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Myers' O((N+M)·D) diff of two line arrays; falls back to a block replace past a bound. */
export function diffLines(a: readonly string[], b: readonly string[]): DiffOp[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const ops: DiffOp[] = [];
  for (let i = 0; i < start; i++) ops.push({ op: " ", line: a[i] as string });
  ops.push(...middleDiff(a.slice(start, endA), b.slice(start, endB)));
  for (let i = endA; i < a.length; i++) ops.push({ op: " ", line: a[i] as string });
  return ops;
}

function middleDiff(a: readonly string[], b: readonly string[]): DiffOp[] {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((line) => ({ op: "+" as const, line }));
  if (m === 0) return a.map((line) => ({ op: "-" as const, line }));
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number))
        ? v[offset + k + 1] as number
        : (v[offset + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) {
    return [
      ...a.map((line) => ({ op: "-" as const, line })),
      ...b.map((line) => ({ op: "+" as const, line })),
    ];
  }
  // Backtrack through the saved frontiers.
  const ops: DiffOp[] = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const frame = trace[d] as Int32Array; // v before round d, indices k in [-d-1, d+1]
    const at = (k: number) => frame[k + d + 1] as number;
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ op: " ", line: a[x - 1] as string });
      x--;
      y--;
    }
    if (prevK === k + 1) ops.push({ op: "+", line: b[y - 1] as string });
    else ops.push({ op: "-", line: a[x - 1] as string });
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    ops.push({ op: " ", line: a[x - 1] as string });
    x--;
    y--;
  }
  return ops.reverse();
}

/** The unified diff of two texts; empty when they are equal. */
export function unifiedDiff(
  aText: string,
  bText: string,
  options: UnifiedDiffOptions = {},
): string {
  if (aText === bText) return "";
  const a = splitLines(aText);
  const b = splitLines(bText);
  const ops = diffLines(a, b);
  const context = options.context ?? 3;
  const out: string[] = [`--- ${options.fromLabel ?? "a"}`, `+++ ${options.toLabel ?? "b"}`];
  const changeIdx: number[] = [];
  ops.forEach((o, i) => {
    if (o.op !== " ") changeIdx.push(i);
  });
  let i = 0;
  while (i < changeIdx.length) {
    const first = changeIdx[i] as number;
    let last = first;
    while (i + 1 < changeIdx.length && (changeIdx[i + 1] as number) - last <= 2 * context + 1) {
      i++;
      last = changeIdx[i] as number;
    }
    i++;
    const from = Math.max(0, first - context);
    const to = Math.min(ops.length - 1, last + context);
    let aLine = 1;
    let bLine = 1;
    for (let j = 0; j < from; j++) {
      if (ops[j]?.op !== "+") aLine++;
      if (ops[j]?.op !== "-") bLine++;
    }
    let aCount = 0;
    let bCount = 0;
    const body: string[] = [];
    for (let j = from; j <= to; j++) {
      const o = ops[j] as DiffOp;
      if (o.op !== "+") aCount++;
      if (o.op !== "-") bCount++;
      body.push(`${o.op}${o.line}`);
    }
    const aStart = aCount === 0 ? aLine - 1 : aLine;
    const bStart = bCount === 0 ? bLine - 1 : bLine;
    out.push(`@@ -${aStart},${aCount} +${bStart},${bCount} @@`, ...body);
  }
  return out.join("\n") + "\n";
}
