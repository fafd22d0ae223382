/**
 * Clock probes over HTTP, timed by the browser's network stack instead of the page.
 *
 * A WebSocket ping is timed by the page's main thread: its t3 is when the pong's message
 * event ran, which on a busy page (twenty listeners sharing two cores, a phone drawing a
 * map) comes milliseconds after the pong arrived. That delay is all on the way back, so it
 * pulls the offset down by half of it, and the low-RTT filter removes it only if some pong
 * found the thread idle. A fetch of the server's clock is timed by Resource Timing instead:
 * `requestStart` and `responseStart` are taken by the network stack, on the same clock as
 * `performance.now()`, however late the page gets to read them. Each probe gives one sample:
 * t0 = requestStart, t1 = t2 = the server's time, t3 = responseStart (ms since the Unix
 * epoch, on the local clock's base `timeOrigin`). A probe whose timing never shows up (a
 * browser that hides it) gives nothing, and the socket's pings carry on alone; both kinds
 * feed one estimate, which weighs each sample by how little queueing its RTT can hold.
 */

/**
 * The fields of a PerformanceResourceTiming the probe reads.
 * @typedef {{name: string, requestStart: number, responseStart: number}} ResourceEntry
 *   name = absolute URL; times in ms since the page's time origin (0 = not known)
 */

/** Probes in flight kept at most; older ones are dropped unanswered. */
const MAX_PENDING = 16;

export class ClockProbe {
  /**
   * @param {object} o
   * @param {string} o.url absolute URL of the server's clock (`/api/clock` on the page's origin)
   * @param {import("./clock.js").ClockOffset} o.clock the estimate the samples go to
   * @param {(url: string) => Promise<{ok: boolean, json(): Promise<any>}>} o.fetch an uncached GET
   * @param {(onEntries: (entries: ResourceEntry[]) => void) => void} o.observeResources calls
   *   back with every new Resource Timing entry of the page
   * @param {() => number} o.timeOrigin the page's time origin (ms since the Unix epoch)
   * @param {{setTimeout: Function, clearTimeout: Function}} [o.timers]
   * @param {number} [o.everyMs=2000] steady probe period (ms)
   * @param {number} [o.burstCount=4] probes in a burst
   * @param {number} [o.burstGapMs=100] gap between burst probes (ms)
   */
  constructor(o) {
    this.o = { timers: globalThis, everyMs: 2000, burstCount: 4, burstGapMs: 100, ...o };
    /** @type {Map<string, {answer: {t1: number, t2: number} | null, entry: ResourceEntry | null}>} by URL */
    this.pending = new Map();
    this.nextId = 1;
    this.burstLeft = 0;
    this.timer = null;
    this.observing = false;
    this.running = false;
  }

  /**
   * Starts probing with a burst (the connection is up). A browser that cannot observe
   * Resource Timing gets no probes: their answers would have no times.
   */
  start() {
    if (!this.observing) {
      try {
        this.o.observeResources((entries) => {
          for (const entry of entries) this.timed(entry);
        });
      } catch {
        return;
      }
      this.observing = true;
    }
    this.running = true;
    this.burst();
  }

  /**
   * Stops probing (the connection is down). Answers still on their way are dropped: the
   * server on the other side of a reconnect may keep another clock.
   */
  stop() {
    this.running = false;
    this.pending.clear();
    this.cancel();
  }

  /** Sends a burst of probes now, if running (a clock check was asked for, or the page came back). */
  burst() {
    if (!this.running) return;
    this.burstLeft = this.o.burstCount;
    this.cancel();
    this.probe();
  }

  /** @private */
  cancel() {
    if (this.timer !== null) this.o.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /** @private sends one probe and schedules the next */
  probe() {
    const url = `${this.o.url}?probe=${this.nextId++}`;
    this.pending.set(url, { answer: null, entry: null });
    if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value);
    this.o.fetch(url)
      .then(async (response) => this.answered(url, response.ok ? await response.json() : null))
      .catch(() => this.pending.delete(url));
    if (this.burstLeft > 0) this.burstLeft -= 1;
    const wait = this.burstLeft > 0 ? this.o.burstGapMs : this.o.everyMs;
    this.timer = this.o.timers.setTimeout(() => this.probe(), wait);
  }

  /** @private the server's answer to the probe at `url` (its JSON body, or null) */
  answered(url, body) {
    const probe = this.pending.get(url);
    if (!probe) return;
    const t1 = body?.serverReceived, t2 = body?.serverSent;
    if (!Number.isFinite(t1) || !Number.isFinite(t2)) {
      this.pending.delete(url);
      return;
    }
    probe.answer = { t1, t2 };
    this.complete(url, probe);
  }

  /** @private a Resource Timing entry: the network stack's times of one of our probes, maybe */
  timed(entry) {
    const probe = this.pending.get(entry.name);
    if (!probe) return;
    probe.entry = entry;
    this.complete(entry.name, probe);
  }

  /** @private adds the sample once both halves of a probe are in */
  complete(url, probe) {
    if (!probe.answer || !probe.entry) return;
    this.pending.delete(url);
    const { requestStart, responseStart } = probe.entry;
    if (!(requestStart > 0) || !(responseStart >= requestStart)) return; // timing hidden
    const origin = this.o.timeOrigin();
    const result = this.o.clock.addSample(
      origin + requestStart, probe.answer.t1, probe.answer.t2, origin + responseStart,
    );
    // A suspect (a sample far off the estimate) is confirmed or dismissed by the next few: get them now.
    if (result === "jump" || (result === "suspect" && this.burstLeft === 0)) this.burst();
  }
}
