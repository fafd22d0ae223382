import test from "node:test";
import assert from "node:assert/strict";
import { ClockProbe } from "../js/probe.js";
import { ClockOffset } from "../js/clock.js";
import { FakeTimers } from "./support/fakes.js";

const SERVER_AHEAD = 1_764_000_000_000;
// The fake local clock is `timers.now`; the page was loaded 1 s before it read 0.
const ORIGIN = -1_000;
const URL_BASE = "http://host/api/clock";

/**
 * A page whose network stack sends each probe `upMs` after it is asked for, reaches a server
 * SERVER_AHEAD ms ahead of the local clock `upMs` later, and receives the answer `downMs` after
 * that; the page itself reads the answer `mainThreadMs` later still (a busy main thread), and
 * the Resource Timing entry shows up `entryLagMs` after the page read the answer (negative:
 * before it).
 */
function setup({ upMs = 2, downMs = 2, mainThreadMs = 0, entryLagMs = 0, timing = true, ok = true } = {}) {
  const timers = new FakeTimers();
  const clock = new ClockOffset();
  let onEntries = null;
  const fetched = [];
  const probe = new ClockProbe({
    url: URL_BASE,
    clock,
    timers,
    timeOrigin: () => ORIGIN,
    observeResources: (cb) => { onEntries = cb; },
    fetch: (url) => {
      fetched.push(url);
      const requestStart = timers.now - ORIGIN;
      const server = timers.now + upMs + SERVER_AHEAD;
      const responseStart = requestStart + upMs + downMs;
      const entry = { name: url, requestStart: timing ? requestStart : 0, responseStart: timing ? responseStart : 0 };
      return new Promise((resolve) => {
        const deliverEntry = () => onEntries([{ name: "http://host/other.js", requestStart: 1, responseStart: 2 }, entry]);
        const answer = () => resolve({ ok, json: async () => ({ serverReceived: server, serverSent: server }) });
        const readAt = upMs + downMs + mainThreadMs;
        timers.setTimeout(answer, readAt);
        timers.setTimeout(deliverEntry, Math.max(0, readAt + entryLagMs));
      });
    },
  });
  return { timers, clock, probe, fetched };
}

/** Advances the fake clock in small steps, letting promise callbacks run between them. */
async function run(timers, ms) {
  for (let t = 0; t < ms; t += 5) {
    timers.advance(5);
    await new Promise((r) => setImmediate(r));
  }
}

test("probes in a burst, then steadily, with a URL per probe", async () => {
  const { timers, probe, fetched } = setup();
  probe.start();
  await run(timers, 1000);
  // Four in the burst (0, 100, 200, 300 ms), then one every 2 s.
  assert.equal(fetched.length, 4);
  await run(timers, 4000);
  assert.equal(fetched.length, 6);
  assert.equal(new Set(fetched).size, fetched.length);
  assert.ok(fetched.every((u) => u.startsWith(`${URL_BASE}?probe=`)));
  probe.stop();
  await run(timers, 10_000);
  assert.equal(fetched.length, 6, "a stopped probe sends nothing");
});

test("the network stack's times make the estimate, however late the page reads the answer", async () => {
  for (const entryLagMs of [-15, 0, 40]) {
    const { timers, clock, probe } = setup({ upMs: 3, downMs: 3, mainThreadMs: 30, entryLagMs });
    probe.start();
    await run(timers, 1000);
    assert.ok(clock.ready, `ready (entry lag ${entryLagMs})`);
    // A main thread 30 ms late would have biased a page-timed sample by -15 ms.
    assert.ok(Math.abs(clock.offset - SERVER_AHEAD) < 0.01, `offset error ${clock.offset - SERVER_AHEAD}`);
    assert.ok(Math.abs(clock.lastRtt() - 6) < 0.01);
  }
});

test("an asymmetric path biases it by half the asymmetry, as any two-way probe", async () => {
  const { timers, clock, probe } = setup({ upMs: 2, downMs: 12 });
  probe.start();
  await run(timers, 1000);
  assert.ok(Math.abs(clock.offset - SERVER_AHEAD - -5) < 0.01, `${clock.offset - SERVER_AHEAD}`);
});

test("no timing, an error status or a broken body gives no sample and no trouble", async () => {
  for (const opts of [{ timing: false }, { ok: false }]) {
    const { timers, clock, probe, fetched } = setup(opts);
    probe.start();
    await run(timers, 5000);
    assert.ok(fetched.length >= 5);
    assert.equal(clock.ready, false, JSON.stringify(opts));
    assert.equal(probe.pending.size, 0, "nothing piles up");
  }
  const timers = new FakeTimers();
  const clock = new ClockOffset();
  const probe = new ClockProbe({
    url: URL_BASE, clock, timers, timeOrigin: () => ORIGIN, observeResources: () => {},
    fetch: async () => ({ ok: true, json: async () => { throw new SyntaxError("not JSON"); } }),
  });
  probe.start();
  await run(timers, 1000);
  assert.equal(clock.ready, false);
  assert.equal(probe.pending.size, 0);
});

test("probes whose timing never comes are forgotten, not kept forever", async () => {
  const timers = new FakeTimers();
  const probe = new ClockProbe({
    url: URL_BASE, clock: new ClockOffset(), timers, timeOrigin: () => ORIGIN, observeResources: () => {},
    fetch: async () => ({ ok: true, json: async () => ({ serverReceived: 1, serverSent: 1 }) }),
  });
  probe.start();
  await run(timers, 120_000);
  assert.ok(probe.pending.size <= 16, `${probe.pending.size} pending`);
});

test("a clock step found by a probe is confirmed by a burst at once", async () => {
  const { timers, clock, probe, fetched } = setup();
  probe.start();
  await run(timers, 10_000);
  const before = fetched.length;
  // The local clock steps 5 s (resume from suspend): the next probes disagree with the fit.
  const realOrigin = ORIGIN;
  probe.o.timeOrigin = () => realOrigin + 5000;
  await run(timers, 2100);
  assert.ok(fetched.length >= before + 3, "a suspect sample brings a burst instead of waiting 2 s a probe");
  await run(timers, 1000);
  assert.ok(Math.abs(clock.offset - (SERVER_AHEAD - 5000)) < 0.01, `${clock.offset - SERVER_AHEAD}`);
});

test("a browser that cannot observe Resource Timing is not probed, and nothing throws", async () => {
  const timers = new FakeTimers();
  const fetched = [];
  const probe = new ClockProbe({
    url: URL_BASE, clock: new ClockOffset(), timers, timeOrigin: () => ORIGIN,
    observeResources: () => { throw new TypeError("PerformanceObserver is not defined"); },
    fetch: async (url) => { fetched.push(url); return { ok: true, json: async () => ({}) }; },
  });
  probe.start();
  probe.burst();
  await run(timers, 5000);
  assert.equal(fetched.length, 0);
});

test("answers still on their way when the connection drops are not used", async () => {
  const { timers, clock, probe } = setup({ upMs: 20, downMs: 20 });
  probe.start();
  await run(timers, 5); // the first probe is in flight
  probe.stop();
  await run(timers, 1000);
  assert.equal(clock.samples.length, 0, "the server after a reconnect may keep another clock");
  assert.equal(probe.pending.size, 0);
});
