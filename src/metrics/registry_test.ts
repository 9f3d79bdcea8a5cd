import assert from "node:assert/strict";
import {
  escapeHelp,
  escapeLabelValue,
  exponentialBuckets,
  formatSampleValue,
  linearBuckets,
  MetricsRegistry,
} from "./registry.ts";

Deno.test("exponentialBuckets and linearBuckets follow Prometheus' helpers", () => {
  assert.deepEqual(exponentialBuckets(0.001, 2, 4), [0.001, 0.002, 0.004, 0.008]);
  assert.deepEqual(linearBuckets(0.25, 0.25, 2), [0.25, 0.5]);
  assert.equal(exponentialBuckets(0.001, 2, 15).at(-1), 16.384);
});

Deno.test("label values escape backslash, quote and newline", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp('say "hi"\\\nbye'), 'say "hi"\\\\\\nbye');
});

Deno.test("sample values format like the Go client", () => {
  assert.equal(formatSampleValue(Infinity), "+Inf");
  assert.equal(formatSampleValue(-Infinity), "-Inf");
  assert.equal(formatSampleValue(NaN), "NaN");
  assert.equal(formatSampleValue(1.5), "1.5");
});

Deno.test("counter renders HELP, TYPE and sorted labelled series", () => {
  const reg = new MetricsRegistry();
  const c = reg.counter({ name: "x_total", help: "Things\nseen", labelNames: ["kind"] });
  assert.equal(reg.render(), "", "a labelled metric without series renders nothing");
  c.inc({ kind: "Service" });
  c.inc({ kind: 'E"S' }, 2);
  assert.equal(
    reg.render(),
    "# HELP x_total Things\\nseen\n# TYPE x_total counter\n" +
      'x_total{kind="E\\"S"} 2\nx_total{kind="Service"} 1\n',
  );
  assert.equal(c.get({ kind: "Service" }), 1);
});

Deno.test("unlabelled metrics render 0 before first use", () => {
  const reg = new MetricsRegistry();
  reg.gauge({ name: "g", help: "A gauge" });
  reg.counter({ name: "c_total", help: "A counter" });
  assert.equal(
    reg.render(),
    "# HELP c_total A counter\n# TYPE c_total counter\nc_total 0\n" +
      "# HELP g A gauge\n# TYPE g gauge\ng 0\n",
  );
});

Deno.test("gauge set and add", () => {
  const reg = new MetricsRegistry();
  const g = reg.gauge({ name: "g", help: "h", labelNames: ["a", "b"] });
  g.set(5, { a: "1", b: "2" });
  g.add(-2, { a: "1", b: "2" });
  assert.equal(g.get({ a: "1", b: "2" }), 3);
  assert.match(reg.render(), /^g\{a="1",b="2"\} 3$/m);
});

Deno.test("histogram buckets are cumulative with +Inf, sum and count", () => {
  const reg = new MetricsRegistry();
  const h = reg.histogram({ name: "d_seconds", help: "h", buckets: [0.1, 1] });
  h.observe(0.05);
  h.observe(0.5);
  h.observe(3);
  assert.equal(
    reg.render(),
    "# HELP d_seconds h\n# TYPE d_seconds histogram\n" +
      'd_seconds_bucket{le="0.1"} 1\nd_seconds_bucket{le="1"} 2\nd_seconds_bucket{le="+Inf"} 3\n' +
      "d_seconds_sum 3.55\nd_seconds_count 3\n",
  );
});

Deno.test("histogram with labels puts le last", () => {
  const reg = new MetricsRegistry();
  const h = reg.histogram({ name: "d", help: "h", buckets: [1], labelNames: ["ip_family"] });
  h.observe(1, { ip_family: "IPv4" });
  assert.match(reg.render(), /^d_bucket\{ip_family="IPv4",le="1"\} 1$/m);
  assert.match(reg.render(), /^d_count\{ip_family="IPv4"\} 1$/m);
});

Deno.test("wrong labels, names and buckets are rejected", () => {
  const reg = new MetricsRegistry();
  const c = reg.counter({ name: "c", help: "h", labelNames: ["code"] });
  assert.throws(() => c.inc({}), /label code is missing/);
  assert.throws(() => c.inc({ code: "200", extra: "x" }), /label extra is not declared/);
  assert.throws(() => c.inc({ code: "200" }, -1), /is negative/);
  assert.throws(() => reg.counter({ name: "c", help: "h" }), /already registered/);
  assert.throws(() => reg.counter({ name: "1bad", help: "h" }), /not a valid metric name/);
  assert.throws(() => reg.counter({ name: "ok", help: "h", labelNames: ["le"] }), /not allowed/);
  assert.throws(() => reg.histogram({ name: "h", help: "h", buckets: [2, 1] }), /must increase/);
});

Deno.test("initSeries makes a labelled series render at zero", () => {
  const reg = new MetricsRegistry();
  const c = reg.counter({ name: "f_total", help: "h", labelNames: ["ip_family"] });
  c.initSeries({ ip_family: "IPv4" });
  assert.match(reg.render(), /^f_total\{ip_family="IPv4"\} 0$/m);
});
