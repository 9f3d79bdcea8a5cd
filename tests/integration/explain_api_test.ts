/**
 * `kproxy explain --kubeconfig`: one list of a real kube-apiserver (the Go fixture) is the
 * snapshot explain answers from. IP plan: pods 198.18.1.10+, ClusterIPs from 198.18.128.0/17.
 */
import assert from "node:assert/strict";
import { startTestCluster } from "../fixtures/apiserver.ts";
import { goFixtures, requiring } from "../requirements.ts";
import { TestApi } from "./_api.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

Deno.test(requiring([goFixtures], {
  name: "kproxy explain --kubeconfig answers from what the API server holds",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await startTestCluster();
    try {
      const api = new TestApi(cluster.kubeconfigPath);
      await api.setNodeZone("node-a", "a");
      const clusterIP = await api.createService("web");
      await api.createSlice("web", "web-1", [
        { ip: "198.18.1.10", nodeName: "node-a" },
        { ip: "198.18.1.11", nodeName: "node-b", ready: false },
      ]);
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${ROOT}/src/cli/main.ts`,
          "explain",
          "--kubeconfig",
          cluster.kubeconfigPath,
          "--hostname-override",
          "node-a",
          "--to",
          `${clusterIP}:80`,
          "--from",
          "198.18.1.50",
          "-o",
          "json",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const answer = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(answer.match.servicePort, "default/web:http");
      assert.equal(answer.match.address, clusterIP);
      assert.deepEqual(answer.endpoints.map((e: { ip: string }) => e.ip), ["198.18.1.10"]);
      assert.equal(answer.excluded[0].ip, "198.18.1.11");
      assert.equal(answer.excluded[0].reasons[0].kind, "not-ready");
      assert.equal(answer.node, "node-a");
    } finally {
      await cluster.stop();
    }
  },
}));
