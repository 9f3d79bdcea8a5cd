/**
 * Tests of the netns harness itself, without kproxy: topologies come up and go away, pod servers
 * answer with their names, probes tell answers, refusals and timeouts apart, and a hand-written
 * nft DNAT in the node namespace reaches pods (client IP preserved, or masqueraded).
 *
 * IP plan (see topology.ts): pods 198.18.1.10-12 / fd00:1::10-12, node 198.18.0.1 (loopback)
 * and 198.19.0.1 (client link), client 198.19.0.2, client2 198.19.1.2, VIPs 198.18.128.1-3 and
 * fd00:128::1. Rules go only in the test's node namespace, in table `kp_harness_test`.
 */
import assert from "node:assert/strict";
import { runToolResult } from "../../src/apply/run_tool.ts";
import {
  CLIENT2_IPV4,
  CLIENT_IPV4,
  createTopology,
  NODE_INTERNAL_IPV4,
  podIPv4,
  podIPv6,
  sweepStaleNamespaces,
  withTopology,
} from "./topology.ts";
import { netns, requiring } from "../requirements.ts";

async function netnsList(): Promise<string> {
  const r = await runToolResult("ip", ["netns", "list"]);
  return r.stdout;
}

Deno.test(requiring([netns], {
  name: "harness: topology comes up and goes away without leftovers",
  async fn() {
    const topology = await createTopology({ pods: 2, secondClient: true });
    let torn = false;
    try {
      const listed = await netnsList();
      for (const ns of topology.namespaces) assert.ok(listed.includes(ns), `${ns} exists`);
      assert.equal(topology.namespaces.length, 5);
      assert.ok(topology.namespaces.every((ns) => ns.startsWith("kp") && ns.length <= 15));
      assert.equal(topology.nodeNetns, `${topology.id}-node`);
      const forward = await topology.exec("node", ["sysctl", "-n", "net.ipv4.ip_forward"]);
      assert.equal(forward.stdout.trim(), "1");
      const routes = await topology.exec("node", ["ip", "route", "show"]);
      assert.match(routes.stdout, new RegExp(`${podIPv4(1).replaceAll(".", "\\.")} dev pod1`));
      await topology.teardown();
      torn = true;
      await topology.teardown(); // twice is fine
      const after = await netnsList();
      assert.ok(!after.includes(topology.id), `no namespace of ${topology.id} left:\n${after}`);
    } finally {
      if (!torn) await topology.teardown();
    }
  },
}));

Deno.test(requiring([netns], {
  name: "harness: namespaces left by a killed run are swept, live ones are kept",
  async fn() {
    // A process that has exited: its pid names the "killed run".
    const child = new Deno.Command("true").spawn();
    await child.status;
    const stale = `kp${child.pid.toString(36)}xzz-node`;
    const add = await runToolResult("ip", ["netns", "add", stale]);
    assert.equal(add.code, 0, add.stderr);
    try {
      await withTopology({ pods: 1, startServers: false }, async (topology) => {
        const swept = await sweepStaleNamespaces();
        assert.ok(swept.includes(stale), `swept ${swept.join(", ")}`);
        assert.ok(!swept.some((ns) => ns.startsWith(topology.id)), "live namespaces kept");
        const listed = await netnsList();
        assert.ok(!listed.includes(stale));
        assert.ok(listed.includes(topology.nodeNetns));
      });
    } finally {
      await runToolResult("ip", ["netns", "del", stale]);
    }
  },
}));

Deno.test(requiring([netns], {
  name: "harness: withTopology tears down when the callback throws",
  async fn() {
    let id = "";
    await assert.rejects(
      withTopology({ pods: 1 }, (topology) => {
        id = topology.id;
        return Promise.reject(new Error("boom"));
      }),
      /boom/,
    );
    assert.notEqual(id, "");
    assert.ok(!(await netnsList()).includes(id));
  },
}));

Deno.test(requiring([netns], {
  name: "harness: pod servers answer with their name and the client IP, TCP and UDP, IPv4 and IPv6",
  async fn() {
    await withTopology({ pods: 3 }, async (topology) => {
      for (const [i, pod] of topology.pods.entries()) {
        for (const protocol of ["TCP", "UDP"] as const) {
          for (const ip of [podIPv4(i), podIPv6(i)]) {
            const r = await topology.probe("client", { protocol, ip, port: 8080 });
            assert.equal(r.kind, "answer", `${protocol} ${ip}: ${JSON.stringify(r)}`);
            if (r.kind !== "answer") continue;
            assert.equal(r.pod, pod.name);
            assert.equal(r.clientIP, ip.includes(":") ? topology.client.ipv6 : CLIENT_IPV4);
            assert.equal(r.clientIP, r.localIP);
          }
        }
      }
      // From the node (source: its loopback address) and from another pod.
      const fromNode = await topology.probe("node", {
        protocol: "TCP",
        ip: podIPv4(2),
        port: 8081,
      });
      assert.deepEqual(
        [fromNode.kind, fromNode.kind === "answer" && fromNode.clientIP],
        ["answer", NODE_INTERNAL_IPV4],
      );
      const fromPod = await topology.probe("pod0", { protocol: "UDP", ip: podIPv6(1), port: 8081 });
      assert.ok(
        fromPod.kind === "answer" && fromPod.pod === "pod1" && fromPod.clientIP === podIPv6(0),
      );
    });
  },
}));

Deno.test(requiring([netns], {
  name: "harness: probes report refused for closed ports and timeout for unrouted VIPs",
  async fn() {
    await withTopology({ pods: 1 }, async (topology) => {
      for (const protocol of ["TCP", "UDP"] as const) {
        for (const ip of [podIPv4(0), podIPv6(0)]) {
          const r = await topology.probe("client", { protocol, ip, port: 8099 });
          assert.equal(r.kind, "refused", `${protocol} ${ip}: ${JSON.stringify(r)}`);
          assert.ok(r.ms < 200, `refused at once (${r.ms} ms)`);
        }
      }
      const none = await topology.probe(
        "node",
        { protocol: "TCP", ip: "198.18.128.99", port: 80 },
        { timeoutMs: 150 },
      );
      assert.equal(none.kind, "timeout");
      const noneUdp = await topology.probe(
        "client",
        { protocol: "UDP", ip: "198.18.128.99", port: 53 },
        { timeoutMs: 150 },
      );
      assert.equal(noneUdp.kind, "timeout");
    });
  },
}));

const HAND_WRITTEN_RULES = `
table inet kp_harness_test {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump services
  }
  chain output {
    type nat hook output priority -100; policy accept;
    jump services
  }
  chain services {
    ip daddr 198.18.128.1 meta l4proto { tcp, udp } th dport 80 dnat ip to 198.18.1.10:8080
    ip daddr 198.18.128.3 tcp dport 80 dnat ip to numgen random mod 3 map { 0 : 198.18.1.10, 1 : 198.18.1.11, 2 : 198.18.1.12 } : 8080
    ip6 daddr fd00:128::1 tcp dport 80 dnat ip6 to [fd00:1::11]:8080
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr ${CLIENT2_IPV4} masquerade
  }
  chain filter {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.18.128.2 reject
  }
  chain filter_out {
    type filter hook output priority 0; policy accept;
    ip daddr 198.18.128.2 reject
  }
}
`;

Deno.test(requiring([netns], {
  name: "harness: a hand-written nft DNAT in the node namespace makes a VIP reach pods",
  async fn() {
    await withTopology({ pods: 3, secondClient: true }, async (topology) => {
      const load = await runToolResult("nft", ["-f", "-"], {
        stdin: HAND_WRITTEN_RULES,
        netns: topology.nodeNetns,
      });
      assert.equal(load.code, 0, load.stderr);

      const vip = { protocol: "TCP", ip: "198.18.128.1", port: 80 } as const;
      // External client: DNAT only, so the pod sees the client's own address.
      const direct = await topology.distribution("client", vip, 10);
      assert.deepEqual(direct.answers, { pod0: 10 });
      assert.equal(direct.preserved, 10);
      // Second client: masqueraded to the node's address on the pod's link (its loopback).
      const masq = await topology.distribution("client2", { ...vip, protocol: "UDP" }, 10);
      assert.deepEqual(masq.answers, { pod0: 10 });
      assert.deepEqual(masq.clientIPs, { [NODE_INTERNAL_IPV4]: 10 });
      assert.equal(masq.preserved, 0);
      // From the node itself (OUTPUT DNAT) and from a pod.
      const fromNode = await topology.probe("node", vip);
      assert.ok(fromNode.kind === "answer" && fromNode.pod === "pod0", JSON.stringify(fromNode));
      const fromPod = await topology.probe("pod2", vip);
      assert.ok(fromPod.kind === "answer" && fromPod.clientIP === podIPv4(2));
      // Random spread over three pods.
      const spread = await topology.distribution("client", { ...vip, ip: "198.18.128.3" }, 60);
      assert.deepEqual(Object.keys(spread.answers).sort(), ["pod0", "pod1", "pod2"]);
      for (const n of Object.values(spread.answers)) assert.ok(n >= 5, JSON.stringify(spread));
      // IPv6 DNAT.
      const v6 = await topology.probe("client", { protocol: "TCP", ip: "fd00:128::1", port: 80 });
      assert.ok(v6.kind === "answer" && v6.pod === "pod1" && v6.clientIP === topology.client.ipv6);
      // REJECT: refused at once, TCP and UDP, forwarded and local.
      for (const from of ["client", "node"]) {
        for (const protocol of ["TCP", "UDP"] as const) {
          const r = await topology.probe(from, { protocol, ip: "198.18.128.2", port: 80 });
          assert.equal(r.kind, "refused", `${from} ${protocol}: ${JSON.stringify(r)}`);
        }
      }
      // The table exists only in the test's node namespace.
      const mine = await runToolResult("nft", ["list", "tables"], { netns: topology.nodeNetns });
      assert.match(mine.stdout, /kp_harness_test/);
      const pod = await runToolResult("nft", ["list", "tables"], {
        netns: topology.pods[0]!.netns,
      });
      assert.doesNotMatch(pod.stdout, /kp_harness_test/);
    });
  },
}));
