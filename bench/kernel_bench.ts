/**
 * Kernel benchmarks (root): inside a namespace the bench makes, kproxy's own appliers load a
 * synthetic cluster (first full apply), then make single endpoint changes; each change counts as
 * live when the kernel's nf_tables notifications in that namespace show the new endpoint
 * (iptables-legacy has none: its restore commits synchronously, so its exit is the moment, and
 * `iptables-legacy-save` right after must show the endpoint). Sizes whose estimated load time
 * exceeds the cap are skipped and say so.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import type { Applier } from "../src/apply/applier.ts";
import { IptablesApplier } from "../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../src/apply/nftables_applier.ts";
import { reconcile } from "../src/snapshot/proxy_state.ts";
import { BENCH_SETTINGS, benchFixture, serviceAddChange, spreadSlices } from "./_fixtures.ts";
import { withBenchNetns } from "./netns.ts";
import { ipv4Hex, NfEventWatch, nowMs, pollUntil } from "./rule_watch.ts";
import { median } from "./stats.ts";
import { freshEndpointIPv4, sliceWithEndpoint, toKubeObject } from "./synthetic_cluster.ts";

/** The kernel backends the bench can load. */
export type KernelBackend = "nftables" | "iptables-nft" | "iptables-legacy";

/** One endpoint change made live. */
export interface KernelChange {
  /** Reconcile + applier sync until it returned, ms. */
  readonly applyMs: number;
  /** From the start of the reconcile until the kernel reported the new endpoint, ms. */
  readonly liveMs: number | null;
  /** Lines the applier sent. */
  readonly linesSent: number;
  /**
   * CPU time (user + sys) of the bench process from the reconcile until sync returned, ms: the
   * work itself, which a loaded machine does not stretch as it stretches wall time (the kernel's
   * part of an nftables change is in it; an iptables restore runs in a child, so not there).
   */
  readonly cpuMs?: number;
  /** nf_tables notifications in the kernel transaction that held it, when known. */
  readonly transactionMessages: number | null;
}

/** Adding or deleting a whole service, made live. */
export interface KernelServiceChange {
  /** `add` or `delete`. */
  readonly kind: "add" | "delete";
  /** From the start of the reconcile until the kernel reported it, ms. */
  readonly liveMs: number | null;
  /** Lines the applier sent. */
  readonly linesSent: number;
}

/**
 * What the same namespace costs without kproxy: the `nft` CLI adding one element to a tiny table
 * (process start and cache included), and the kernel committing kproxy's own netlink batch for
 * a change (time inside `sendmsg`).
 */
export interface KernelFloors {
  /** Median `nft -f` of one element into a one-set table, ms. */
  readonly nftCliMs: number | null;
  /** Median kernel time of the endpoint changes' netlink batches, ms (nftables only). */
  readonly netlinkBatchMs: number | null;
}

/** One backend at one size. */
export interface KernelResult {
  /** Backend. */
  readonly backend: KernelBackend;
  /** Services. */
  readonly services: number;
  /** Endpoints per service (default 10). */
  readonly endpoints?: number;
  /** Skipped, and why (then the numbers are absent). */
  readonly skipped: string | null;
  /** First full apply (render + load) into an empty namespace, ms. */
  readonly fullApplyMs: number | null;
  /** Lines of that full apply. */
  readonly fullLines: number | null;
  /** Single endpoint changes. */
  readonly changes: readonly KernelChange[];
  /** Median `liveMs` of the changes. */
  readonly changeLiveMs: number | null;
  /** Median transaction lines sent for one endpoint change. */
  readonly changeLines: number | null;
  /** How the change was seen (`nft monitor` or polling). */
  readonly observedBy: string;
  /** Whole services added and deleted (nftables). */
  readonly serviceChanges?: readonly KernelServiceChange[];
  /** The floors measured in the same namespace. */
  readonly floors?: KernelFloors;
}

/** `iptables --version` and friends, for the report. */
export async function toolVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (
    const argv of [["nft", "--version"], ["iptables", "--version"], [
      "iptables-legacy",
      "--version",
    ]]
  ) {
    try {
      const o = await new Deno.Command(argv[0] as string, {
        args: argv.slice(1),
        stdout: "piped",
        stderr: "piped",
      }).output();
      out[argv[0] as string] = new TextDecoder().decode(o.success ? o.stdout : o.stderr).trim();
    } catch {
      out[argv[0] as string] = "missing";
    }
  }
  return out;
}

function applierFor(backend: KernelBackend, netns: string): Applier {
  if (backend === "nftables") return new NftablesApplier({ netns, conntrackCleanup: false });
  return new IptablesApplier({
    netns,
    variant: backend === "iptables-nft" ? "nft" : "legacy",
    conntrackCleanup: false,
  });
}

/** Options of {@link measureKernel}. */
export interface KernelOptions {
  /** Endpoint changes per size (default 5). */
  readonly changes?: number;
  /** Endpoints per service (default 10). */
  readonly endpoints?: number;
  /** Progress sink. */
  readonly log?: (line: string) => void;
}

/** Loads `size` services with `backend` in a fresh namespace and makes single changes. */
export async function measureKernel(
  backend: KernelBackend,
  size: number,
  options: KernelOptions = {},
): Promise<KernelResult> {
  const log = options.log ?? (() => {});
  const endpoints = options.endpoints ?? 10;
  const fixture = benchFixture(size, endpoints);
  const observedBy = backend === "iptables-legacy"
    ? "iptables-legacy-restore exit (synchronous commit; checked with iptables-legacy-save)"
    : "nf_tables notifications";
  const label = endpoints === 10
    ? `${size >= 1000 ? `${size / 1000}k` : size}`
    : `${size}x${endpoints}`;
  return await withBenchNetns(`k${label}`, async (ns) => {
    const applier = applierFor(backend, ns.name);
    const t0 = performance.now();
    const full = await applier.sync({
      snapshot: fixture.state.snapshot,
      changedServicePorts: [],
      full: true,
    });
    const fullApplyMs = performance.now() - t0;
    log(
      `  ${backend} ${size}: first full apply ${
        (fullApplyMs / 1000).toFixed(2)
      } s, ${full.linesSent} lines`,
    );

    const changes: KernelChange[] = [];
    const batchMs: number[] = [];
    let state = fixture.state;
    const slices = spreadSlices(fixture.cluster, options.changes ?? 5);
    const monitor = backend === "iptables-legacy" ? null : await NfEventWatch.start(ns.name);
    const serviceChanges: KernelServiceChange[] = [];
    try {
      for (const [k, slice] of slices.entries()) {
        const ip = freshEndpointIPv4(100 + k);
        const event = {
          type: "upsert" as const,
          object: toKubeObject(sliceWithEndpoint(slice, ip)),
        };
        // Watch before changing anything: the kernel may report the change before sync returns.
        // iptables-legacy has no notifications; its restore commits synchronously (the table
        // replace returns once the kernel holds it), so its exit is the moment, verified below.
        const seen: Promise<{ at: number; transactionMessages: number } | null> = monitor !== null
          ? (await monitor.arm("appear", [ipv4Hex(ip)], 120_000)).sighting
          : Promise.resolve(null);
        const c0 = nowMs();
        const cpu0 = cpuUsage();
        const result = reconcile(state, [event]);
        state = result.state;
        const synced = await applier.sync({
          snapshot: state.snapshot,
          changedServicePorts: result.changedServicePorts,
          full: false,
        });
        const applyMs = nowMs() - c0;
        const cpu = cpuUsage(cpu0);
        const cpuMs = (cpu.user + cpu.system) / 1000;
        if (applier instanceof NftablesApplier && applier.lastTransport === "netlink") {
          const commit = applier.lastNetlinkCommit;
          if (commit !== null) batchMs.push(commit.kernelMs);
        }
        let m = await seen;
        if (monitor === null) {
          const check = await pollUntil(
            ["ip", "netns", "exec", ns.name, "iptables-legacy-save", "-t", "nat"],
            (text) => text.includes(`--to-destination ${ip}:`),
            { intervalMs: 100, timeoutMs: 10_000 },
          );
          m = check.polls === 1 && check.at !== null
            ? { at: c0 + applyMs, transactionMessages: NaN }
            : null;
        }
        const liveMs = m === null ? null : m.at - c0;
        const transactionMessages = m === null || Number.isNaN(m.transactionMessages)
          ? null
          : m.transactionMessages;
        changes.push({ applyMs, liveMs, linesSent: synced.linesSent, cpuMs, transactionMessages });
        log(
          `  ${backend} ${size}: endpoint change ${k + 1}: applied in ${applyMs.toFixed(1)} ms, ` +
            `live after ${
              liveMs === null ? "?" : liveMs.toFixed(1)
            } ms, ${synced.linesSent} lines sent, ${cpuMs.toFixed(1)} ms CPU`,
        );
      }
      // Whole services: one added (Service and EndpointSlice in one batch), then deleted.
      if (monitor !== null && backend === "nftables") {
        for (const kind of ["add", "delete"] as const) {
          const added = serviceAddChange(0);
          const svc = added[0];
          const ip = svc?.type === "upsert" && svc.object.kind === "Service"
            ? (svc.object.object.spec?.clusterIP ?? "")
            : "";
          const events = kind === "add" ? added : added.map((e) => ({
            type: "delete" as const,
            kind: e.type === "upsert" ? e.object.kind : "Service" as const,
            namespace: e.type === "upsert" ? e.object.object.metadata.namespace ?? null : null,
            name: e.type === "upsert" ? e.object.object.metadata.name : "",
          }));
          const seen =
            (await monitor.arm(kind === "add" ? "appear" : "disappear", [ipv4Hex(ip)], 120_000))
              .sighting;
          const c0 = nowMs();
          const r = reconcile(state, events);
          state = r.state;
          const synced = await applier.sync({
            snapshot: state.snapshot,
            changedServicePorts: r.changedServicePorts,
            full: false,
          });
          const m = await seen;
          const liveMs = m === null ? null : m.at - c0;
          serviceChanges.push({ kind, liveMs, linesSent: synced.linesSent });
          log(
            `  ${backend} ${label}: service ${kind} live after ${
              liveMs === null ? "?" : liveMs.toFixed(1)
            } ms, ${synced.linesSent} lines sent`,
          );
        }
      }
    } finally {
      await monitor?.stop();
    }
    const floors: KernelFloors = {
      nftCliMs: await nftCliFloor(ns.name),
      netlinkBatchMs: batchMs.length > 0 ? median(batchMs) : null,
    };
    log(
      `  ${backend} ${label}: floors: nft CLI ${floors.nftCliMs?.toFixed(1) ?? "—"} ms, ` +
        `netlink batch ${floors.netlinkBatchMs?.toFixed(2) ?? "—"} ms`,
    );
    const lives = changes.map((c) => c.liveMs).filter((x): x is number => x !== null);
    return {
      backend,
      services: size,
      endpoints,
      serviceChanges,
      floors,
      skipped: null,
      fullApplyMs,
      fullLines: full.linesSent,
      changes,
      changeLiveMs: lives.length > 0 ? median(lives) : null,
      changeLines: median(changes.map((c) => c.linesSent)),
      observedBy,
    };
  });
}

/**
 * The `nft` CLI's floor in namespace `netns`: median time of `nft -f` adding one element to a
 * one-set table of its own (process start, cache and commit included), over 5 runs.
 */
export async function nftCliFloor(netns: string): Promise<number | null> {
  const run = async (script: string) => {
    const t0 = performance.now();
    const out = await new Deno.Command("ip", {
      args: ["netns", "exec", netns, "nft", "-f", "-"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const w = out.stdin.getWriter();
    await w.write(new TextEncoder().encode(script));
    await w.close();
    const status = await out.status;
    return status.success ? performance.now() - t0 : null;
  };
  if (await run("table ip kproxy-floor {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\n") === null) {
    return null;
  }
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = await run(`add element ip kproxy-floor s { 198.18.0.${100 + i} }\n`);
    if (t !== null) times.push(t);
  }
  await run("delete table ip kproxy-floor\n");
  return times.length > 0 ? median(times) : null;
}

/** A skipped result. */
export function skippedKernel(backend: KernelBackend, size: number, why: string): KernelResult {
  return {
    backend,
    services: size,
    skipped: why,
    fullApplyMs: null,
    fullLines: null,
    changes: [],
    changeLiveMs: null,
    changeLines: null,
    observedBy: "",
  };
}

/**
 * Estimated full-apply time at `size` from a measurement at `fromSize` (superlinear: kernel
 * loads grow faster than the ruleset, so the exponent is 1.3).
 */
export function estimateApplyMs(fromSize: number, fromMs: number, size: number): number {
  return fromMs * (size / fromSize) ** 1.3;
}

/** Settings used by every kernel bench proxy (re-exported for the report). */
export const KERNEL_SETTINGS = BENCH_SETTINGS;
