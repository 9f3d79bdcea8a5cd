/**
 * Where an iptables-nft change spends its time (issue #14, item 3: would an nf_tables netlink
 * fast path pay for iptables mode as it does for nftables?). In a bench namespace holding a
 * synthetic cluster loaded by kproxy's iptables applier (iptables-nft), per size:
 *
 * - kproxy's one-endpoint partial sync: `iptables-nft-restore --noflush` until it exits (it exits
 *   after the kernel acknowledged the commit), median of 5;
 * - the same restores under `strace -T`: the kernel's time inside the batch's `sendmsg` (the
 *   commit: what a netlink fast path would still pay) and inside `recvmsg` (reading the table
 *   into iptables-nft's cache before it can compute the change: O(table));
 * - the restore tool's floor: replacing the one rule of a chain of its own in the same nat table,
 *   and in the (empty) raw table; and the `nft` CLI's floor (one element to a tiny table);
 * - the CPU time (user + sys, `/usr/bin/time`) of each restore: wall times on a shared machine
 *   follow its load, CPU time follows the work.
 *
 * ```sh
 * flock /work/.bench.lock deno run -A bench/iptables_floor.ts [--sizes 1000,10000,30000]
 *   [--out bench/results/iptables-floor]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { IptablesApplier } from "../src/apply/iptables_applier.ts";
import { reconcile } from "../src/snapshot/proxy_state.ts";
import { benchFixture, spreadSlices } from "./_fixtures.ts";
import { nftCliFloor } from "./kernel_bench.ts";
import { withBenchNetns } from "./netns.ts";
import { median } from "./stats.ts";
import { freshEndpointIPv4, sliceWithEndpoint, toKubeObject } from "./synthetic_cluster.ts";

/** One size's measurements (ms). */
export interface IptablesFloorRow {
  /** Services (10 endpoints each). */
  readonly services: number;
  /** First full load through iptables-nft-restore. */
  readonly fullApplyMs: number;
  /** kproxy's one-endpoint partial sync (restore exit), median. */
  readonly changeMs: number;
  /** CPU time (user + sys) of that restore, median. */
  readonly changeCpuMs: number | null;
  /** Lines of that restore input, median. */
  readonly changeLines: number;
  /** Kernel time inside the commit's sendmsg, median over the traced changes. */
  readonly commitKernelMs: number | null;
  /** Kernel time inside recvmsg (the cache dump) per restore, median over the traced changes. */
  readonly cacheReadKernelMs: number | null;
  /** iptables-nft-restore replacing one rule of its own chain in the nat table, median. */
  readonly restoreFloorNatMs: number | null;
  /** CPU time of that restore, median. */
  readonly restoreFloorNatCpuMs: number | null;
  /** The same in the raw table (empty), median. */
  readonly restoreFloorRawMs: number | null;
  /** CPU time of that restore, median. */
  readonly restoreFloorRawCpuMs: number | null;
  /** nft -f, one element to a one-set table, median. */
  readonly nftCliMs: number | null;
}

/** CPU ms (user + sys) per line of a `/usr/bin/time -f "%U %S"` output file. */
export function cpuTimes(text: string): number[] {
  return text.split("\n").flatMap((line) => {
    const m = /^(\d+\.\d+) (\d+\.\d+)$/.exec(line.trim());
    return m === null ? [] : [(Number(m[1]) + Number(m[2])) * 1000];
  });
}

async function timedRestore(
  netns: string,
  input: string,
  cpuFile: string,
): Promise<{ ms: number; cpuMs: number | null } | null> {
  await Deno.remove(cpuFile).catch(() => {});
  const t0 = performance.now();
  const child = new Deno.Command("ip", {
    args: [
      ...["netns", "exec", netns, "/usr/bin/time", "-f", "%U %S", "-o", cpuFile],
      ...["iptables-nft-restore", "--noflush", "-w"],
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  if (!(await child.status).success) return null;
  const ms = performance.now() - t0;
  return { ms, cpuMs: cpuTimes(await Deno.readTextFile(cpuFile).catch(() => ""))[0] ?? null };
}

/** Medians (wall, CPU) of `iptables-nft-restore --noflush` replacing its own chain's rule. */
async function restoreFloor(
  netns: string,
  table: "nat" | "raw",
  cpuFile: string,
): Promise<{ ms: number | null; cpuMs: number | null }> {
  const chain = "BENCH-FLOOR";
  const none = { ms: null, cpuMs: null };
  if (await timedRestore(netns, `*${table}\n:${chain} - [0:0]\nCOMMIT\n`, cpuFile) === null) {
    return none;
  }
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = await timedRestore(
      netns,
      `*${table}\n-F ${chain}\n-A ${chain} -s 198.18.0.${100 + i}/32 -j RETURN\nCOMMIT\n`,
      cpuFile,
    );
    if (t !== null) times.push(t.ms);
    if (t?.cpuMs != null) cpu.push(t.cpuMs);
  }
  await timedRestore(netns, `*${table}\n-F ${chain}\n-X ${chain}\nCOMMIT\n`, cpuFile);
  return {
    ms: times.length > 0 ? median(times) : null,
    cpuMs: cpu.length > 0 ? median(cpu) : null,
  };
}

/**
 * From an `strace -T` log of netlink calls: `[longest send, sum of receives]` in ms — the batch
 * commit (the kernel processes a batch inside its send) and the dumps (filled inside receive).
 */
export function syscallTimes(log: string): [number, number] {
  let send = 0;
  let recv = 0;
  for (const line of log.split("\n")) {
    const m = /\b(sendmsg|recvmsg|sendto|recvfrom)\(.*<(\d+\.\d+)>$/.exec(line);
    if (m === null) continue;
    const ms = Number(m[2]) * 1000;
    if (m[1]!.startsWith("send")) send = Math.max(send, ms);
    else recv += ms;
  }
  return [send, recv];
}

async function measure(size: number, log: (line: string) => void): Promise<IptablesFloorRow> {
  const fixture = benchFixture(size);
  const dir = await Deno.makeTempDir({ prefix: "kpb-iptfloor-" });
  const traceFlag = `${dir}/trace`;
  const wrapper = `${dir}/iptables-nft-restore`;
  // The restore the applier runs: under strace while the flag file exists.
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\nif [ -e ${traceFlag} ]; then exec strace -f -T -e trace=sendmsg,recvmsg,sendto,recvfrom ` +
      `-o ${dir}/strace.$$ iptables-nft-restore "$@"; fi\n` +
      `exec /usr/bin/time -f "%U %S" -a -o ${dir}/cpu iptables-nft-restore "$@"\n`,
  );
  await Deno.chmod(wrapper, 0o755);
  try {
    return await withBenchNetns(`ipf${size / 1000}k`, async (ns) => {
      const applier = new IptablesApplier({
        netns: ns.name,
        variant: "nft",
        conntrackCleanup: false,
        tools: { restore4: wrapper },
      });
      const t0 = performance.now();
      await applier.sync({ snapshot: fixture.state.snapshot, changedServicePorts: [], full: true });
      const fullApplyMs = performance.now() - t0;
      log(`  ${size}: first full load ${(fullApplyMs / 1000).toFixed(2)} s`);
      let state = fixture.state;
      const change = async (k: number, slice: Parameters<typeof sliceWithEndpoint>[0]) => {
        const r = reconcile(state, [{
          type: "upsert",
          object: toKubeObject(sliceWithEndpoint(slice, freshEndpointIPv4(200 + k))),
        }]);
        state = r.state;
        const c0 = performance.now();
        const synced = await applier.sync({
          snapshot: state.snapshot,
          changedServicePorts: r.changedServicePorts,
          full: false,
        });
        return { ms: performance.now() - c0, lines: synced.linesSent };
      };
      const slices = spreadSlices(fixture.cluster, 8);
      const plain: { ms: number; lines: number }[] = [];
      const changeCpu: number[] = [];
      for (const [k, slice] of slices.slice(0, 5).entries()) {
        await Deno.remove(`${dir}/cpu`).catch(() => {});
        plain.push(await change(k, slice));
        const cpu = cpuTimes(await Deno.readTextFile(`${dir}/cpu`).catch(() => ""));
        if (cpu.length > 0) changeCpu.push(cpu.reduce((a, b) => a + b, 0));
      }
      log(`  ${size}: one endpoint change ${plain.map((p) => p.ms.toFixed(1)).join(", ")} ms`);
      await Deno.writeTextFile(traceFlag, "");
      const commits: number[] = [];
      const reads: number[] = [];
      for (const [k, slice] of slices.slice(5).entries()) {
        for (const e of Deno.readDirSync(dir)) {
          if (e.name.startsWith("strace.")) Deno.removeSync(`${dir}/${e.name}`);
        }
        await change(5 + k, slice);
        let send = 0;
        let recv = 0;
        for (const e of Deno.readDirSync(dir)) {
          if (!e.name.startsWith("strace.")) continue;
          const [s, r] = syscallTimes(Deno.readTextFileSync(`${dir}/${e.name}`));
          send = Math.max(send, s);
          recv += r;
        }
        commits.push(send);
        reads.push(recv);
      }
      await Deno.remove(traceFlag);
      log(
        `  ${size}: traced: commit sendmsg ${commits.map((x) => x.toFixed(2)).join(", ")} ms; ` +
          `recvmsg ${reads.map((x) => x.toFixed(1)).join(", ")} ms`,
      );
      const nat = await restoreFloor(ns.name, "nat", `${dir}/floor-cpu`);
      const raw = await restoreFloor(ns.name, "raw", `${dir}/floor-cpu`);
      const row: IptablesFloorRow = {
        services: size,
        fullApplyMs,
        changeMs: median(plain.map((p) => p.ms)),
        changeCpuMs: changeCpu.length > 0 ? median(changeCpu) : null,
        changeLines: median(plain.map((p) => p.lines)),
        commitKernelMs: commits.length > 0 ? median(commits) : null,
        cacheReadKernelMs: reads.length > 0 ? median(reads) : null,
        restoreFloorNatMs: nat.ms,
        restoreFloorNatCpuMs: nat.cpuMs,
        restoreFloorRawMs: raw.ms,
        restoreFloorRawCpuMs: raw.cpuMs,
        nftCliMs: await nftCliFloor(ns.name),
      };
      log(`  ${size}: ${JSON.stringify(row)}`);
      return row;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const f = (ms: number | null) => ms === null ? "—" : ms < 10 ? ms.toFixed(2) : ms.toFixed(1);

/** The Markdown table of the rows. */
export function iptablesFloorTable(rows: readonly IptablesFloorRow[]): string {
  const head = [
    "services",
    "first full load",
    "kproxy one endpoint change: restore exit (CPU)",
    "lines",
    "kernel: the commit (sendmsg)",
    "kernel: dumping the table into iptables-nft's cache (recvmsg)",
    "floor: restore, one rule, nat table (CPU)",
    "floor: restore, one rule, empty raw table (CPU)",
    "floor: nft CLI, one element to a tiny table",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) =>
      `| ${
        [
          r.services.toLocaleString("en-US"),
          `${(r.fullApplyMs / 1000).toFixed(2)} s`,
          `${f(r.changeMs)} ms (${f(r.changeCpuMs)} ms)`,
          String(r.changeLines),
          `${f(r.commitKernelMs)} ms`,
          `${f(r.cacheReadKernelMs)} ms`,
          `${f(r.restoreFloorNatMs)} ms (${f(r.restoreFloorNatCpuMs)} ms)`,
          `${f(r.restoreFloorRawMs)} ms (${f(r.restoreFloorRawCpuMs)} ms)`,
          `${f(r.nftCliMs)} ms`,
        ].join(" | ")
      } |`
    ),
  ];
  return lines.join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "1000,10000,30000" },
      out: {
        type: "string",
        default: new URL("./results/iptables-floor", import.meta.url).pathname,
      },
    },
  });
  const load = async () => (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3);
  const loadStart = await load();
  const startedAt = new Date().toISOString();
  const rows: IptablesFloorRow[] = [];
  for (const size of values.sizes.split(",").map(Number)) {
    console.error(`iptables-nft ${size} services`);
    rows.push(await measure(size, (l) => console.error(l)));
  }
  const loadEnd = await load();
  const md = `# Where an iptables-nft change spends its time\n\n` +
    `Run ${startedAt}, load average ${loadStart.join(" ")} at the start and ${
      loadEnd.join(" ")
    } at the end (shared 2-core machine). \`bench/iptables_floor.ts\`.\n\n` +
    iptablesFloorTable(rows) + "\n";
  await Deno.mkdir(values.out, { recursive: true });
  await Deno.writeTextFile(`${values.out}/results.md`, md);
  await Deno.writeTextFile(
    `${values.out}/results.json`,
    JSON.stringify({ startedAt, load: { start: loadStart, end: loadEnd }, rows }, null, 1) + "\n",
  );
  console.log(md);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
