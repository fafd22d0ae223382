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

test("a clock jump is confirmed by three agreeing samples, which start the new estimate", () => {
  const c = new ClockOffset();
  let local = 0;
  for (let i = 0; i < 5; i++, local += 2000) c.addSample(...exchange(local, 500, 3, 3, 0));
  assert.equal(c.offset, 500);
  // the local clock steps back by 4 s: the server now looks 4 s further ahead
  assert.equal(c.addSample(...exchange(local, 4500, 3, 3, 0)), "suspect");
  assert.equal(c.offset, 500, "one disagreeing sample does not move the estimate");
  assert.equal(c.addSample(...exchange(local + 100, 4500, 3, 3, 0)), "suspect");
  assert.equal(c.offset, 500);
  assert.equal(c.addSample(...exchange(local + 200, 4500, 3, 3, 0)), "jump");
  assert.equal(c.offset, 4500);
  assert.equal(c.ready, true, "the three confirming samples are the new estimate");
  assert.equal(c.samples.length, 3, "the old samples are gone");
  assert.equal(c.addSample(...exchange(local + 300, 4500, 3, 3, 0)), "ok");
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

test("uncertainty: 0 with no samples, half the best RTT until minSamples, then the fit's own error", () => {
  const c = new ClockOffset();
  assert.equal(c.uncertainty(), 0);
  c.addSample(...exchange(0, 100, 10, 10, 0)); // rtt 20
  assert.equal(c.uncertainty(), 10, "one sample: only the hard bound");
  c.addSample(...exchange(100, 100, 1, 2, 0)); // rtt 3
  // the true offset is within 1.5 ms of the rtt-3 sample; the line passes ~0.02 ms from it
  assert.ok(Math.abs(c.uncertainty() - 1.5) < 0.05, `two samples: the hard bound, ${c.uncertainty()}`);
  c.addSample(...exchange(200, 100, 2, 2, 0)); // rtt 4
  assert.ok(c.ready);
  assert.ok(c.uncertainty() <= 1.5, `never above the hard bound: ${c.uncertainty()}`);
  assert.ok(c.uncertainty() >= c.floorMs);
});

// ---- Real paths (issue #13): seeded simulations of a listener's pings ----

const EPOCH = 1_764_000_000_000; // local clocks are epoch-based ms

/**
 * Pings a simulated server like ControlClient does (a burst of 8 pings 60 ms apart,
 * then one a second, and a new burst on a suspect or a jump), for `durationMs` of local
 * time. The server clock is local + skewMs + driftPpm * elapsed (+ stepMs after stepAtMs);
 * each way takes its base delay plus a uniform jitter of +-jitterMs, independent per
 * direction, plus, with probability spikeChance, a 150 ms queueing spike on one way.
 * `visit(c, {local, trueOffset, status, rtt})` sees each exchange.
 */
function simulate(c, { seed = 1, upMs = 75, downMs = 75, jitterMs = 0, skewMs = 0, driftPpm = 0, stepMs = 0, stepAtMs = Infinity, spikeChance = 0, durationMs = 120_000 }, visit) {
  const random = rng(seed);
  const serverAt = (local) => local + skewMs + driftPpm * 1e-6 * (local - EPOCH) + (local - EPOCH >= stepAtMs ? stepMs : 0);
  let burst = 8;
  for (let t0 = EPOCH; t0 < EPOCH + durationMs; ) {
    let up = upMs + jitterMs * (2 * random() - 1);
    let down = downMs + jitterMs * (2 * random() - 1);
    if (random() < spikeChance) {
      if (random() < 0.5) up += 150;
      else down += 150;
    }
    const t1 = serverAt(t0 + up);
    const t2 = t1 + 0.3;
    const t3 = t0 + up + 0.3 + down;
    const status = c.addSample(t0, t1, t2, t3);
    if (status === "jump" || (status === "suspect" && burst === 0)) burst = 8;
    visit(c, { local: t3, trueOffset: serverAt(t3) - t3, status, rtt: t3 - t0 - 0.3, elapsed: t3 - EPOCH });
    t0 += burst > 0 ? 60 : 1000;
    if (burst > 0) burst -= 1;
  }
}

/** serverNow error (ms) at local ms `local`. */
const serverNowError = (c, local, trueOffset) => c.serverNow(local) - (local + trueOffset);

test("symmetric 75 + 75 ms path: offset within 1 ms, uncertainty a few ms, not rtt / 2", (t) => {
  const c = new ClockOffset();
  let worst = 0;
  let maxUncertainty = 0;
  simulate(c, { skewMs: 3_600_000 }, (c, { local, trueOffset }) => {
    if (!c.ready) return;
    worst = Math.max(worst, Math.abs(serverNowError(c, local, trueOffset)));
    maxUncertainty = Math.max(maxUncertainty, c.uncertainty());
  });
  t.diagnostic(`worst offset error ${worst.toFixed(3)} ms, uncertainty at most ${maxUncertainty.toFixed(2)} ms, last rtt ${c.lastRtt()} ms`);
  assert.ok(worst < 1, `offset error ${worst}`);
  assert.ok(maxUncertainty <= 3, `uncertainty ${maxUncertainty}`);
  assert.ok(Math.abs(c.lastRtt() - 150) < 1e-6);
});

test("75 ms +- 25 ms jitter each way: within a few ms after 30 pings, stable, honest uncertainty", (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const c = new ClockOffset();
    let pings = 0;
    let at30 = null;
    const errors = [];
    let covered = 0;
    let maxUncertainty = 0;
    let sawMeasuringAgain = false;
    simulate(c, { seed, jitterMs: 25, durationMs: 180_000 }, (c, { local, trueOffset, status, elapsed }) => {
      pings += 1;
      assert.equal(status, "ok", `seed ${seed}: jitter is no clock jump (ping ${pings})`);
      if (pings >= 3 && !c.ready) sawMeasuringAgain = true;
      const error = serverNowError(c, local, trueOffset);
      if (pings === 30) at30 = { error, uncertainty: c.uncertainty() };
      if (elapsed >= 60_000) {
        errors.push(error);
        if (c.uncertainty() >= Math.abs(error)) covered += 1;
        maxUncertainty = Math.max(maxUncertainty, c.uncertainty());
      }
    });
    const wander = Math.max(...errors) - Math.min(...errors);
    const worst = Math.max(...errors.map(Math.abs));
    const coverage = covered / errors.length;
    t.diagnostic(`seed ${seed}: after 30 pings error ${at30.error.toFixed(2)} ms (uncertainty ${at30.uncertainty.toFixed(2)}); ` +
      `60-180 s: worst ${worst.toFixed(2)} ms, wander ${wander.toFixed(2)} ms, uncertainty <= ${maxUncertainty.toFixed(2)} ms covers ${(coverage * 100).toFixed(0)} %`);
    assert.equal(sawMeasuringAgain, false);
    assert.ok(Math.abs(at30.error) < 4, `seed ${seed}: error after 30 pings ${at30.error}`);
    assert.ok(worst < 4, `seed ${seed}: worst error ${worst}`);
    assert.ok(wander < 6, `seed ${seed}: wandered ${wander} ms over 2 minutes`);
    assert.ok(maxUncertainty < 6, `seed ${seed}: uncertainty ${maxUncertainty} (rtt / 2 would be ~75)`);
    assert.ok(coverage >= 0.8, `seed ${seed}: uncertainty covered the error only ${coverage * 100} % of the time`);
  }
});

test("skew of a minute and drift of +-100 ppm: serverNow within ~1-2 ms over 5 minutes", (t) => {
  for (const [driftPpm, skewMs, jitterMs, seed] of [[100, 60_000, 0, 1], [-100, -60_000, 0, 1], [100, -60_000, 5, 2], [-100, 60_000, 5, 3], [-60, 45_000, 5, 4]]) {
    const c = new ClockOffset();
    let worst = 0;
    let maxUncertainty = 0;
    simulate(c, { seed, skewMs, driftPpm, jitterMs, durationMs: 330_000 }, (c, { local, trueOffset, status, elapsed }) => {
      assert.equal(status, "ok");
      if (elapsed < 30_000) return;
      // between pings too: the drift is extrapolated
      for (const ahead of [0, 500, 999]) worst = Math.max(worst, Math.abs(serverNowError(c, local + ahead, trueOffset + driftPpm * 1e-6 * ahead)));
      maxUncertainty = Math.max(maxUncertainty, c.uncertainty());
    });
    t.diagnostic(`drift ${driftPpm} ppm, skew ${skewMs} ms, jitter +-${jitterMs} ms: worst serverNow error ${worst.toFixed(3)} ms over 5 min, ` +
      `fitted drift ${c.driftPpm.toFixed(1)} ppm, uncertainty <= ${maxUncertainty.toFixed(2)} ms`);
    assert.ok(worst < (jitterMs ? 2 : 0.5), `worst error ${worst}`);
    assert.ok(Math.abs(c.driftPpm - driftPpm) < (jitterMs ? 10 : 1), `drift ${c.driftPpm}`);
  }
});

test("asymmetric path (10 ms up, 90 ms down): biased by half the asymmetry, as no two-way method can see", (t) => {
  const c = new ClockOffset();
  let error = 0;
  simulate(c, { upMs: 10, downMs: 90, skewMs: 1234 }, (c, { local, trueOffset }) => {
    error = serverNowError(c, local, trueOffset);
  });
  t.diagnostic(`error ${error.toFixed(2)} ms, uncertainty ${c.uncertainty().toFixed(2)} ms, hard bound ${c.bestRtt() / 2} ms`);
  // offset = ((t1 - t0) + (t2 - t3)) / 2 = true + (up - down) / 2
  assert.ok(Math.abs(error - (10 - 90) / 2) < 0.5, `error ${error}`);
  assert.ok(c.uncertainty() < 5, "the timestamps do not show it: the uncertainty stays small");
  assert.ok(Math.abs(error) <= c.bestRtt() / 2, "only half the RTT bounds it");
});

test("a real 500 ms clock step is followed within a few samples", (t) => {
  for (const seed of [1, 2, 3]) {
    const c = new ClockOffset();
    const stepAtMs = 90_000;
    let jumpAfter = null; // samples after the step until "jump"
    let after = 0;
    const errorsAfter = [];
    simulate(c, { seed, jitterMs: 25, stepMs: 500, stepAtMs, durationMs: 150_000 }, (c, { local, trueOffset, status, elapsed }) => {
      if (elapsed - 75 < stepAtMs) {
        assert.equal(status, "ok");
        return;
      }
      after += 1;
      if (status === "jump") jumpAfter ??= after;
      if (jumpAfter !== null) {
        assert.ok(c.ready, "no 'measuring' after the jump");
        errorsAfter.push(serverNowError(c, local, trueOffset));
      }
    });
    const first = errorsAfter[0];
    const tenth = errorsAfter[9];
    const last = errorsAfter.at(-1);
    t.diagnostic(`seed ${seed}: jump confirmed at sample ${jumpAfter} after the step; error then ${first.toFixed(1)} ms, ` +
      `10 samples later ${tenth.toFixed(1)} ms, a minute later ${last.toFixed(1)} ms`);
    assert.ok(jumpAfter !== null && jumpAfter <= 4, `jump after ${jumpAfter} samples`);
    assert.ok(Math.abs(first) < 25, `error right after the jump ${first}`);
    assert.ok(Math.abs(tenth) < 10, `error 10 samples later ${tenth}`);
    assert.ok(Math.abs(last) < 5, `error a minute later ${last}`);
  }
});

test("jitter of +-25 ms and 300 ms RTT spikes never look like a clock jump", (t) => {
  for (const seed of [11, 12, 13, 14, 15]) {
    const c = new ClockOffset();
    let spikes = 0;
    let worst = 0;
    simulate(c, { seed, jitterMs: 25, spikeChance: 0.05, skewMs: -5000, driftPpm: 40, durationMs: 600_000 }, (c, { local, trueOffset, status, rtt, elapsed }) => {
      assert.equal(status, "ok", `seed ${seed}: ${status} at ${elapsed} ms (rtt ${rtt})`);
      if (rtt > 200) spikes += 1;
      if (elapsed > 60_000) worst = Math.max(worst, Math.abs(serverNowError(c, local, trueOffset)));
    });
    t.diagnostic(`seed ${seed}: ${spikes} RTT spikes over 10 min, no suspect; worst error after the first minute ${worst.toFixed(2)} ms`);
    assert.ok(spikes > 10);
    assert.ok(worst < 5, `worst error ${worst}`);
  }
});
