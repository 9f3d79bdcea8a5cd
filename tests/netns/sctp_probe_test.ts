/**
 * The SCTP probe sends its INIT again, as an SCTP stack does: a first INIT lost on the way (here
 * dropped by an nft quota that matches only the first packet) is answered by the second, after
 * {@link SCTP_INIT_RETRANSMIT_MS}; a probe that gives up before then reports the drop. Runs in a
 * scratch namespace (loopback only), rules only there.
 */
import assert from "node:assert/strict";
import { runTool } from "../../src/apply/run_tool.ts";
import { netns, nft, requiring } from "../requirements.ts";
import { startAgent } from "./agent.ts";
import { SCTP_INIT_RETRANSMIT_MS } from "./_sctp_probe.ts";
import { withScratchNetns } from "./scratch_netns.ts";

const PORT = 9000;
/** An INIT over IPv4: 20 bytes of IP header, 12 of SCTP common header, 20 of INIT chunk. */
const INIT_BYTES = 52;

/** Drops the next SCTP packet to PORT arriving in `ns` (a quota the first INIT alone fits in). */
async function dropFirstInit(ns: string): Promise<void> {
  const script = `
    table inet kp_sctp_probe_test { }
    delete table inet kp_sctp_probe_test
    table inet kp_sctp_probe_test {
      chain in {
        type filter hook input priority 0;
        sctp dport ${PORT} quota until ${INIT_BYTES + 1} bytes drop
      }
    }
  `;
  await runTool("ip", ["netns", "exec", ns, "nft", "-f", "-"], { stdin: script });
}

Deno.test(requiring([netns, nft], {
  name: "SCTP probe: a lost first INIT is sent again and answered; a shorter wait reports a drop",
  async fn() {
    await withScratchNetns("kpsctp", async (ns) => {
      await runTool("ip", ["-n", ns, "link", "set", "lo", "up"]);
      const agent = await startAgent(ns, { name: "pod0", sctpPorts: [PORT] });
      try {
        const target = { protocol: "SCTP" as const, ip: "127.0.0.1", port: PORT };
        const [plain] = await agent.probeMany(target, 1, { timeoutMs: 2000 });
        assert.equal(plain?.kind, "answer", JSON.stringify(plain));

        await dropFirstInit(ns);
        const [impatient] = await agent.probeMany(target, 1, {
          timeoutMs: SCTP_INIT_RETRANSMIT_MS - 300,
        });
        assert.equal(impatient?.kind, "timeout", JSON.stringify(impatient));

        await dropFirstInit(ns);
        const [patient] = await agent.probeMany(target, 1, {
          timeoutMs: SCTP_INIT_RETRANSMIT_MS + 1500,
        });
        assert.equal(patient?.kind, "answer", JSON.stringify(patient));
        assert.ok(
          patient.ms >= SCTP_INIT_RETRANSMIT_MS,
          `answered after ${patient.ms} ms: the second INIT's answer`,
        );
      } finally {
        await agent.stop();
      }
    });
  },
}));
