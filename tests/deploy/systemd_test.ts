/**
 * deploy/systemd/kproxy.service: kproxy's flag parser accepts its command line, it restarts,
 * starts after the network is online, and its hardening leaves netfilter's capabilities (and
 * netlink) in place. `systemd-analyze verify` checks the syntax where systemd is installed.
 */

import assert from "node:assert/strict";
import { parseFlags } from "../../src/cli/flags.ts";
import { REPO_DIR } from "./_manifests.ts";
import { requiring, systemdAnalyze } from "../requirements.ts";

const UNIT_PATH = `${REPO_DIR}/deploy/systemd/kproxy.service`;
const unitText = Deno.readTextFileSync(UNIT_PATH);

/** Parses a unit file into section → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1] ?? "", current);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(current && eq > 0, `kproxy.service: cannot read line ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(unitText);

function values(section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

function words(section: string, key: string): string[] {
  return values(section, key).flatMap((v) => v.split(/\s+/)).filter((w) => w !== "");
}

Deno.test("kproxy.service runs /usr/local/bin/kproxy with a config file kproxy accepts", () => {
  const [exec, ...more] = values("Service", "ExecStart");
  assert.equal(more.length, 0);
  const argv = (exec ?? "").split(/\s+/);
  assert.equal(argv[0], "/usr/local/bin/kproxy");
  const flags = argv.slice(1).filter((a) => !a.startsWith("$"));
  const { values: parsed, positionals } = parseFlags(flags);
  assert.deepEqual(positionals, []);
  assert.equal(parsed["config"], "/etc/kproxy/config.conf");
});

Deno.test("kproxy.service restarts always and starts after the network is online", () => {
  assert.deepEqual(values("Service", "Restart"), ["always"]);
  assert.ok(words("Unit", "After").includes("network-online.target"));
  assert.ok(words("Unit", "Wants").includes("network-online.target"));
  assert.deepEqual(values("Install", "WantedBy"), ["multi-user.target"]);
});

Deno.test("kproxy.service hardening keeps exactly netfilter's capabilities and netlink", () => {
  const caps = ["CAP_NET_ADMIN", "CAP_NET_RAW"];
  assert.deepEqual(words("Service", "CapabilityBoundingSet").sort(), caps);
  assert.deepEqual(words("Service", "AmbientCapabilities").sort(), caps);
  assert.ok(words("Service", "RestrictAddressFamilies").includes("AF_NETLINK"));
  assert.deepEqual(values("Service", "NoNewPrivileges"), ["true"]);
  assert.deepEqual(values("Service", "ProtectSystem"), ["strict"]);
  // iptables takes /run/xtables.lock.
  assert.ok(words("Service", "ReadWritePaths").some((p) => "/run/xtables.lock".startsWith(p)));
  // V8's JIT needs writable+executable memory.
  assert.notEqual(values("Service", "MemoryDenyWriteExecute")[0], "true");
});

Deno.test(requiring([systemdAnalyze], {
  name: "systemd-analyze verify accepts kproxy.service",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kproxy-unit-" });
    try {
      // verify wants ExecStart to exist: point it at a stand-in.
      const stub = `${dir}/kproxy`;
      await Deno.writeTextFile(stub, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      await Deno.writeTextFile(
        `${dir}/kproxy.service`,
        unitText.replaceAll("/usr/local/bin/kproxy", stub),
      );
      const out = await new Deno.Command("systemd-analyze", {
        args: ["verify", `${dir}/kproxy.service`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.doesNotMatch(stderr, /kproxy\.service:\d+:/, stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
}));
