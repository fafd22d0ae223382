// Network and clock impairment for the e2e tests and benches, in user space (the kernel
// here has no netem):
//  - startImpair: a TCP proxy on 127.0.0.1:0 in front of the server that holds every
//    chunk of bytes, in each direction, for a one-way delay plus jitter, keeping the
//    byte order of each direction (a chunk leaves at max(the previous chunk's release,
//    arrival + delay + jitter)). Byte-level, so HTTP and the WebSocket alike go through
//    it. Jitter is uniform in ±jitterMs from a seeded PRNG, so runs repeat.
//  - clockSkewScript: an init script (page.addInitScript / context.addInitScript) that
//    makes Date.now(), new Date(), Date(), performance.now() and performance.timeOrigin,
//    as the page sees them, run off a skewed and drifting clock:
//      pageTime = trueTime + skewMs + (trueTime − t0) · driftPpm / 1e6.
//    The true clocks stay reachable as window.__realClock, which lib.mjs's readPlayhead
//    and startSampling use, so that sync is judged on the true clock.
import net from "node:net";
import { performance } from "node:perf_hooks";

/** The tests' seeded PRNG (mulberry32), uniform in [0, 1). */
import { rng as prng } from "../test/support/sim.js";

export { prng };

/**
 * One direction of one connection: chunks released in order, each at
 * max(previous release, arrival + delay + jitter).
 */
class Lane {
  constructor(out, params, random) {
    this.out = out;
    this.params = params;
    this.random = random;
    /** @type {{at: number, data: Buffer | null}[]} data null = end of stream */
    this.queue = [];
    this.lastRelease = -Infinity;
    this.timer = null;
    this.closed = false;
  }

  /** The delay (ms) this chunk gets: base + uniform jitter, never negative. */
  delay() {
    const { delayMs, jitterMs } = this.params;
    return Math.max(0, delayMs + (jitterMs ? (2 * this.random() - 1) * jitterMs : 0));
  }

  push(data) {
    const at = Math.max(this.lastRelease, performance.now() + this.delay());
    this.lastRelease = at;
    this.queue.push({ at, data });
    if (this.queue.length === 1) this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.queue.length || this.closed) return;
    const wait = this.queue[0].at - performance.now();
    if (wait > 0.5) {
      // Timers fire up to a ms late, never early; the loop below takes what is due.
      this.timer = setTimeout(() => this.flush(), Math.max(1, Math.floor(wait)));
    } else this.flush();
  }

  flush() {
    this.timer = null;
    const now = performance.now();
    while (this.queue.length && this.queue[0].at <= now + 0.5 && !this.closed) {
      const { data } = this.queue.shift();
      if (data === null) this.out.end();
      else if (!this.out.destroyed) this.out.write(data);
    }
    this.schedule();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.queue = [];
  }
}

/**
 * Starts a delay/jitter proxy to `target` on 127.0.0.1:0.
 * @param {object} o
 * @param {string} o.target server base URL ("http://127.0.0.1:1234") or "host:port"
 * @param {number} [o.delayMs=0] one-way delay, both directions (ms)
 * @param {number} [o.jitterMs=0] uniform jitter ±jitterMs on each chunk (ms)
 * @param {number} [o.upDelayMs] client → server delay, if not delayMs
 * @param {number} [o.downDelayMs] server → client delay, if not delayMs
 * @param {number} [o.seed=1] PRNG seed for the jitter
 * @returns {Promise<{port: number, base: string, set: (p: object) => void, params: object, stats: object, stop: () => Promise<void>}>}
 */
export async function startImpair({ target, delayMs = 0, jitterMs = 0, upDelayMs, downDelayMs, seed = 1 }) {
  const url = new URL(target.includes("://") ? target : `tcp://${target}`);
  const to = { host: url.hostname, port: Number(url.port) };
  const up = { delayMs: upDelayMs ?? delayMs, jitterMs };
  const down = { delayMs: downDelayMs ?? delayMs, jitterMs };
  const random = prng(seed);
  const sockets = new Set();
  const stats = { connections: 0, upBytes: 0, downBytes: 0 };
  const server = net.createServer((client) => {
    stats.connections += 1;
    const upstream = net.connect(to);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const upLane = new Lane(upstream, up, random);
    const downLane = new Lane(client, down, random);
    client.on("data", (d) => { stats.upBytes += d.length; upLane.push(d); });
    upstream.on("data", (d) => { stats.downBytes += d.length; downLane.push(d); });
    // A half close travels in order behind the data, like a FIN.
    client.on("end", () => upLane.push(null));
    upstream.on("end", () => downLane.push(null));
    const kill = () => {
      upLane.close();
      downLane.close();
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", kill);
    upstream.on("error", kill);
    // A socket closed both ways (its own end and ours sent) is done once both are.
    let closed = 0;
    const onClose = () => { if (++closed === 2) kill(); };
    client.on("close", onClose);
    upstream.on("close", onClose);
  });
  await new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(0, "127.0.0.1", res);
  });
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    params: { up, down },
    stats,
    /**
     * Changes the path at runtime (applies to bytes arriving from now on; order is kept).
     * @param {{delayMs?: number, jitterMs?: number, upDelayMs?: number, downDelayMs?: number}} p
     */
    set(p) {
      if (p.delayMs !== undefined) up.delayMs = down.delayMs = p.delayMs;
      if (p.upDelayMs !== undefined) up.delayMs = p.upDelayMs;
      if (p.downDelayMs !== undefined) down.delayMs = p.downDelayMs;
      if (p.jitterMs !== undefined) up.jitterMs = down.jitterMs = p.jitterMs;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      sockets.clear();
      await new Promise((r) => server.close(() => r()));
    },
  };
}

/**
 * Source of an init script that skews the page's clocks. Each frame picks its clock by its
 * own location.port from `byPort` (iframes from several proxies in one page), else uses
 * `skewMs`/`driftPpm`; a frame with neither (or skew and drift both 0 and no byPort entry)
 * is left alone. t0 is a true epoch ms, the same for every page of a run.
 * @param {{skewMs?: number, driftPpm?: number, t0?: number, byPort?: Record<string, {skewMs: number, driftPpm: number}>}} o
 */
export function clockSkewScript({ skewMs = 0, driftPpm = 0, t0 = Date.now(), byPort = {} } = {}) {
  const config = JSON.stringify({ skewMs, driftPpm, t0, byPort });
  return `(${installSkew})(${config});`;
}

/** Runs in the page (serialized by clockSkewScript): self-contained. */
function installSkew({ skewMs, driftPpm, t0, byPort }) {
  const own = byPort[location.port] ?? { skewMs, driftPpm };
  const RealDate = Date;
  const perf = performance;
  const realDateNow = RealDate.now.bind(RealDate);
  const realPerfNow = perf.now.bind(perf);
  const realOrigin = perf.timeOrigin;
  // The true clocks, for the harness (read only by the tests' probes).
  Object.defineProperty(window, "__realClock", {
    value: Object.freeze({ dateNow: realDateNow, perfNow: realPerfNow, timeOrigin: realOrigin, skewMs: own.skewMs, driftPpm: own.driftPpm, t0 }),
  });
  if (!own.skewMs && !own.driftPpm) return;
  const rate = own.driftPpm / 1e6;
  const skewed = (t) => t + own.skewMs + (t - t0) * rate;
  const fakeOrigin = skewed(realOrigin);
  // performance.now() = skewed(origin + p) − skewed(origin) = p · (1 + rate): monotonic.
  perf.now = function now() { return realPerfNow() * (1 + rate); };
  Object.defineProperty(perf, "timeOrigin", { get: () => fakeOrigin, configurable: true });
  // Resource Timing runs on performance.now()'s clock: the clock probes read it.
  for (const field of ["fetchStart", "requestStart", "responseStart", "responseEnd"]) {
    const real = Object.getOwnPropertyDescriptor(PerformanceResourceTiming.prototype, field).get;
    Object.defineProperty(PerformanceResourceTiming.prototype, field, {
      get() { return real.call(this) * (1 + rate); },
      configurable: true,
    });
  }
  const fakeNow = () => Math.floor(skewed(realDateNow()));
  function FakeDate(...args) {
    if (!new.target) return new RealDate(fakeNow()).toString();
    return Reflect.construct(RealDate, args.length ? args : [fakeNow()], new.target);
  }
  FakeDate.prototype = RealDate.prototype;
  FakeDate.now = fakeNow;
  FakeDate.parse = RealDate.parse;
  FakeDate.UTC = RealDate.UTC;
  Object.defineProperty(FakeDate, "name", { value: "Date" });
  FakeDate.toString = () => RealDate.toString();
  window.Date = FakeDate;
}

/**
 * A listener page's (or frame's) clock estimate judged against the truth: the page's
 * estimate of the server clock minus the true clock (the server runs on this machine's
 * true clock), with what the page itself says about it.
 * @param {import("playwright-core").Page | import("playwright-core").Frame} page
 * @returns {Promise<{estimateError: number | null, uncertainty: number, rtt: number | null, offset: number | null,
 *   trueOffset: number, stats: object, rate: number, state: string}>}
 */
export function clockView(page) {
  return page.evaluate(() => {
    const b = window.bardcast;
    const real = window.__realClock;
    const local = performance.timeOrigin + performance.now();
    const trueNow = real ? real.timeOrigin + real.perfNow() : local;
    return {
      estimateError: b.offset === null ? null : local + b.offset - trueNow,
      uncertainty: b.clockUncertainty,
      rtt: b.rtt,
      offset: b.offset,
      trueOffset: trueNow - local,
      stats: b.syncStats,
      rate: b.playbackRate,
      state: b.state,
    };
  });
}
