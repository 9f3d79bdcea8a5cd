/** `kproxy snapshot`, `kproxy render` and `kproxy diff`: manifests in, text out, no kernel. */
import type { RuleRenderer } from "../apply/applier.ts";
import type { ProxyConfig } from "../config/proxy_config.ts";
import { unifiedDiff } from "../diff/unified_diff.ts";
import { buildSnapshot } from "../snapshot/proxy_state.ts";
import { describeSnapshotDiff, type SnapshotDiff } from "../snapshot/snapshot_diff.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import { loadManifests } from "../source/manifest_loader.ts";
import { UsageError } from "./flags.ts";
import { snapshotSettingsOf } from "./settings.ts";
import { formatSnapshotTable } from "./snapshot_table.ts";

/** Bad manifests: every error line, exit code 2. */
export class ManifestError extends Error {
  /** One line per bad object. */
  readonly lines: readonly string[];
  /** Makes the error from its lines. */
  constructor(lines: readonly string[]) {
    super(lines.join("\n"));
    this.name = "ManifestError";
    this.lines = lines;
  }
}

/** Loads manifests and builds this node's snapshot; any bad object is an error. */
export async function snapshotFromManifests(
  path: string,
  config: ProxyConfig,
  nodeName: string,
): Promise<ProxySnapshot> {
  const loaded = await loadManifests(path);
  if (loaded.errors.length > 0) throw new ManifestError(loaded.errors.map((e) => e.message));
  return buildSnapshot(loaded.objects, snapshotSettingsOf(config, nodeName, []));
}

/** `kproxy snapshot -o json|table`. */
export function formatSnapshot(snapshot: ProxySnapshot, output: string): string {
  if (output === "json") return JSON.stringify(snapshot, null, 2);
  if (output === "table") return formatSnapshotTable(snapshot);
  throw new UsageError(`-o must be json or table, not ${JSON.stringify(output)}`);
}

/** The result of `kproxy diff`. */
export interface DiffReport {
  /** The snapshot diff. */
  readonly diff: SnapshotDiff;
  /** The unified diff of the rule text ("" when equal or no renderer). */
  readonly rules: string;
  /** The renderer's mode, if one was used. */
  readonly mode: string | null;
}

/** Compares two snapshots, and their rule text when a renderer is given. */
export function diffSnapshots(
  from: ProxySnapshot,
  to: ProxySnapshot,
  renderer: RuleRenderer | null,
): DiffReport {
  const diff = describeSnapshotDiff(from, to);
  const rules = renderer === null || from.hash === to.hash ? "" : unifiedDiff(
    renderer.render(from),
    renderer.render(to),
    { fromLabel: `${renderer.mode} (from)`, toLabel: `${renderer.mode} (to)` },
  );
  return { diff, rules, mode: renderer?.mode ?? null };
}

/** True when the two sides differ in anything that reaches the kernel or the node. */
export function reportDiffers(report: DiffReport): boolean {
  return report.diff.fromHash !== report.diff.toHash;
}

/** Formats a diff report as text, JSON or Markdown. */
export function formatDiffReport(report: DiffReport, output: string): string {
  const { diff } = report;
  switch (output) {
    case "json":
      return JSON.stringify(
        {
          equal: !reportDiffers(report),
          fromHash: diff.fromHash,
          toHash: diff.toHash,
          added: diff.added.map((s) => s.id),
          removed: diff.removed.map((s) => s.id),
          changed: diff.changed.map((c) => c.after.id),
          lostAllEndpoints: diff.lostAllEndpoints,
          nodeOrOptionsChanged: diff.nodeOrOptionsChanged,
          lines: diff.lines,
          mode: report.mode,
          rules: report.rules,
        },
        null,
        2,
      );
    case "text": {
      if (!reportDiffers(report)) return `no changes (snapshot ${diff.fromHash})`;
      const out = [`snapshot ${diff.fromHash} → ${diff.toHash}`, ...diff.lines];
      if (report.rules !== "") out.push("", report.rules.trimEnd());
      return out.join("\n");
    }
    case "markdown": {
      if (!reportDiffers(report)) return "**kproxy:** no changes to the proxy rules.";
      const out = [
        `### kproxy: ${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed service ports`,
        "",
      ];
      if (diff.lostAllEndpoints.length > 0) {
        out.push(
          `> **Warning:** ${
            diff.lostAllEndpoints.map((id) => `\`${id}\``).join(", ")
          } lose all endpoints.`,
          "",
        );
      }
      out.push(...diff.lines.map((l) => `- \`${l.replaceAll("`", "'")}\``));
      if (report.rules !== "") {
        out.push("", `<details><summary>${report.mode} rule diff</summary>`, "", "```diff");
        out.push(report.rules.trimEnd().replaceAll("```", "'''"), "```", "", "</details>");
      }
      return out.join("\n");
    }
    default:
      throw new UsageError(`-o must be text, json or markdown, not ${JSON.stringify(output)}`);
  }
}
