/**
 * The explain form and its answer page (pure, server-rendered, no scripts): the form sits on the
 * status page and submits to `/explain?o=html`, which shows the answer in words with links to the
 * JSON and to `/rules`, where the chains it names are.
 */
import type { ExplainAnswer } from "../explain/answer.ts";
import { formatExplanation } from "../explain/format.ts";
import { markup, type SafeHtml, trustedHtml } from "./_html.ts";

/** The form: destination `ADDR:PORT[/proto]` and an optional source. */
export function explainForm(to = "", from = ""): SafeHtml {
  return markup`<form class="explain" method="get" action="/explain">
<input type="hidden" name="o" value="html">
<label>to <input name="to" value="${to}" placeholder="198.18.128.10:80/tcp" required size="28"></label>
<label>from <input name="from" value="${from}" placeholder="(this node)" size="22"></label>
<button type="submit">Explain</button>
<span class="muted">where a new connection goes on this node, and why</span>
</form>`;
}

/** What the answer page shows. */
export interface ExplainPageView {
  /** This node's name. */
  readonly node: string;
  /** The `to` text as given. */
  readonly to: string;
  /** The `from` text as given. */
  readonly from: string;
  /** The answer, when there is one. */
  readonly answer: ExplainAnswer | null;
  /** A mistake in the query, or why there is no answer. */
  readonly error: string | null;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d3b5a;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}header a{color:#cfe3ff}
main{padding:8px 24px 32px;max-width:1200px}
form.explain{margin:16px 0}form.explain input{font:13px ui-monospace,monospace}
pre.answer{background:#fff;border:1px solid #d5dae0;border-radius:6px;padding:10px;overflow:auto;font:12px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace}
.error{background:#fde2e1;color:#8a1c1c;padding:6px 10px;border-radius:6px}
.muted{color:#6b7680}
`;

/** The answer page. */
export function renderExplainPage(view: ExplainPageView): string {
  const { answer } = view;
  const query = `to=${encodeURIComponent(view.to)}${
    view.from === "" ? "" : `&from=${encodeURIComponent(view.from)}`
  }`;
  const body = view.error !== null
    ? markup`<p class="error">${view.error}</p>`
    : answer === null
    ? markup`<p class="muted">Give a destination such as <code>198.18.128.10:80</code>, <code>[fd00::10]:53/udp</code> or a NodePort on a node address; leave "from" empty for a packet the node sends itself.</p>`
    : markup`<p class="verdict" data-verdict="${answer.verdict.kind}">Snapshot <code>${answer.snapshot}</code>, ${answer.mode} rules (<a href="${`/explain?${query}`}">JSON</a>, <a href="/rules">/rules</a>).</p>
<pre class="answer">${formatExplanation(answer)}</pre>`;
  return markup`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kproxy explain — ${view.node}</title><style>${trustedHtml(STYLE)}</style></head>
<body><header><h1>kproxy explain — ${view.node}</h1><a href="/">status page</a></header>
<main>${explainForm(view.to, view.from)}${body}</main></body></html>
`.html;
}
