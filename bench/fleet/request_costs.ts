/**
 * What one initial sync costs the API server, request by request: the Service and EndpointSlice
 * collections fetched each way a proxy could (JSON or protobuf, a list gzipped or not, a streamed
 * watch-list with `sendInitialEvents=true`), each `repeats` times with `curl` (kube-proxy's label
 * selector; a user agent that is not curl's, which the API server would pretty-print for), with
 * the bytes on the wire and the API server's CPU seconds per request. This is what decides which
 * way kproxy lists (gzipped JSON lists from the watch cache) and what its JSON costs next to
 * upstream's protobuf.
 *
 * @module
 */
import { runToolResult } from "../../src/apply/run_tool.ts";
import { PROXY_LABEL_SELECTOR } from "../../src/source/kubernetes_source.ts";
import type { TestCluster } from "../../tests/fixtures/apiserver.ts";
import { readProcess } from "./process_sampler.ts";

/** One way of fetching a collection, and what it cost. */
export interface RequestCost {
  /** `Service` or `EndpointSlice`. */
  readonly kind: string;
  /** e.g. `JSON list, gzip`. */
  readonly how: string;
  /** Bytes of the response body on the wire. */
  readonly bytes: number;
  /** API server CPU per request, s. */
  readonly cpuSeconds: number;
}

const COLLECTIONS: readonly (readonly [string, string])[] = [
  ["Service", "/api/v1/services"],
  ["EndpointSlice", "/apis/discovery.k8s.io/v1/endpointslices"],
];

const JSON_TYPE = "application/json";
const PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf";

interface Way {
  readonly how: string;
  readonly accept: string;
  readonly gzip: boolean;
  readonly query: string;
}

const LIST = "resourceVersion=0&limit=500";
const WATCH_LIST =
  "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1";

const WAYS: readonly Way[] = [
  { how: "JSON list", accept: JSON_TYPE, gzip: false, query: LIST },
  { how: "JSON list, gzip (kproxy)", accept: JSON_TYPE, gzip: true, query: LIST },
  { how: "JSON watch-list", accept: JSON_TYPE, gzip: true, query: WATCH_LIST },
  { how: "protobuf list", accept: PROTOBUF_TYPE, gzip: false, query: LIST },
  { how: "protobuf list, gzip (kube-proxy)", accept: PROTOBUF_TYPE, gzip: true, query: LIST },
  { how: "protobuf watch-list", accept: PROTOBUF_TYPE, gzip: true, query: WATCH_LIST },
];

/** Measures every way for both collections; `repeats` requests each. */
export async function measureRequestCosts(
  cluster: TestCluster,
  repeats: number,
): Promise<RequestCost[]> {
  const out: RequestCost[] = [];
  const selector = `labelSelector=${encodeURIComponent(PROXY_LABEL_SELECTOR)}`;
  for (const [kind, path] of COLLECTIONS) {
    for (const way of WAYS) {
      const pid = cluster.apiServerPid();
      if (pid === null) throw new Error("Cannot measure request costs: the API server is down");
      const before = (await readProcess(pid))?.ticks ?? 0;
      let bytes = 0;
      for (let i = 0; i < repeats; i++) {
        const r = await runToolResult("curl", [
          "-sk",
          "-A",
          "kproxy-fleet-bench",
          "-o",
          "/dev/null",
          "-w",
          "%{size_download} %{http_code}",
          "-H",
          `Authorization: Bearer ${cluster.token}`,
          "-H",
          `Accept: ${way.accept}`,
          ...(way.gzip ? ["-H", "Accept-Encoding: gzip"] : []),
          `${cluster.server}${path}?${selector}&${way.query}`,
        ], { timeoutMs: 120_000 });
        const [size = "0", code = "0"] = r.stdout.trim().split(" ");
        if (code !== "200") {
          throw new Error(`Cannot measure ${kind} ${way.how}: HTTP ${code} ${r.stderr.trim()}`);
        }
        bytes = Number(size);
      }
      // The API server accounts CPU to itself a little after the answer.
      await new Promise((r) => setTimeout(r, 300));
      const after = (await readProcess(pid))?.ticks ?? before;
      out.push({ kind, how: way.how, bytes, cpuSeconds: (after - before) / 100 / repeats });
    }
  }
  return out;
}
