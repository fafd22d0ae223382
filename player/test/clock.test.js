import test from "node:test";
import assert from "node:assert/strict";
import { ClockOffset } from "../js/clock.js";
import { rng, exchange } from "./support/sim.js";

test("offset and rtt follow the NTP formulas", () => {
  const c = new ClockOffset({ minSamples: 1 });
  // server is 1000 ms ahead; 10 ms out, 2 ms processing, 20 ms back
  assert.equal(c.addSample(0, 1010, 1012, 32), "ok");
  assert.equal(c.offset, 1000 + (10 - 20) / 2);
  assert.equal(c.lastRtt(), 30);
  assert.equal(c.serverNow(100), 100 + c.offset);
});

test("estimate stays within a few ms under jittery, asymmetric RTT", () => {
  const random = rng(1);
  const c = new ClockOffset();
  const trueOffset = 123_456.7;
  let local = 10_000;
  for (let i = 0; i < 200; i++) {
    // 2 ms base each way, plus exponential queueing up to ~100 ms, independent per direction
    const up = 2 + -Math.log(1 - random()) * 15;
    const down = 2 + -Math.log(1 - random()) * 15;
    c.addSample(...exchange(local, trueOffset, up, down, 0.5));
    local += 2000;
    assert.ok(Math.abs(c.offset - trueOffset) < 60, `sample ${i} jitter bounded by rtt`);
  }
  assert.ok(c.ready);
  assert.ok(Math.abs(c.offset - trueOffset) < 5, `offset error ${c.offset - trueOffset} ms`);
});

test("invalid samples are rejected", () => {
  const c = new ClockOffset();
  assert.equal(c.addSample(0, 10, 5, 20), "invalid"); // server sent before it received
  assert.equal(c.addSample(0, 10, 11, -5), "invalid"); // negative rtt
  assert.equal(c.addSample(0, NaN, 11, 20), "invalid");
  assert.equal(c.offset, null);
  assert.equal(c.serverNow(5), null);
});

test("a clock jump is confirmed by two samples, then samples restart", () => {
  const c = new ClockOffset();
  let local = 0;
  for (let i = 0; i < 5; i++, local += 2000) c.addSample(...exchange(local, 500, 3, 3, 0));
  assert.equal(c.offset, 500);
  // the local clock steps back by 4 s: the server now looks 4 s further ahead
  assert.equal(c.addSample(...exchange(local, 4500, 3, 3, 0)), "suspect");
  assert.equal(c.offset, 500, "one disagreeing sample does not move the estimate");
  assert.equal(c.addSample(...exchange(local + 100, 4500, 3, 3, 0)), "jump");
  assert.equal(c.offset, 4500);
  assert.equal(c.ready, false, "re-measure before trusting it fully");
  c.addSample(...exchange(local + 200, 4500, 3, 3, 0));
  assert.equal(c.ready, true);
});

test("a single outlier does not count as a jump", () => {
  const c = new ClockOffset();
  for (let i = 0; i < 5; i++) c.addSample(...exchange(i * 100, 500, 3, 3, 0));
  assert.equal(c.addSample(...exchange(600, 9000, 3, 3, 0)), "suspect");
  assert.equal(c.addSample(...exchange(700, 500, 3, 3, 0)), "ok");
  assert.equal(c.addSample(...exchange(800, -7000, 3, 3, 0)), "suspect", "a different outlier does not confirm the first");
  assert.equal(c.offset, 500);
});

test("reset keeps the last offset until new samples arrive", () => {
  const c = new ClockOffset();
  for (let i = 0; i < 4; i++) c.addSample(...exchange(i * 100, 200, 1, 1, 0));
  c.reset();
  assert.equal(c.ready, false);
  assert.equal(c.offset, 200);
  c.addSample(...exchange(1000, 260, 1, 1, 0));
  assert.equal(c.offset, 260, "after a reset a new server clock is accepted at once");
});

test("old samples age out", () => {
  const c = new ClockOffset({ maxAgeMs: 10_000, best: 1 });
  c.addSample(...exchange(0, 100, 1, 1, 0)); // rtt 2, the best
  c.addSample(...exchange(5000, 110, 5, 5, 0));
  c.addSample(...exchange(20_000, 120, 5, 5, 0));
  assert.equal(c.offset, 120);
});

test("uncertainty is half the largest round trip among the samples the estimate uses", () => {
  const c = new ClockOffset({ best: 2 });
  assert.equal(c.uncertainty(), 0);
  c.addSample(...exchange(0, 100, 10, 10, 0)); // rtt 20
  c.addSample(...exchange(100, 100, 1, 2, 0)); // rtt 3
  assert.equal(c.uncertainty(), 10);
  c.addSample(...exchange(200, 100, 2, 2, 0)); // rtt 4 replaces the 20
  assert.equal(c.uncertainty(), 2);
});
