/**
 * The oracle of the byte tests: what `nft` itself sends for a script, read from its
 * `--debug=mnl` dump (libmnl prints every message of the batch four bytes a row). Pure parsing
 * ({@link parseMnlDump}) plus one shell ({@link nftBatchMessages}) that runs `nft --check` in a
 * network namespace, so nothing is committed.
 *
 * @module
 */
import { runToolResult } from "../run_tool.ts";

/** One message of nft's dump. */
export interface DumpedMessage {
  /** `nlmsg_type`. */
  readonly type: number;
  /** The flag letters libmnl prints (`R`equest, `M`ulti, `A`ck, `E`cho); other bits are not shown. */
  readonly flagLetters: string;
  /** `nlmsg_seq`. */
  readonly seq: number;
  /** Everything after the 16-byte `nlmsghdr`: `nfgenmsg` then attributes, padding included. */
  readonly body: Uint8Array;
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

/** The messages in a `nft --debug=mnl` dump, in order (pure). */
export function parseMnlDump(dump: string): DumpedMessage[] {
  const out: DumpedMessage[] = [];
  const lines = dump.replace(ANSI, "").split("\n");
  let current: { type: number; flagLetters: string; seq: number; bytes: number[] } | null = null;
  let headerRow = 0;
  const finish = () => {
    if (current !== null) {
      out.push({
        type: current.type,
        flagLetters: current.flagLetters,
        seq: current.seq,
        body: Uint8Array.from(current.bytes),
      });
    }
    current = null;
  };
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^\|\s+(\d{10})\s+\|\s+\| message length \|/.exec(line)) !== null) {
      finish();
      current = { type: 0, flagLetters: "", seq: 0, bytes: [] };
      headerRow = 1;
      continue;
    }
    if (current === null) continue;
    if (headerRow === 1 && (m = /^\| (\d{5}) \| ([RMAE-]{4}) \|/.exec(line)) !== null) {
      current.type = Number(m[1]);
      current.flagLetters = (m[2] as string).replaceAll("-", "");
      headerRow = 2;
    } else if (headerRow === 2 && (m = /^\|\s+(\d{10})\s+\|\s+\| sequence number\|/.exec(line))) {
      current.seq = Number(m[1]);
      headerRow = 3;
    } else if (
      (m = /^\| ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2})\s+\|/.exec(line))
    ) {
      current.bytes.push(...m.slice(1, 5).map((h) => parseInt(h as string, 16)));
    } else if ((m = /^\|(\d{5})\|([N-])([B-])\|(\d{5})\|/.exec(line)) !== null) {
      const length = Number(m[1]);
      const type = Number(m[4]) | (m[2] === "N" ? 0x8000 : 0) | (m[3] === "B" ? 0x4000 : 0);
      current.bytes.push(length & 0xff, length >> 8, type & 0xff, type >> 8);
    }
  }
  finish();
  return out;
}

/**
 * The messages between BATCH_BEGIN and BATCH_END that `nft --check` builds for `script` in the
 * network namespace `netns` (which must hold whatever the script refers to).
 */
export async function nftBatchMessages(netns: string, script: string): Promise<DumpedMessage[]> {
  const result = await runToolResult("nft", ["--check", "--debug=mnl", "-f", "-"], {
    netns,
    stdin: script,
  });
  if (result.code !== 0) {
    throw new Error(`nft --check --debug=mnl failed: ${result.stderr.trim().split("\n")[0]}`);
  }
  const all = parseMnlDump(result.stdout + "\n" + result.stderr);
  const begin = all.findIndex((m) => m.type === 16);
  if (begin < 0) throw new Error("nft --debug=mnl printed no batch");
  // With --check, nft leaves BATCH_END out: the kernel then aborts the batch.
  const end = all.findIndex((m, i) => i > begin && m.type === 17);
  return all.slice(begin + 1, end < 0 ? undefined : end);
}
