/**
 * The comparator: equal outcomes agree, every way of differing is named, luck (affinity) and the
 * README's deliberate differences are classified, not hidden.
 *
 * IP plan: tests/netns/two_node_plan.ts.
 */
import assert from "node:assert/strict";
import { lbService, readyEndpoint } from "./_fixtures.ts";
import { cellDifferences, compareTables, type OutcomeTable } from "./comparator.ts";
import { classifyDivergence, hasConflictingDuplicates } from "./deliberate.ts";
import { buildMatrix, type Cell } from "./matrix.ts";
import { type CellOutcome, summarizeHealth } from "./outcome.ts";

const CELL: Cell = {
  id: "web:http/TCP ClusterIP 198.18.130.10:80 from pod on A",
  service: "web",
  portName: "http",
  protocol: "TCP",
  family: "IPv4",
  kind: "ClusterIP",
  ip: "198.18.130.10",
  port: 80,
  source: "pod on A",
  count: 9,
  affinity: false,
};

function outcome(o: Partial<CellOutcome>): CellOutcome {
  return {
    answers: [],
    clientIPs: [],
    refused: [],
    timeouts: 0,
    total: 9,
    ...o,
  };
}

const A1_B1 = outcome({
  answers: ["a1:8080", "b1:8080"],
  clientIPs: ["198.18.2.10"],
});

Deno.test("comparator: equal outcomes agree; each difference has its kind", () => {
  assert.deepEqual(cellDifferences(CELL, A1_B1, A1_B1), []);
  assert.deepEqual(cellDifferences(CELL, A1_B1, outcome({ timeouts: 9 })), ["reachability"]);
  assert.deepEqual(
    cellDifferences(CELL, outcome({ refused: ["ECONNREFUSED"] }), outcome({ timeouts: 9 })),
    ["reachability"],
  );
  assert.deepEqual(
    cellDifferences(CELL, A1_B1, { ...A1_B1, answers: ["a1:8080"] }),
    ["endpoints"],
  );
  assert.deepEqual(
    cellDifferences(CELL, A1_B1, { ...A1_B1, clientIPs: ["198.18.0.1"] }),
    ["client address"],
  );
  assert.deepEqual(
    cellDifferences(
      CELL,
      outcome({ refused: ["ECONNREFUSED"] }),
      outcome({ refused: ["EHOSTUNREACH"] }),
    ),
    ["refusal type"],
  );
  // A mixed outcome (some answers, some drops) must be mixed on both sides.
  assert.deepEqual(cellDifferences(CELL, A1_B1, { ...A1_B1, timeouts: 3 }), ["reachability"]);
});

Deno.test("comparator: with ClientIP affinity, which endpoint and its address are luck", () => {
  const sticky = { ...CELL, affinity: true };
  const onA = outcome({
    answers: ["a2:8080"],
    clientIPs: ["198.18.0.1"],
  });
  const onB = outcome({
    answers: ["b0:8080"],
    clientIPs: ["198.19.1.1"],
  });
  assert.deepEqual(cellDifferences(sticky, onA, onB), []);
  // A pod that reached itself is hairpinned: luck again.
  const self = outcome({ answers: ["a0:8080"], clientIPs: ["198.18.0.1"] });
  assert.deepEqual(cellDifferences(sticky, self, onA), []);
  // The same endpoint must see the same address.
  const unmasked = outcome({ answers: ["a2:8080"], clientIPs: ["198.18.2.10"] });
  assert.deepEqual(cellDifferences(sticky, onA, unmasked), ["client address"]);
  assert.deepEqual(cellDifferences(sticky, onA, A1_B1), ["endpoints"]);
  // An endpoint on a closed pod port refuses: sticking to it or to one that answers is luck.
  const lucky = { ...sticky, luckyReachability: true };
  const closed = outcome({ refused: ["ECONNREFUSED"] });
  assert.deepEqual(cellDifferences(lucky, onA, closed), []);
  assert.deepEqual(cellDifferences(lucky, A1_B1, closed), ["endpoints"]);
});

function table(cells: Record<string, CellOutcome>, health: Record<string, [number, string]> = {}) {
  return {
    cells: new Map(Object.entries(cells)),
    health: new Map(Object.entries(health).map(([k, [s, b]]) => [k, summarizeHealth(s, b)])),
  } satisfies OutcomeTable;
}

Deno.test("comparator: tables → divergences, deliberate ones classified with their README row", () => {
  const cluster = { services: [lbService()] };
  const matrix = buildMatrix(cluster);
  const cell = matrix.cells.find((c) => c.kind === "ClusterIP" && c.family === "IPv4")!;
  const refused = outcome({ refused: ["ECONNREFUSED"] });
  const unreachable = outcome({ refused: ["EHOSTUNREACH"] });
  const same = { [cell.id]: A1_B1 };
  assert.deepEqual(
    compareTables(cluster, matrix, { kproxy: table(same), upstream: table(same) }),
    [],
  );
  const [deliberate] = compareTables(cluster, matrix, {
    kproxy: table({ [cell.id]: refused }),
    upstream: table({ [cell.id]: unreachable }),
  });
  assert.equal(deliberate?.deliberate?.id, "reset-vs-icmp");
  const [unexplained] = compareTables(cluster, matrix, {
    kproxy: table({ [cell.id]: A1_B1 }),
    upstream: table({ [cell.id]: refused }),
  });
  assert.deepEqual(unexplained?.kinds, ["reachability"]);
  assert.equal(unexplained?.deliberate, null);
  // Health: timestamps never count; anything else does.
  const body = (n: number) =>
    JSON.stringify({
      lastUpdated: `2026-01-0${n}`,
      nodeEligible: true,
      status: { IPv4: { lastUpdated: n } },
    });
  assert.deepEqual(
    compareTables(cluster, matrix, {
      kproxy: table({}, { "/healthz": [200, body(1)] }),
      upstream: table({}, { "/healthz": [200, body(2)] }),
    }),
    [],
  );
  const [health] = compareTables(cluster, matrix, {
    kproxy: table({}, { "/healthz": [200, body(1)] }),
    upstream: table({}, { "/healthz": [503, body(1)] }),
  });
  assert.deepEqual(health?.kinds, ["health"]);
});

Deno.test("deliberate: duplicate endpoints only conflict when equally local copies differ", () => {
  const slice = (name: string, eps: ReturnType<typeof readyEndpoint>[]) => ({
    name,
    family: "IPv4" as const,
    ports: [{ name: "http", protocol: "TCP" as const, port: 8080 }],
    endpoints: eps,
  });
  const same = lbService({
    slices: [slice("s1", [readyEndpoint("a1")]), slice("s2", [readyEndpoint("a1")])],
  });
  assert.equal(hasConflictingDuplicates(same, "IPv4", "http"), false);
  const conflicting = lbService({
    slices: [
      slice("s1", [readyEndpoint("a1")]),
      slice("s2", [readyEndpoint("a1", { ready: false, serving: true, terminating: true })]),
    ],
  });
  assert.equal(hasConflictingDuplicates(conflicting, "IPv4", "http"), true);
  assert.equal(hasConflictingDuplicates(conflicting, "IPv6", "http"), false);
  // A local copy wins in both proxies: no luck involved.
  const locality = lbService({
    slices: [
      slice("s1", [readyEndpoint("a1")]),
      slice("s2", [readyEndpoint("a1", { ready: false, nodeName: false })]),
    ],
  });
  assert.equal(hasConflictingDuplicates(locality, "IPv4", "http"), false);
});

Deno.test("deliberate: kube-proxy answering a healthCheckNodePort with the other family's count", () => {
  // web: a1 local and ready in IPv4, nothing local in IPv6.
  const svc = lbService({
    slices: [...lbService().slices, {
      name: "web-6",
      family: "IPv6",
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
      endpoints: [readyEndpoint("b1")],
    }],
  });
  const check = {
    id: "web healthCheckNodePort 198.19.0.1:32000",
    kind: "healthCheckNodePort" as const,
    service: "web",
    ip: "198.19.0.1",
    port: 32000,
    path: "/",
    source: "client" as const,
  };
  const body = (n: number) =>
    summarizeHealth(n > 0 ? 200 : 503, JSON.stringify({ localEndpoints: n })).body;
  const health = (kp: number, up: number) => ({
    subject: "health" as const,
    check,
    kinds: ["health"],
    kproxy: { status: kp > 0 ? 200 : 503, body: body(kp) },
    upstream: { status: up > 0 ? 200 : 503, body: body(up) },
  });
  // kproxy: the IPv4 count (1); kube-proxy: the IPv6 count (0), on any address.
  assert.equal(classifyDivergence(health(1, 0), svc)?.id, "dual-stack-health-check-node-port");
  const v6Check = { ...check, ip: "fd00:19::1" };
  assert.equal(
    classifyDivergence({ ...health(1, 0), check: v6Check }, svc)?.id,
    "dual-stack-health-check-node-port",
  );
  // Any other count is unexplained, and so is kproxy giving the IPv6 count.
  assert.equal(classifyDivergence(health(1, 2), svc), null);
  assert.equal(classifyDivergence(health(0, 1), svc), null);
  assert.equal(
    classifyDivergence(health(1, 0), { ...svc, ipFamilies: ["IPv4"] }),
    null,
    "single-stack",
  );
});
