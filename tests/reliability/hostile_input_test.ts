/**
 * Hostile input, property-based (fast-check): random and malformed Services, EndpointSlices,
 * Nodes and manifest text thrown at the model, the snapshot builder and both renderers.
 *
 * - `parseKubeObject` never throws; a rejected object gets one line naming its kind and name.
 * - `parseManifestText` never throws, whatever the text (YAML alias cycles and bombs included).
 * - Snapshots and renders never throw; every rendered line is inside an allow-list grammar
 *   (tests/reliability/_rule_grammar.ts): names cannot leave their quotes, nothing hostile (the
 *   marker every hostile string carries) reaches a rule, every address parses, every port is
 *   1..65535.
 * - A sample of random renders passes `nft --check` and `iptables-restore --test` in a
 *   throwaway namespace (`kp-rel-fuzz-<pid>`).
 *
 * Runs are seeded (KPROXY_FUZZ_SEED to repeat one; KPROXY_FUZZ_RUNS to run more). IP plan: see
 * _hostile_objects.ts.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import yaml from "js-yaml";
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";
import { type KubeObject, parseKubeObject } from "../../src/model/kube_object.ts";
import { IptablesRenderer } from "../../src/render/iptables/iptables_renderer.ts";
import { renderNftables } from "../../src/render/nftables/nftables_renderer.ts";
import { buildSnapshot, type SnapshotSettings } from "../../src/snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../../src/snapshot/types.ts";
import { parseManifestText } from "../../src/source/manifest_text.ts";
import {
  HOSTILE_STRINGS,
  hostileString,
  MARKER,
  rawEndpointSlice,
  rawNode,
  rawService,
  rawWorld,
} from "./_hostile_objects.ts";
import { iptablesProblems, nftProblems } from "./_rule_grammar.ts";
import { netns, requiring } from "../requirements.ts";

const SEED = Number(Deno.env.get("KPROXY_FUZZ_SEED") ?? 20240611);
const soak = Deno.env.get("KPROXY_SOAK") === "1";
const RUNS = Number(Deno.env.get("KPROXY_FUZZ_RUNS") ?? (soak ? 3000 : 300));
const params = { seed: SEED, numRuns: RUNS };

const settingsArb: fc.Arbitrary<SnapshotSettings> = fc.record({
  nodeName: fc.constant("node-a"),
  clusterCIDRs: fc.subarray(["198.18.0.0/17", "fd00:1::/64", "198.18.1.0/24"]),
  masqueradeAll: fc.boolean(),
  masqueradeBit: fc.integer({ min: 0, max: 31 }),
  localhostNodePorts: fc.boolean(),
  nodePortAddresses: fc.constantFrom(
    [],
    ["primary"],
    ["198.19.0.0/24", "fd00:19::/64"],
    ["198.18.0.0/15", "198.19.0.0/16", "primary"],
  ),
  hostAddresses: fc.constant(["198.18.0.10", "198.19.0.1", "fd00::10", "fd00:19::1", "127.0.0.1"]),
});

function parseAll(raws: readonly unknown[]): KubeObject[] {
  const out: KubeObject[] = [];
  for (const raw of raws) {
    const r = parseKubeObject(raw, "fuzz");
    if (r.ok === true) out.push(r.value);
  }
  return out;
}

function checkError(raw: unknown, result: ReturnType<typeof parseKubeObject>): void {
  if (result.ok !== false) return;
  const { message, kind } = result.error;
  assert.ok(!/[\n\r]/.test(message), `one line: ${JSON.stringify(message)}`);
  assert.match(message, /Cannot read /);
  assert.ok(message.includes(kind), `names the kind ${kind}: ${message}`);
  assert.ok(message.length < 2000, `short enough: ${message.length} characters`);
  const meta = (raw as { metadata?: { name?: unknown } } | null)?.metadata;
  if (typeof meta?.name === "string" && /^[a-z0-9.-]{1,253}$/.test(meta.name)) {
    assert.ok(message.includes(meta.name), `names the object ${meta.name}: ${message}`);
  }
}

Deno.test("hostile input: parseKubeObject never throws and names what it rejects", () => {
  const anything = fc.anything({
    maxDepth: 4,
    withBoxedValues: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
  });
  const withKind = fc.tuple(
    fc.constantFrom("Service", "EndpointSlice", "Node", "List", "Pod"),
    anything,
    fc.oneof(anything, fc.record({ name: fc.oneof(hostileString, fc.constant("web")) })),
  ).map(([kind, rest, metadata]) => ({
    ...(typeof rest === "object" && rest !== null ? rest : {}),
    kind,
    metadata,
  }));
  fc.assert(
    fc.property(fc.oneof(anything, withKind, rawService, rawEndpointSlice, rawNode), (raw) => {
      const result = parseKubeObject(raw, "");
      const kind = (raw as { kind?: unknown } | null)?.kind;
      // A valid object keeps its kind; only kinds kproxy does not read are ignored, by name.
      if (result.ok === true) assert.equal(result.value.kind, kind);
      if (result.ok === "ignored") assert.equal(result.kind, kind);
      if (typeof kind !== "string") assert.equal(result.ok, false, "no kind, no object");
      checkError(raw, result);
    }),
    { ...params, numRuns: RUNS * 3 },
  );
});

/** Manifests built to hurt a YAML reader or what walks its output. */
const HOSTILE_MANIFESTS: Readonly<Record<string, string>> = {
  "alias cycle through a List": "kind: List\nitems: &x\n  - kind: List\n    items: *x\n",
  "a List that contains itself": "&x {kind: List, items: [*x]}\n",
  "a Service whose labels are itself": "&s {kind: Service, metadata: {name: web, labels: *s}}\n",
  "billion laughs": [
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
    "kind: Service",
    "metadata: {name: web}",
    "spec: {externalIPs: *f, ports: *f}",
  ].join("\n"),
  "deep nesting": "[".repeat(50_000) + "]".repeat(50_000),
  "deep mappings": "{a: ".repeat(20_000) + "1" + "}".repeat(20_000),
  "a JavaScript function tag": "kind: Service\nmetadata: !!js/function 'function () {}'\n",
  "merge keys": "base: &b {name: web}\nkind: Service\nmetadata: {<<: *b}\n",
  "duplicate keys": "kind: Service\nkind: Node\nmetadata: {name: web}\n",
  "huge numbers": "kind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 1e400}]}\n",
  "binary": "\u0000\u0001\u0002kind: Service\n\uffff",
  "a BOM and CRLF": "\ufeffkind: Service\r\nmetadata:\r\n  name: web\r\n",
  "many documents": "---\nkind: Service\nmetadata: {name: web}\n".repeat(2000),
};

Deno.test("hostile input: parseManifestText never throws", async (t) => {
  for (const [name, text] of Object.entries(HOSTILE_MANIFESTS)) {
    await t.step(name, () => {
      const started = performance.now();
      const r = parseManifestText(text, "hostile.yaml");
      for (const e of r.errors) {
        assert.ok(!/[\n\r]/.test(e.message), `one line: ${JSON.stringify(e.message)}`);
      }
      assert.ok(performance.now() - started < 5000, `${name} took too long`);
    });
  }
  // Valid-looking documents with random edits, and plain random text.
  const dumped = fc.array(fc.oneof(rawService, rawEndpointSlice, rawNode), { maxLength: 4 }).map(
    (objects) =>
      objects.map((o) => yaml.dump(JSON.parse(JSON.stringify(o)), { skipInvalid: true })).join(
        "---\n",
      ),
  );
  const edited = fc.tuple(
    dumped,
    fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.string()), { maxLength: 4 }),
  )
    .map(([text, edits]) => {
      let out = text;
      for (const [at, remove, insert] of edits) {
        const i = out.length === 0 ? 0 : at % out.length;
        out = out.slice(0, i) + insert + out.slice(i + remove);
      }
      return out;
    });
  fc.assert(
    fc.property(fc.oneof(dumped, edited, fc.string(), fc.string({ unit: "binary" })), (text) => {
      const r = parseManifestText(text, "fuzz.yaml");
      for (const e of r.errors) assert.ok(!/[\n\r]/.test(e.message), e.message);
    }),
    params,
  );
});

/** Renders a snapshot with both renderers and returns every problem found. */
function renderProblems(snapshot: ProxySnapshot): string[] {
  const nft = renderNftables(snapshot);
  const ipt = new IptablesRenderer().render(snapshot);
  const problems = [...nftProblems(nft), ...iptablesProblems(ipt)];
  for (const [name, text] of [["nft", nft], ["iptables", ipt]] as const) {
    if (text.includes(MARKER)) {
      const line = text.split("\n").find((l) => l.includes(MARKER));
      problems.push(`a hostile value reached the ${name} rules: ${JSON.stringify(line)}`);
    }
  }
  return problems;
}

Deno.test("hostile input: snapshots and both renderers stay inside the rule grammar", () => {
  let servicePorts = 0;
  let endpoints = 0;
  fc.assert(
    fc.property(rawWorld, settingsArb, (raws, settings) => {
      const snapshot = buildSnapshot(parseAll(raws), settings);
      servicePorts += snapshot.servicePorts.length;
      for (const sp of snapshot.servicePorts) {
        for (const f of sp.families) endpoints += f.endpoints.length;
      }
      assert.deepEqual(renderProblems(snapshot), []);
    }),
    params,
  );
  // The generators must reach the renderers with real content, or this test proves little.
  console.log(`  ${RUNS} worlds: ${servicePorts} service ports, ${endpoints} endpoints rendered`);
  assert.ok(servicePorts > RUNS / 2, `only ${servicePorts} service ports in ${RUNS} worlds`);
  assert.ok(endpoints > RUNS / 4, `only ${endpoints} endpoints in ${RUNS} worlds`);
});

Deno.test("hostile input: the grammar rejects what it must", () => {
  const nft = renderNftables(buildSnapshot([], {
    nodeName: "node-a",
    clusterCIDRs: [],
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: false,
    nodePortAddresses: [],
    hostAddresses: [],
  }));
  assert.deepEqual(nftProblems(nft), []);
  for (const bad of HOSTILE_STRINGS) {
    assert.notDeepEqual(nftProblems(`\tchain services {\n\t\tgoto ${bad}\n\t}`), [], bad);
    assert.notDeepEqual(
      iptablesProblems(`-A KUBE-SERVICES -m comment --comment "${bad}" -j KUBE-MARK-MASQ`),
      [],
      bad,
    );
  }
  assert.notDeepEqual(nftProblems("\t\tip daddr 198.18.0.999 tcp dport 80 goto services"), []);
  assert.notDeepEqual(nftProblems("\t\tip daddr 198.18.0.9 tcp dport 65536 goto services"), []);
  assert.notDeepEqual(nftProblems("\t\tmeta l4proto tcp dnat to 198.18.1.2:0"), []);
  assert.notDeepEqual(iptablesProblems("-A KUBE-SERVICES -d 198.18.0.1 --dport 0 -j DROP"), []);
  assert.notDeepEqual(
    iptablesProblems("-A KUBE-SEP-ABCDEFGHIJKLMNOP -j DNAT --to-destination [fd00::zz]:80"),
    [],
  );
});

Deno.test(requiring([netns], {
  name: "hostile input: random renders pass nft --check and iptables-restore --test",
  async fn() {
    const ns = `kp-rel-fuzz-${Deno.pid}`;
    await runTool("ip", ["netns", "add", ns]);
    try {
      const worlds = fc.sample(fc.tuple(rawWorld, settingsArb), {
        seed: SEED,
        numRuns: Number(Deno.env.get("KPROXY_FUZZ_KERNEL_RUNS") ?? (soak ? 300 : 24)),
      });
      // Overlapping --cluster-cidr values (an nft interval set rejects overlaps) come first.
      const overlapping: SnapshotSettings = {
        ...(worlds[0]?.[1] as SnapshotSettings),
        clusterCIDRs: ["198.18.0.0/17", "198.18.1.0/24", "fd00:1::/64", "fd00:1::/80"],
      };
      assert.deepEqual(buildSnapshot([], overlapping).options.clusterCIDRs, [
        "198.18.0.0/17",
        "fd00:1::/64",
      ]);
      worlds.unshift([worlds[0]?.[0] ?? [], overlapping]);
      let checked = 0;
      for (const [raws, settings] of worlds) {
        const snapshot = buildSnapshot(parseAll(raws), settings);
        const nft = await runToolResult("nft", ["--check", "-f", "-"], {
          netns: ns,
          stdin: renderNftables(snapshot),
        });
        assert.equal(nft.code, 0, `nft --check: ${nft.stderr}\n${JSON.stringify(raws)}`);
        const text = new IptablesRenderer().render(snapshot);
        const [v4 = "", v6 = ""] = text.split(/^# IPv6: .*\n/m);
        for (const [tool, input] of [["iptables-nft-restore", v4], ["ip6tables-nft-restore", v6]]) {
          const r = await runToolResult(tool as string, ["--noflush", "--test"], {
            netns: ns,
            stdin: input as string,
          });
          assert.equal(r.code, 0, `${tool} --test: ${r.stderr}\n${JSON.stringify(raws)}`);
        }
        checked++;
      }
      console.log(`  ${checked} random renders accepted by nft and iptables-restore`);
    } finally {
      await runToolResult("ip", ["netns", "del", ns]);
    }
  },
}));
