/**
 * The kproxy command line: `kproxy [flags]` runs the proxy; `snapshot`, `render`, `diff` and
 * `version` are tools. Exit codes: 0 ok (or equal), 1 differ, 2 bad input, 3 policy failed.
 */
import "../backends.ts";
import { rendererFor } from "../render/renderers.ts";
import { ConfigFileError } from "../config/kube_proxy_configuration.ts";
import type { ProxyMode } from "../config/proxy_config.ts";
import { configFromFlags, flagsHelp, parseFlags, UsageError } from "./flags.ts";
import {
  diffSnapshots,
  formatDiffReport,
  formatSnapshot,
  ManifestError,
  snapshotFromManifests,
} from "./offline_commands.ts";
import { EXPLAIN_FLAGS, EXPLAIN_HELP, runExplain } from "./explain_command.ts";
import { runProxy } from "./run_command.ts";
import { nodeNameOf } from "./settings.ts";
import { formatVersion } from "../version.ts";

const USAGE = `kproxy — a kube-proxy for Kubernetes nodes, on Deno

Usage:
  kproxy [flags]                                   run the proxy (watch, sync rules, serve API)
  kproxy snapshot --manifests PATH [-o json|table] what this node would program
  kproxy render --manifests PATH [--proxy-mode M]  the full rule script on stdout
  kproxy diff --from PATH --to PATH [-o text|json|markdown] [--fail-on lost-endpoints]
                                                   what a change does (exit 0 equal, 1 differ)
  kproxy explain --manifests PATH --to ADDR:PORT[/tcp|udp|sctp] [--from ADDR] [-o text|json]
                 [--live]                          where a packet goes on this node, and why
                                                   (--live: and what the kernel did; exit 1 differ)
  kproxy version                                   version, Deno version and commit
  kproxy COMMAND --help                            help for a command

Flags (kube-proxy's names):
`;

const COMMAND_HELP: Record<string, string> = {
  snapshot: `kproxy snapshot --manifests PATH [--hostname-override NODE] [-o json|table]

Prints the snapshot this node would program from a file or folder of YAML/JSON manifests
(multi-document files and kind: List are read). Exit 2 with one line per bad object.`,
  render:
    `kproxy render --manifests PATH [--proxy-mode nftables|iptables] [--hostname-override NODE]

Prints the complete rule script the backend would load (nft -f / iptables-restore input).`,
  diff: `kproxy diff --from PATH --to PATH [-o text|json|markdown] [--proxy-mode MODE]
            [--hostname-override NODE] [--rules=false] [--fail-on lost-endpoints]

Compares the snapshots (and the backend's rule text) of two manifest trees.
Exit 0 when equal, 1 when they differ, 2 on bad input, 3 when --fail-on policy is violated.`,
  explain: EXPLAIN_HELP,
  version: "kproxy version\n\nPrints kproxy's version, the Deno version and the git commit.",
};

function printError(message: string): void {
  console.error(`kproxy: ${message}`);
}

function modeRenderer(mode: ProxyMode) {
  const renderer = rendererFor(mode);
  if (renderer === null) throw new UsageError(`the ${mode} backend is not built into this kproxy`);
  return renderer;
}

const readText = (path: string) => Deno.readTextFileSync(path);

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const sub = command !== undefined && !command.startsWith("-") ? command : null;
  const argv = sub === null ? args : rest;
  switch (sub) {
    case null:
    case "run": {
      const { values } = parseFlags(argv);
      if (values["help"] === "true") {
        console.log(USAGE + flagsHelp());
        return 0;
      }
      const config = configFromFlags(values, readText);
      return await runProxy(config, {
        cleanup: values["cleanup"] === "true",
        cleanupKubeProxy: values["cleanup-kube-proxy"] === "true",
      });
    }
    case "help":
      console.log(USAGE + flagsHelp());
      return 0;
    case "version": {
      const { values } = parseFlags(argv);
      if (values["help"] === "true") console.log(COMMAND_HELP["version"]);
      else console.log(formatVersion());
      return 0;
    }
    case "snapshot":
    case "render": {
      const { values } = parseFlags(argv);
      if (values["help"] === "true") {
        console.log(COMMAND_HELP[sub]);
        return 0;
      }
      const config = configFromFlags(values, readText);
      if (!config.manifests) throw new UsageError(`${sub} needs --manifests PATH`);
      const snapshot = await snapshotFromManifests(config.manifests, config, nodeNameOf(config));
      if (sub === "snapshot") console.log(formatSnapshot(snapshot, values["output"] ?? "table"));
      else console.log(modeRenderer(config.mode).render(snapshot).trimEnd());
      return 0;
    }
    case "explain": {
      const { values } = parseFlags(argv, EXPLAIN_FLAGS);
      if (values["help"] === "true") {
        console.log(COMMAND_HELP["explain"]);
        return 0;
      }
      const config = configFromFlags(values, readText);
      const run = await runExplain(values, config, nodeNameOf(config));
      console.log(run.text);
      return run.code;
    }
    case "diff": {
      const { values } = parseFlags(argv, {
        from: ["string", "manifests before"],
        to: ["string", "manifests after"],
        rules: ["boolean", "include the rule diff (default true)"],
        "fail-on": ["string", "policy: lost-endpoints"],
      });
      if (values["help"] === "true") {
        console.log(COMMAND_HELP["diff"]);
        return 0;
      }
      if (values["manifests"] !== undefined) {
        throw new UsageError("diff compares two trees: use --from PATH --to PATH, not --manifests");
      }
      if (!values["from"] || !values["to"]) {
        throw new UsageError("diff needs --from PATH and --to PATH");
      }
      const failOn = values["fail-on"];
      if (failOn !== undefined && failOn !== "lost-endpoints") {
        throw new UsageError(`--fail-on must be lost-endpoints, not ${JSON.stringify(failOn)}`);
      }
      const config = configFromFlags(values, readText);
      const node = nodeNameOf(config);
      const from = await snapshotFromManifests(values["from"], config, node);
      const to = await snapshotFromManifests(values["to"], config, node);
      const renderer = values["rules"] === "false" ? null : modeRenderer(config.mode);
      const report = diffSnapshots(from, to, renderer);
      console.log(formatDiffReport(report, values["output"] ?? "text"));
      if (failOn === "lost-endpoints" && report.diff.lostAllEndpoints.length > 0) {
        printError(`policy lost-endpoints failed: ${report.diff.lostAllEndpoints.join(", ")}`);
        return 3;
      }
      return report.diff.fromHash === report.diff.toHash ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(sub)}; see kproxy --help`);
  }
}

/** Runs the CLI with `args` and returns the exit code (errors are printed, never thrown). */
export async function runCli(args: string[]): Promise<number> {
  try {
    return await main(args);
  } catch (e) {
    if (e instanceof ManifestError) {
      for (const line of e.lines) printError(line);
    } else if (e instanceof UsageError || e instanceof ConfigFileError) {
      printError(e.message);
    } else if (e instanceof Error && /^Cannot /.test(e.message)) {
      printError(e.message);
    } else {
      printError(e instanceof Error ? (e.stack ?? e.message) : String(e));
    }
    return 2;
  }
}

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
