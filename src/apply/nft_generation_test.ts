/** nf_tables generation: request and reply encoding, and a real read in a fresh namespace. */
import assert from "node:assert/strict";
import {
  generationRequest,
  nextGeneration,
  parseGenerationReply,
  readNftGeneration,
} from "./nft_generation.ts";
import { runTool } from "./run_tool.ts";
import { netns, nft, requiring } from "../../tests/requirements.ts";

function reply(genid: number, type = (10 << 8) | 15): Uint8Array {
  const msg = new Uint8Array(36);
  const view = new DataView(msg.buffer);
  view.setUint32(0, 36, true);
  view.setUint16(4, type, true);
  // NFTA_GEN_PROC_PID first, then NFTA_GEN_ID (attribute order is not fixed).
  view.setUint16(20, 8, true);
  view.setUint16(22, 2, true);
  view.setUint32(24, 4242, false);
  view.setUint16(28, 8, true);
  view.setUint16(30, 1, true);
  view.setUint32(32, genid, false);
  return msg;
}

Deno.test("nft generation: GETGEN request and NEWGEN reply", () => {
  const request = new DataView(generationRequest(7).buffer);
  assert.equal(request.getUint32(0, true), 20);
  assert.equal(request.getUint16(4, true), 0x0a10);
  assert.equal(request.getUint16(6, true), 1);
  assert.equal(request.getUint32(8, true), 7);
  assert.equal(parseGenerationReply(reply(0x01020304)), 0x01020304);
  assert.equal(parseGenerationReply(reply(5, 2)), null, "an NLMSG_ERROR is no generation");
  assert.equal(parseGenerationReply(new Uint8Array(8)), null);
  assert.equal(nextGeneration(41), 42);
  assert.equal(nextGeneration(0xffffffff), 1);
});

Deno.test(requiring([netns, nft], {
  name: "nft generation: moves by one per transaction in this namespace, by anyone",
  async fn() {
    // Read from inside a namespace of the test's own: this file's reader runs there.
    const ns = `kpx-gen-${crypto.randomUUID().slice(0, 8)}`;
    await runTool("ip", ["netns", "add", ns]);
    try {
      const read = async () => {
        const module = new URL("./nft_generation.ts", import.meta.url).href;
        const r = await runTool(Deno.execPath(), [
          "eval",
          `import { readNftGeneration } from "${module}"; console.log(readNftGeneration());`,
        ], { netns: ns });
        return Number(r.trim());
      };
      const g0 = await read();
      assert.ok(Number.isInteger(g0) && g0 > 0, `generation ${g0}`);
      assert.equal(await read(), g0, "reading does not move it");
      await runTool("nft", ["add", "table", "ip", "kpx-test"], { netns: ns });
      assert.equal(await read(), nextGeneration(g0));
      await runTool("nft", ["-f", "-"], {
        netns: ns,
        stdin: "add chain ip kpx-test a\nadd chain ip kpx-test b\n",
      });
      assert.equal(await read(), nextGeneration(nextGeneration(g0)), "one transaction, one step");
      assert.equal(typeof readNftGeneration(), "number", "readable in the test's own namespace");
    } finally {
      await runTool("ip", ["netns", "delete", ns]);
    }
  },
}));
