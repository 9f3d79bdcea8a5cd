/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4) that every Prometheus scraper reads.
 */

/** The `Content-Type` of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string>>;

/** What every metric is declared with. */
export interface MetricOptions {
  /** Full metric name, e.g. `kubeproxy_sync_proxy_rules_duration_seconds`. */
  readonly name: string;
  /** One-line help text. */
  readonly help: string;
  /** Names of the labels every series of this metric carries (default none). */
  readonly labelNames?: readonly string[];
}

/** Options of a histogram: a metric plus its upper bucket bounds. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, strictly increasing; `+Inf` is implied. */
  readonly buckets: readonly number[];
}

/** The metric types the registry renders. */
export type MetricType = "counter" | "gauge" | "histogram";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `n` buckets starting at `start`, each `factor` times the one before (Prometheus' helper). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  let bound = start;
  for (let i = 0; i < count; i++) {
    out.push(bound);
    bound *= factor;
  }
  return out;
}

/** `count` buckets starting at `start`, `width` apart (Prometheus' helper). */
export function linearBuckets(start: number, width: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(start + i * width);
  return out;
}

/** Escapes a label value: backslash, double quote and line feed, per the exposition format. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes `# HELP` text: backslash and line feed, per the exposition format. */
export function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Formats a sample value the way Prometheus' Go client does (`+Inf`, `-Inf`, `NaN`). */
export function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function formatLabels(pairs: readonly (readonly [string, string])[]): string {
  if (pairs.length === 0) return "";
  return "{" + pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",") + "}";
}

/** Shared label handling of all metric kinds. */
abstract class Metric<S> {
  /** Full metric name. */
  readonly name: string;
  /** Help text. */
  readonly help: string;
  /** Label names, in declaration order. */
  readonly labelNames: readonly string[];
  /** The Prometheus type. */
  abstract readonly type: MetricType;
  protected readonly series = new Map<string, { labels: string[]; state: S }>();

  constructor(options: MetricOptions) {
    if (!METRIC_NAME.test(options.name)) {
      throw new Error(`Cannot register metric ${options.name}: name is not a valid metric name`);
    }
    const labelNames = options.labelNames ?? [];
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__") || label === "le") {
        throw new Error(`Cannot register metric ${options.name}: label ${label} is not allowed`);
      }
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = Object.freeze([...labelNames]);
  }

  protected abstract initial(): S;

  /** The state of the series with these labels, created on first use. */
  protected at(labels: Labels): S {
    const values: string[] = [];
    for (const name of this.labelNames) {
      const value = labels[name];
      if (value === undefined) {
        throw new Error(`Cannot update metric ${this.name}: label ${name} is missing`);
      }
      values.push(value);
    }
    for (const name of Object.keys(labels)) {
      if (!this.labelNames.includes(name)) {
        throw new Error(`Cannot update metric ${this.name}: label ${name} is not declared`);
      }
    }
    const key = JSON.stringify(values);
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { labels: values, state: this.initial() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  /** Creates the series with these labels at zero, so it renders before its first update. */
  initSeries(labels: Labels): void {
    this.at(labels);
  }

  /** Forgets every labelled series (an unlabelled metric keeps rendering 0). */
  reset(): void {
    this.series.clear();
  }

  /** The series sorted by label values, each with its label pairs. */
  protected sortedSeries(): { pairs: [string, string][]; state: S }[] {
    if (this.labelNames.length === 0 && this.series.size === 0) this.at({});
    const entries = [...this.series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return entries.map(([, { labels, state }]) => ({
      pairs: labels.map((v, i) => [this.labelNames[i] as string, v]),
      state,
    }));
  }

  /** The sample lines of this metric, without `# HELP`/`# TYPE`. */
  abstract samples(): string[];

  /** The whole metric family in the text format (empty when a labelled metric has no series). */
  render(): string {
    const samples = this.samples();
    if (samples.length === 0) return "";
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n` +
      samples.join("\n") + "\n";
  }
}

/** A value that only goes up (reset only by a restart). */
export class Counter extends Metric<{ value: number }> {
  /** Always `counter`. */
  readonly type = "counter" as const;

  protected initial(): { value: number } {
    return { value: 0 };
  }

  /** Adds `by` (default 1, never negative) to the series with these labels. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`Cannot increment counter ${this.name}: ${by} is negative`);
    this.at(labels).value += by;
  }

  /** The current value of one series (0 when never touched). */
  get(labels: Labels = {}): number {
    return this.at(labels).value;
  }

  /** The sample lines. */
  samples(): string[] {
    return this.sortedSeries().map(({ pairs, state }) =>
      `${this.name}${formatLabels(pairs)} ${formatSampleValue(state.value)}`
    );
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric<{ value: number }> {
  /** Always `gauge`. */
  readonly type = "gauge" as const;

  protected initial(): { value: number } {
    return { value: 0 };
  }

  /** Sets the series with these labels. */
  set(value: number, labels: Labels = {}): void {
    this.at(labels).value = value;
  }

  /** Adds `by` (may be negative) to the series with these labels. */
  add(by: number, labels: Labels = {}): void {
    this.at(labels).value += by;
  }

  /** The current value of one series (0 when never touched). */
  get(labels: Labels = {}): number {
    return this.at(labels).value;
  }

  /** The sample lines. */
  samples(): string[] {
    return this.sortedSeries().map(({ pairs, state }) =>
      `${this.name}${formatLabels(pairs)} ${formatSampleValue(state.value)}`
    );
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** Counts observations into cumulative buckets, with their sum and count. */
export class Histogram extends Metric<HistogramState> {
  /** Always `histogram`. */
  readonly type = "histogram" as const;
  /** Upper bounds of the buckets (without `+Inf`). */
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions) {
    super(options);
    const buckets = options.buckets.filter((b) => b !== Infinity);
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i] as number;
      if (!Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] as number))) {
        throw new Error(`Cannot register histogram ${options.name}: buckets must increase`);
      }
    }
    this.buckets = Object.freeze(buckets);
  }

  protected initial(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  /** Records one observation in the series with these labels. */
  observe(value: number, labels: Labels = {}): void {
    const state = this.at(labels);
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) state.counts[i] = (state.counts[i] as number) + 1;
    }
    state.sum += value;
    state.count += 1;
  }

  /** Observation count and sum of one series. */
  get(labels: Labels = {}): { count: number; sum: number } {
    const state = this.at(labels);
    return { count: state.count, sum: state.sum };
  }

  /** The `_bucket`, `_sum` and `_count` lines. */
  samples(): string[] {
    const lines: string[] = [];
    for (const { pairs, state } of this.sortedSeries()) {
      this.buckets.forEach((bound, i) => {
        const labels = formatLabels([...pairs, ["le", formatSampleValue(bound)]]);
        lines.push(`${this.name}_bucket${labels} ${state.counts[i]}`);
      });
      lines.push(`${this.name}_bucket${formatLabels([...pairs, ["le", "+Inf"]])} ${state.count}`);
      lines.push(`${this.name}_sum${formatLabels(pairs)} ${formatSampleValue(state.sum)}`);
      lines.push(`${this.name}_count${formatLabels(pairs)} ${state.count}`);
    }
    return lines;
  }
}

/** Options of a {@link CollectedCounter}. */
export interface CollectedCounterOptions {
  /** Full metric name. */
  readonly name: string;
  /** One-line help text. */
  readonly help: string;
  /** Reads the total when the registry renders; null (or a throw) renders no sample. */
  readonly collect: () => number | null;
}

/**
 * A counter whose total is kept outside the process (an nfacct counter in the kernel) and read
 * at each render, as a Prometheus collector's const metric; unlabelled.
 */
export class CollectedCounter {
  /** Always `counter`. */
  readonly type = "counter" as const;
  /** Its name. */
  readonly name: string;
  /** Its help text. */
  readonly help: string;
  readonly #collect: () => number | null;

  /** Makes one. */
  constructor(options: CollectedCounterOptions) {
    if (!METRIC_NAME.test(options.name)) {
      throw new Error(`Cannot register metric ${JSON.stringify(options.name)}: not a metric name`);
    }
    this.name = options.name;
    this.help = options.help;
    this.#collect = options.collect;
  }

  /** The family with its one sample, or nothing when the total cannot be read. */
  render(): string {
    let value: number | null;
    try {
      value = this.#collect();
    } catch {
      value = null;
    }
    if (value === null) return "";
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} counter\n` +
      `${this.name} ${formatSampleValue(value)}\n`;
  }
}

/** Any registered metric. */
export type AnyMetric = Counter | Gauge | Histogram | CollectedCounter;

/** A set of uniquely named metrics that renders as one exposition. */
export class MetricsRegistry {
  readonly #metrics = new Map<string, AnyMetric>();

  #add<M extends AnyMetric>(metric: M): M {
    if (this.#metrics.has(metric.name)) {
      throw new Error(`Cannot register metric ${metric.name}: the name is already registered`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /** Registers a counter. */
  counter(options: MetricOptions): Counter {
    return this.#add(new Counter(options));
  }

  /** Registers a gauge. */
  gauge(options: MetricOptions): Gauge {
    return this.#add(new Gauge(options));
  }

  /** Registers a counter read from elsewhere at each render. */
  collectedCounter(options: CollectedCounterOptions): CollectedCounter {
    return this.#add(new CollectedCounter(options));
  }

  /** Registers a histogram. */
  histogram(options: HistogramOptions): Histogram {
    return this.#add(new Histogram(options));
  }

  /** The metric registered under `name`, if any. */
  get(name: string): AnyMetric | undefined {
    return this.#metrics.get(name);
  }

  /** Names of all registered metrics, sorted. */
  names(): string[] {
    return [...this.#metrics.keys()].sort();
  }

  /** Every metric in the text exposition format, sorted by name. */
  render(): string {
    return this.names().map((name) => (this.#metrics.get(name) as AnyMetric).render()).join("");
  }
}
