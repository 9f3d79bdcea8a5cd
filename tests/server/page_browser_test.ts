/**
 * Browser test: headless Chromium loads the status page from a running metrics server (loopback,
 * port 0) backed by deploy/examples, and the DOM it builds shows a service and its endpoints.
 * Needs Chromium (`apt-get install -y chromium`): skipped without it, failing under CI=true.
 *
 * IP plan (deploy/examples): node 198.18.0.10, pods 198.18.1.0/24, services 198.18.128.0/17.
 */
import assert from "node:assert/strict";
import { createMetricsApp } from "../../src/server/metrics_server.ts";
import { serveApp } from "../../src/server/serve.ts";
import { exampleRuntime } from "./_example_runtime.ts";
import { findExecutable, requirement, requiring } from "../requirements.ts";

const CHROMIUM_CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "headless_shell"];

/** $CHROMIUM, else the first Chromium on PATH. */
const chromium = Deno.env.get("CHROMIUM") ??
  CHROMIUM_CANDIDATES.map(findExecutable).find((p) => p !== null) ?? null;

/** A headless Chromium to drive. */
const chromiumRequirement = requirement(
  "chromium",
  () =>
    chromium === null
      ? "no chromium on PATH (apt-get install chromium, or set CHROMIUM=/path/to/chrome)"
      : null,
);

/** Runs headless Chromium with `args` + `url`; returns stdout. */
async function headless(args: string[], url: string): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "kproxy-chromium-" });
  try {
    const cmd = new Deno.Command(chromium as string, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        ...args,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    });
    const out = await cmd.output();
    const stdout = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(
        `Chromium exited with ${out.code}: ${new TextDecoder().decode(out.stderr).slice(-2000)}`,
      );
    }
    return stdout;
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

Deno.test(requiring([chromiumRequirement], {
  name: "status page in headless Chromium shows services and their endpoints",
  sanitizeResources: false, // Chromium's pipes close after the process exits
  async fn() {
    const { store, second } = await exampleRuntime();
    const abort = new AbortController();
    const server = serveApp(createMetricsApp(store), "127.0.0.1:0", abort.signal);
    try {
      const url = `http://127.0.0.1:${server.addr.port}/`;
      const dom = await headless(["--dump-dom"], url);
      // The DOM Chromium built (not our source text): parsed, with our structure.
      assert.match(dom, /<title>kproxy — node-a<\/title>/);
      const web = /<section class="svc" data-service="default\/web">([\s\S]*?)<\/section>/.exec(
        dom,
      );
      assert.ok(web, "the web service has a section");
      const section = web[1] as string;
      assert.match(section, /<tr data-port="default\/web:http">/);
      assert.match(section, /198\.18\.128\.10/);
      for (
        const ep of ["198.18.1.2:8080", "198.18.1.3:8080", "198.18.1.4:8080", "198.18.1.9:8080"]
      ) {
        assert.match(section, new RegExp(`data-endpoint="${ep.replace(/\./g, "\\.")}"`), ep);
      }
      assert.match(section, /<li class="ep local ready" data-endpoint="198\.18\.1\.2:8080">/);
      assert.match(section, /data-endpoint="198\.18\.1\.4:8080">.*terminating/);
      // The dual-stack LoadBalancer service lists both families.
      assert.match(dom, /data-service="shop\/api"/);
      assert.match(dom, /data-endpoint="\[fd00::1:30\]:8443"/);
      // The syncs table and the latest change.
      assert.match(dom, /<table class="syncs">/);
      assert.match(dom, new RegExp(`<code>${second.hash}</code>`));
      assert.match(dom, /\+endpoint 198\.18\.1\.9:8080/);

      const shot = Deno.env.get("KPROXY_SCREENSHOT");
      if (shot) {
        await headless([`--screenshot=${shot}`, "--window-size=1280,1400"], url);
        assert.ok(Deno.statSync(shot).size > 0);
      }
    } finally {
      abort.abort();
      await server.finished;
    }
  },
}));

Deno.test(requiring([chromiumRequirement], {
  name: "status page in headless Chromium offers the explain form, and its answer page renders",
  sanitizeResources: false, // Chromium's pipes close after the process exits
  async fn() {
    const { store, second } = await exampleRuntime();
    const abort = new AbortController();
    const server = serveApp(createMetricsApp(store), "127.0.0.1:0", abort.signal);
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const dom = await headless(["--dump-dom"], `${base}/`);
      const form = /<form class="explain" method="get" action="\/explain">([\s\S]*?)<\/form>/
        .exec(dom);
      assert.ok(form, "the status page has the explain form");
      assert.match(form[1] as string, /<input type="hidden" name="o" value="html">/);
      assert.match(form[1] as string, /<input name="to"/);
      assert.match(form[1] as string, /<input name="from"/);
      // What submitting the form asks for (a GET form: its fields as the query).
      const query = new URLSearchParams({ o: "html", to: "198.18.128.10:80", from: "198.18.1.50" });
      const answer = await headless(["--dump-dom"], `${base}/explain?${query}`);
      assert.match(answer, /<title>kproxy explain — node-a<\/title>/);
      assert.match(answer, /<p class="verdict" data-verdict="dnat">/);
      assert.match(answer, new RegExp(`<code>${second.hash}</code>`));
      const pre = /<pre class="answer">([\s\S]*?)<\/pre>/.exec(answer);
      assert.ok(pre, "the answer is shown");
      assert.match(pre[1] as string, /match +default\/web:http: ClusterIP 198\.18\.128\.10:80/);
      assert.match(pre[1] as string, /→ 198\.18\.1\.9:8080/);
      // The rule path (nftables: entry set, then the shared selection chain's endpoint map)
      // names what /rules shows for this snapshot: each chain it enters, the entry set's element
      // for the ClusterIP, and the endpoint-map element that sends to 198.18.1.9 (3rd of 3).
      const path = (pre[1] as string).replaceAll("&amp;", "&");
      assert.match(
        path,
        /\n {2}ip kproxy services\n {6}ip daddr \. meta l4proto \. th dport @clusterip-cluster-services goto clusterip-cluster {2}⇒ @clusterip-cluster-services\[198\.18\.128\.10 \. tcp \. 80\] → goto clusterip-cluster\n {2}ip kproxy clusterip-cluster\n/,
      );
      assert.match(
        path,
        /\n {2}ip kproxy select-cluster-endpoint\n(?: {6}.*\n)* {6}dnat ip to ip daddr \. meta l4proto \. th dport \. numgen random mod 3 offset 196608 map @cluster-endpoints {2}⇒ dnat to 198\.18\.1\.9:8080 \(endpoint 3 of 3\)/,
      );
      const rules = await (await fetch(`${base}/rules?hash=${second.hash}`)).text();
      const chains = [...path.matchAll(/^ {2}ip kproxy ([a-z0-9-]+)$/gm)].map((m) => m[1]);
      assert.ok(chains.includes("select-cluster-endpoint"), chains.join());
      for (const chain of chains) assert.match(rules, new RegExp(`\\tchain ${chain} \\{\\n`));
      assert.match(
        rules,
        /\tset clusterip-cluster-services \{\n[^}]*\t198\.18\.128\.10 \. tcp \. 80,?\n/,
      );
      assert.match(
        rules,
        /\tmap cluster-endpoints \{\n[^}]*\t198\.18\.128\.10 \. tcp \. 80 \. 196610 : 198\.18\.1\.9 \. 8080,?\n/,
      );
      // The form keeps what was asked.
      assert.match(answer, /<input name="to" value="198\.18\.128\.10:80"/);
    } finally {
      abort.abort();
      await server.finished;
    }
  },
}));
