import test from "node:test";
import assert from "node:assert/strict";
import { CheckRecorder } from "../js/check.js";

const about = { engine: "hlsjs-mse", correction: "rate", device: "Linux · Chrome", userAgent: "UA", clientId: "c3", outputLatencyMs: null, outputDelayMs: 0 };
const stats = (n = {}) => ({ stalls: 0, seeks: 0, rateChanges: 0, rateIgnored: 0, acquireSeeks: 0, ...n });

/** A minute of ticks; `error(t)` gives the sync error at local ms t (null: unknown). */
function run({ seconds = 60, state = () => "playing", error = () => 2, locked = () => true, stats: at = () => stats(), struggling = () => false, start = stats() } = {}) {
  const r = new CheckRecorder({ now: 0, stats: start });
  for (let t = 100; t <= seconds * 1000; t += 100) {
    r.tick({ now: t, state: state(t), syncError: error(t), locked: locked(t), struggling: struggling(t), stats: at(t) });
  }
  return r;
}

test("a device in step, without stalls, is good, with its figures", () => {
  const r = run({ error: (t) => ((t / 100) % 10) - 4.5, locked: (t) => t > 1000, stats: () => stats({ seeks: 2, rateChanges: 8 }), start: stats({ seeks: 1 }) });
  const rep = r.report(about);
  assert.equal(rep.verdict, "good");
  assert.equal(rep.started, true);
  assert.equal(rep.seconds, 60);
  assert.equal(rep.samples, 590);
  assert.ok(rep.syncP50Ms >= 2 && rep.syncP50Ms <= 3, `p50 ${rep.syncP50Ms}`);
  assert.equal(rep.syncP95Ms, 4.5);
  assert.equal(rep.seeks, 1, "counted from the check's start");
  assert.equal(rep.rateChanges, 8);
  assert.equal(rep.correction, "rate");
  assert.equal(rep.clientId, "c3");
  assert.deepEqual(rep.problems, []);
});

test("verdicts: out of step is poor, a stall or rate that does nothing is fair, no playback failed", () => {
  assert.equal(run({ error: () => 80 }).report(about).verdict, "poor");
  assert.equal(run({ error: () => 20 }).report(about).verdict, "fair");
  const stalled = run({ stats: (t) => stats({ stalls: t > 30_000 ? 1 : 0 }) }).report(about);
  assert.equal(stalled.verdict, "fair");
  assert.equal(stalled.stalls, 1);
  assert.match(stalled.problems.join(" "), /Ran out of audio 1 time:/);
  const seekOnly = run().report({ ...about, engine: "native", correction: "seek" });
  assert.equal(seekOnly.verdict, "fair");
  assert.equal(seekOnly.correction, "seek");
  assert.equal(run({ struggling: (t) => t > 50_000 }).report(about).verdict, "poor");
  const silent = run({ state: () => "stalled", error: () => null }).report(about);
  assert.equal(silent.verdict, "failed");
  assert.equal(silent.started, false);
  assert.equal(silent.syncP95Ms, null);
  assert.deepEqual(silent.problems, ["Playback did not start."]);
});

test("a browser without a position plays but is poor; one whose position never reads failed", () => {
  const unsynced = run({ error: () => null }).report({ ...about, engine: "unsynced", correction: "none" });
  assert.equal(unsynced.verdict, "poor");
  assert.equal(unsynced.correction, "none");
  assert.equal(run({ error: () => null }).report(about).verdict, "failed");
});

test("readings before the lock are not held against the device", () => {
  const rep = run({ error: (t) => (t < 2000 ? 400 : 1), locked: (t) => t >= 2000 }).report(about);
  assert.equal(rep.syncP95Ms, 1);
  assert.equal(rep.verdict, "good");
});

test("hidden time is summed; audio that stood still while hidden is said", () => {
  const r = new CheckRecorder({ now: 0, stats: stats() });
  r.visibility(true, 10_000, 10);
  r.visibility(false, 20_000, 20); // played on: 10 s of media in 10 s
  r.tick({ now: 30_000, state: "playing", syncError: 1, locked: true, struggling: false, stats: stats() });
  assert.equal(r.report(about).advancedWhileHidden, true);
  r.visibility(true, 30_000, 30);
  r.visibility(false, 40_000, 31); // stopped: 1 s in 10 s
  r.visibility(false, 41_000, 32); // shown twice: nothing more
  r.tick({ now: 60_000, state: "playing", syncError: 1, locked: true, struggling: false, stats: stats() });
  const rep = r.report(about);
  assert.equal(rep.hiddenSeconds, 20);
  assert.equal(rep.advancedWhileHidden, false);
  assert.equal(rep.verdict, "fair");
  assert.match(rep.problems.join(" "), /stopped while the screen was locked/);
});

test("a check that ends while hidden counts the hidden time up to its end", () => {
  const r = new CheckRecorder({ now: 0, stats: stats() });
  r.tick({ now: 30_000, state: "playing", syncError: 1, locked: true, struggling: false, stats: stats() });
  r.visibility(true, 40_000, 40);
  r.tick({ now: 60_000, state: "playing", syncError: 1, locked: true, struggling: false, stats: stats() });
  const rep = r.report({ ...about, mediaTime: 60 });
  assert.equal(rep.hiddenSeconds, 20);
  assert.equal(rep.advancedWhileHidden, true);
  assert.equal(new CheckRecorder({ now: 0, stats: stats() }).report(about).advancedWhileHidden, null);
});
