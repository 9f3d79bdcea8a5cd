/**
 * CPU and memory of a process that may be restarted (the API server in a storm), sampled from
 * /proc every `intervalMs`: CPU seconds used in a window (summed over every process the window
 * saw), the highest CPU rate between two samples (cores), and the peak resident set.
 *
 * @module
 */

/** CPU and memory over a window. */
export interface ProcessWindow {
  /** CPU time used (user + system), s. */
  readonly cpuSeconds: number;
  /** Highest CPU rate between two samples, cores (1 = one core busy). */
  readonly peakCores: number;
  /** Highest resident set seen (VmRSS samples and VmHWM), bytes. */
  readonly peakRss: number;
  /** Wall time of the window, s. */
  readonly seconds: number;
}

/** CPU ticks (user + system) and VmRSS/VmHWM of a process, or null when gone. */
export async function readProcess(
  pid: number,
): Promise<{ ticks: number; rss: number; hwm: number } | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = (f: string) => Number(new RegExp(`${f}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    return {
      ticks: Number(fields[11]) + Number(fields[12]),
      rss: kb("VmRSS") * 1024,
      hwm: kb("VmHWM") * 1024,
    };
  } catch {
    return null;
  }
}

/** Resets a process's VmHWM to its current RSS (`/proc/PID/clear_refs`, needs root). */
export async function resetPeakRss(pid: number): Promise<void> {
  await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5").catch(() => undefined);
}

const TICKS_PER_SECOND = 100;

/** Samples one (possibly restarted) process until stopped. */
export class ProcessSampler {
  readonly #pid: () => number | null;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** CPU ticks of processes that ended, plus the current one's last reading. */
  #ticksDone = 0;
  #current: { pid: number; ticks: number } | null = null;
  #lastSample: { at: number; ticks: number } | null = null;
  #window = { startTicks: 0, startAt: 0, peakCores: 0, peakRss: 0 };
  #busy = false;

  /** Samples the process `pid()` names (null while there is none). */
  constructor(pid: () => number | null, intervalMs = 250) {
    this.#pid = pid;
    this.#intervalMs = intervalMs;
  }

  /** Starts sampling; a window starts now. */
  async start(): Promise<void> {
    await this.sample();
    this.#openWindow();
    this.#timer = setInterval(() => void this.sample(), this.#intervalMs);
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Total CPU ticks used by every process seen, as of the last sample. */
  #totalTicks(): number {
    return this.#ticksDone + (this.#current?.ticks ?? 0);
  }

  /** Takes a sample now (also called by the timer). */
  async sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const pid = this.#pid();
      const now = performance.now();
      if (pid === null) {
        this.#retire();
      } else {
        const p = await readProcess(pid);
        if (p === null) this.#retire();
        else {
          if (this.#current !== null && this.#current.pid !== pid) this.#retire();
          this.#current = { pid, ticks: p.ticks };
          this.#window.peakRss = Math.max(this.#window.peakRss, p.rss, p.hwm);
        }
      }
      const ticks = this.#totalTicks();
      if (this.#lastSample !== null && now > this.#lastSample.at) {
        const cores = (ticks - this.#lastSample.ticks) / TICKS_PER_SECOND /
          ((now - this.#lastSample.at) / 1000);
        this.#window.peakCores = Math.max(this.#window.peakCores, cores);
      }
      this.#lastSample = { at: now, ticks };
    } finally {
      this.#busy = false;
    }
  }

  #retire(): void {
    if (this.#current !== null) this.#ticksDone += this.#current.ticks;
    this.#current = null;
  }

  #openWindow(): void {
    this.#window = {
      startTicks: this.#totalTicks(),
      startAt: performance.now(),
      peakCores: 0,
      peakRss: 0,
    };
  }

  /**
   * Ends the current window (after a last sample) and starts the next; the peak resident set of
   * the next window starts from the process's current one (its VmHWM is reset).
   */
  async cut(): Promise<ProcessWindow> {
    await this.sample();
    const w = this.#window;
    const out: ProcessWindow = {
      cpuSeconds: (this.#totalTicks() - w.startTicks) / TICKS_PER_SECOND,
      peakCores: w.peakCores,
      peakRss: w.peakRss,
      seconds: (performance.now() - w.startAt) / 1000,
    };
    const pid = this.#pid();
    if (pid !== null) await resetPeakRss(pid);
    this.#openWindow();
    await this.sample();
    return out;
  }
}
