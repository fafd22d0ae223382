/**
 * Sync controller, pure: no DOM, no timers; the caller passes the time.
 *
 * At server time t every listener should be playing the audio whose
 * program date-time (PDT) is t - D, D being the room's playback delay. Each
 * tick the caller reports the PDT being played and the server time estimate;
 * the controller answers with at most one action:
 *  - |error| > seekThresholdMs (start-up, reconnect, lost data): seek, once
 *    the error has persisted for seekConfirmMs. The first such sample also
 *    asks the caller to verify the clock (`verifyClock`: send a ping burst),
 *    because a jumped clock looks exactly like a jumped media clock; if the
 *    clock did jump, the caller stops passing serverNow until re-measured.
 *  - acquisition: after the input (re)appears (Join, a stall, a seek), the
 *    first samples that agree with each other (the playhead is moving again:
 *    right after a start or a seek it stands still while playback restarts)
 *    decide at once: beyond acquireSeekMs, seek (at 3 % a 400 ms start-up
 *    error would take 13 s to nudge away; a seek while joining is not heard).
 *    Any error, however large, is seeked without the seekConfirmMs wait while
 *    acquiring: nothing is locked that a clock glitch could throw away. Seeks
 *    land late by the time playback takes to restart, so the landing error of
 *    each seek is learned (seekBias) and taken off the next one. Once under
 *    acquireSeekMs, or after maxAcquireSeeks seeks (counted until the next
 *    lock, also across the gaps the seeks themselves cause), the controller
 *    is locked. Join to lock is then about two seeks of ~300 ms each. A seek
 *    whose readings take longer than drySeekMs to come back went outside the
 *    buffer and waited for data: its landing teaches nothing.
 *  - locked: average the error over about a second and, once it passes
 *    startMs, set playbackRate = 1 - clamp(k * error) ONCE; go back to 1.0
 *    when the error falls under stopMs or changes sign. Only if the error
 *    grows to more than twice what the rate was set for is the rate sized
 *    again (a rate change can itself lose tens of ms in Chromium under load).
 * The room's D adapts on the server in steps of up to 100 ms, each a ramp
 * announced ahead (see `delayAt`): through it the target moves at the ramp's
 * slope, so the neutral rate becomes 1 - slope, set once at the ramp's start and
 * back once at its end. Every listener changes its rate at the same moment and
 * they stay together through the step. Samples are shifted with D as it moves.
 * A jump of D (a server without ramps) shifts the samples, and a locked
 * controller sizes the rate for the whole jump at once (no seek within
 * seekThresholdMs).
 * Changing the rate every tick wobbles at ±15 ms forever; this shape held
 * four Chromium pages within 1-7 ms p95 in the prototype. Chromium's reported
 * time jumps ~18 ms right after a rate change, so samples are ignored for
 * settleMs after each change or seek.
 *
 * A controller that never thrashes (a starved page reads a late play head,
 * seeks, stalls and seeks again, feeding its own error):
 *  - a stall is not a sync error. The caller says why the input is missing
 *    (`stalled`: the element waits for data or is seeking, as opposed to paused
 *    or unknown). A stall is a reading followed by a stalled tick that is not
 *    the gap of the controller's own seek (it knows it seeked: the gap lasts
 *    until the next reading). After a stall the playhead is typically behind by
 *    the stall's length; the acquisition that follows seeks a lag only beyond
 *    stallSeekMs and otherwise locks at once and glides with the rate (a lead
 *    is seeked back into the buffer as in any acquisition).
 *  - seeks back off. Each seek is judged: it did not settle if its landing
 *    error (the acquisition decision after it) is beyond landingToleranceMs
 *    (a nearer one is seeked again or glided), once the landing error is
 *    predictable (seekBias learned: the first landing of
 *    a page load teaches it, so a healthy join is still two quick seeks), or
 *    if a stall follows within stallWatchMs of its readings coming back (then
 *    what its landing taught seekBias is taken back). It settled if neither. After n unsettled seeks in a row the next seek waits
 *    backoffBaseMs * 2^(n-1) after the last one (1, 2, 4 … capped at
 *    maxBackoffMs); a settled seek resets n. While a seek has to wait, the
 *    acquisition waits too if the rate would take longer to glide the error
 *    away; otherwise it locks and the locked loop glides with the (clamped)
 *    rate, however large the error.
 *  - a listener that cannot keep up (strugglingAfter unsettled seeks, or as
 *    many stalls, within troubleWindowMs) is `struggling`: it keeps playing,
 *    seeks only for errors beyond hugeErrorMs and at most once per
 *    maxBackoffMs, glides otherwise, and says so (`struggling` on every
 *    action, for the page and its report). It leaves the state after
 *    stableMs of playing without a stall or an unsettled seek; the backoff
 *    stays at maxBackoffMs until a seek settles.
 *
 * Errors are in milliseconds; positive means this listener is ahead.
 */

/**
 * The controller's settings for the browser's own HLS (Safari): rare, small rate steps (a
 * correction starts at 8 ms and moves the rate by at most 1 %), each checked for effect; seeks
 * once rate changes do nothing.
 */
export const NATIVE_SYNC_OPTIONS = Object.freeze({ watchRate: true, startMs: 8, stopMs: 2, maxRateDelta: 0.01, catchUpRateDelta: 0.01 });

/**
 * The room's D (ms) at server time `serverNow` (ms since epoch), and how fast it moves there
 * (its slope, ms per ms): a step of D is a ramp announced ahead, from `fromMs` at
 * `startsAtMs` to `toMs` at `endsAtMs` (server time), which every listener follows at once.
 * @param {number} delayMs D once the latest step has ended (ms)
 * @param {{fromMs: number, toMs: number, startsAtMs: number, endsAtMs: number} | null | undefined} ramp
 * @param {number | null} serverNow server time estimate (ms since epoch), null while unknown
 * @returns {{delayMs: number, slope: number}}
 */
export function delayAt(delayMs, ramp, serverNow) {
  if (!ramp || serverNow === null || ramp.toMs !== delayMs || !(ramp.endsAtMs > ramp.startsAtMs)) return { delayMs, slope: 0 };
  if (serverNow >= ramp.endsAtMs) return { delayMs, slope: 0 };
  if (serverNow <= ramp.startsAtMs) return { delayMs: ramp.fromMs, slope: 0 };
  const slope = (ramp.toMs - ramp.fromMs) / (ramp.endsAtMs - ramp.startsAtMs);
  return { delayMs: ramp.fromMs + slope * (serverNow - ramp.startsAtMs), slope };
}

/**
 * @typedef {object} SyncAction
 * @property {number} [seekTo] PDT to seek to, ms since the Unix epoch
 * @property {number} [playbackRate] new media playbackRate
 * @property {number | null} error smoothed error (ms), null while unknown
 * @property {number | null} rawError this tick's error (ms), null without input
 * @property {boolean} [verifyClock] re-check the server clock now (ping burst)
 * @property {boolean} struggling this listener cannot keep up (keeps stalling, or its seeks do not settle)
 * @property {"stalls" | "seeks"} [strugglingReason] why, while struggling
 */

export class SyncController {
  /**
   * @param {object} [opts]
   * @param {number} [opts.seekThresholdMs=500] seek beyond this error (ms)
   * @param {number} [opts.seekConfirmMs=500] how long (ms) the error must stay beyond it before seeking
   * @param {number} [opts.verifyEveryMs=5000] ask for a clock check at most this often (ms)
   * @param {number} [opts.windowMs=1000] averaging window (ms)
   * @param {number} [opts.minSpanMs=700] samples must span this long (ms) before acting
   * @param {number} [opts.startMs=2.5] start correcting past this averaged error (ms)
   * @param {number} [opts.stopMs=1] stop correcting under this averaged error (ms)
   * @param {number} [opts.gainPerSecond=0.5] k: rate offset per second of error
   * @param {number} [opts.maxRateDelta=0.03] clamp of |playbackRate - 1|
   * @param {number} [opts.catchUpRateDelta=0.08] the clamp instead for the first correction after an acquisition
   *   locked beyond acquireSeekMs, unless struggling (a lag after a stall, what maxAcquireSeeks seeks left): at 3 % a 100 ms error
   *   takes 3 s to glide away, at its k-sized 5 % 2 s. Jellyfin's SyncPlay speeds up to take errors out within a second.
   * @param {number} [opts.settleMs=300] samples ignored after a rate change (ms)
   * @param {number} [opts.seekSettleMs=150] samples ignored after a seek (ms)
   * @param {number} [opts.acquireSeekMs=25] until locked, seek when the averaged error is beyond this (ms)
   * @param {number} [opts.acquireSpanMs=80] agreeing samples must span this long (ms) before an acquisition decision
   * @param {number} [opts.agreeMs=5] while acquiring, a sample that moved more than this (ms) from the one before
   *   (the playhead is still restarting) starts the acquisition samples afresh
   * @param {number} [opts.acquireWaitMs=1000] after this long (ms) without agreeing samples, decide on the mean anyway
   * @param {number} [opts.maxAcquireSeeks=4] acquisition seeks before falling back to rate nudges
   * @param {number} [opts.seekBias=0] landing error of a seek (ms) learned in an earlier session on this device
   * @param {number} [opts.stallSeekMs=250] after a stall, seek only when the error is beyond this (ms); glide otherwise
   * @param {number} [opts.drySeekMs=300] a seek whose readings took longer than this (ms) to come back had to wait
   *   for data: where it landed teaches nothing about where seeks land
   * @param {number} [opts.landingToleranceMs=100] a seek that lands further (ms) from its target did not settle
   *   (within it, the rest is seeked again while acquiring, or glided)
   * @param {number} [opts.stallWatchMs=2000] a stall this soon (ms) after a seek's readings came back: the seek did not settle
   * @param {number} [opts.backoffBaseMs=1000] wait (ms) before the next seek after one unsettled seek; doubles with each
   * @param {number} [opts.maxBackoffMs=30000] cap of that wait (ms)
   * @param {number} [opts.strugglingAfter=3] this many stalls, or unsettled seeks, within troubleWindowMs: struggling
   * @param {number} [opts.troubleWindowMs=30000] window (ms) for strugglingAfter
   * @param {number} [opts.stableMs=20000] playing this long (ms) without a stall or an unsettled seek ends struggling
   * @param {number} [opts.hugeErrorMs=3000] while struggling, seek only beyond this error (ms)
   * @param {boolean} [opts.watchRate=false] check that each rate correction moved the error (Safari's native HLS
   *   may ignore or stutter on rate changes): after rateIgnoredLimit corrections in a row that did not, correct
   *   by seeking only, errors beyond seekOnlyMs
   * @param {number} [opts.rateIgnoredLimit=2] see watchRate
   * @param {number} [opts.seekOnlyMs=40] without a working rate, seek errors beyond this (ms); smaller ones stay
   */
  constructor({
    seekThresholdMs = 500,
    seekConfirmMs = 500,
    verifyEveryMs = 5000,
    windowMs = 1000,
    minSpanMs = 700,
    startMs = 2.5,
    stopMs = 1,
    gainPerSecond = 0.5,
    maxRateDelta = 0.03,
    catchUpRateDelta = 0.08,
    settleMs = 300,
    seekSettleMs = 150,
    acquireSeekMs = 25,
    acquireSpanMs = 80,
    agreeMs = 5,
    acquireWaitMs = 1000,
    maxAcquireSeeks = 4,
    seekBias = 0,
    stallSeekMs = 250,
    drySeekMs = 300,
    stallWatchMs = 2000,
    landingToleranceMs = 100,
    backoffBaseMs = 1000,
    maxBackoffMs = 30_000,
    strugglingAfter = 3,
    troubleWindowMs = 30_000,
    stableMs = 20_000,
    hugeErrorMs = 3000,
    watchRate = false,
    rateIgnoredLimit = 2,
    seekOnlyMs = 40,
  } = {}) {
    Object.assign(this, {
      seekThresholdMs, seekConfirmMs, verifyEveryMs, windowMs, minSpanMs, startMs, stopMs, gainPerSecond,
      maxRateDelta, catchUpRateDelta, settleMs, seekSettleMs, acquireSeekMs, acquireSpanMs, agreeMs, acquireWaitMs, maxAcquireSeeks,
      stallSeekMs, drySeekMs, stallWatchMs, landingToleranceMs, backoffBaseMs, maxBackoffMs, strugglingAfter, troubleWindowMs, stableMs, hugeErrorMs,
      watchRate, rateIgnoredLimit, seekOnlyMs,
    });
    /** Whether rate changes move the error; false once they were refused or had no effect (see watchRate). */
    this.rateWorks = true;
    /**
     * The last rate correction, until judged: the error (ms) it started from, at local ms `t`,
     * the slope it was set for (ms per ms), and `end`, the local ms it ended (null while on).
     * @type {{t: number, e: number, slope: number, end: number | null} | null}
     */
    this.rateCheck = null;
    /** Rate corrections in a row that did not move the error. */
    this.rateIgnoredInRow = 0;
    /** False until the error has been brought under acquireSeekMs since the input (re)appeared. */
    this.locked = false;
    /** Locked with an error beyond acquireSeekMs: the first correction may use catchUpRateDelta. */
    this.catchingUp = false;
    this.acquireSeeks = 0;
    /** Learned landing error of seeks (ms, positive = lands ahead), subtracted from the next seek target. */
    this.seekBias = seekBias;
    /** Whether seekBias comes from a landing seen (here or, passed in, in an earlier session). */
    this.biasLearned = seekBias !== 0;
    /**
     * Whether seekBias comes from a landing seen on this page load. One from an earlier session
     * places the first seek, but that page may have been busier or quieter: the first landing
     * here replaces it.
     */
    this.biasLearnedHere = false;
    /** Local ms of the first settled sample of the current acquisition, or null. */
    this.acquireSince = null;
    this.pendingSeekCheck = false;
    /** Current playbackRate as last set by this controller. */
    this.rate = 1;
    /** The rate at which the error stands still: 1 - the slope of D (1 but inside a ramp of D). */
    this.baseRate = 1;
    /** The error (ms) the current rate was set to take out. */
    this.correcting = 0;
    /** @type {{t: number, e: number}[]} settled samples at the current rate (t = local ms, e = error ms) */
    this.window = [];
    this.settleUntil = -Infinity;
    /** Local ms when the current run of beyond-threshold samples began, or null. */
    this.outlierSince = null;
    this.lastVerifyAt = -Infinity;
    /** Smoothed error (ms) from the last tick, null while unknown. */
    this.error = null;
    /** Whether the last tick had a reading (a stall is a reading followed by a stalled tick). */
    this.hadReading = false;
    /** Local ms since when the input has been read without a gap, or null. */
    this.readingSince = null;
    /** True from a seek until the next reading: missing input then is the seek's own, not a stall. */
    this.seekGap = false;
    /** The next acquisition follows a stall: seek only beyond stallSeekMs. */
    this.afterStall = false;
    /** D (ms) at the last reading, null after a gap: a step of D is glided through at once. */
    this.lastDelayMs = null;
    /** Local ms of the last seek. */
    this.lastSeekAt = -Infinity;
    /** D (ms) when the last seek was made. */
    this.delayAtSeekMs = 0;
    /** How long (ms) the readings took to come back after the last seek. */
    this.lastSeekGapMs = 0;
    /** Unsettled seeks since the last settled one: the backoff exponent. */
    this.unsettled = 0;
    /**
     * The last seek, until judged: `landed` once its landing error was within bounds,
     * `watchUntil` (local ms) the end of its stall watch, set when its readings come back,
     * `before` the landing error learned before its landing (restored if a stall follows).
     * @type {{landed: boolean, watchUntil: number | null, before?: {seekBias: number, biasLearned: boolean}} | null}
     */
    this.judging = null;
    /** Local ms of recent stalls and unsettled seeks (within troubleWindowMs). */
    this.stallTimes = [];
    this.unsettledTimes = [];
    /** Local ms of the last stall or unsettled seek. */
    this.lastTroubleAt = -Infinity;
    /** This listener cannot keep up: it plays on, glides, and seeks only for huge errors. */
    this.struggling = false;
    /** @type {"stalls" | "seeks" | null} */
    this.strugglingReason = null;
    /** Counters, for tests and diagnostics. */
    this.stats = { rateChanges: 0, seeks: 0, acquireSeeks: 0, stalls: 0, unsettledSeeks: 0, settledSeeks: 0, struggles: 0, rateIgnored: 0 };
  }

  /**
   * One tick.
   * @param {object} input
   * @param {number} input.now local monotonic time (ms)
   * @param {number | null} input.playingPdt PDT being played (ms since epoch); null when not playing
   * @param {number | null} input.serverNow server time estimate (ms since epoch); null when unknown
   * @param {number} input.delayMs playback delay D (ms)
   * @param {number} [input.delaySlope=0] how fast D moves now (ms per ms, inside a ramp; see `delayAt`)
   * @param {number} [input.uncertaintyMs=0] how far off serverNow can be (ms): no correction starts for an error
   *   within half of it
   * @param {boolean} [input.stalled=false] with playingPdt null: the element should be playing but waits for data
   *   or is seeking (rather than paused, or its position unknown)
   * @returns {SyncAction}
   */
  update(input) {
    const action = this.step(input);
    action.struggling = this.struggling;
    if (this.struggling) action.strugglingReason = this.strugglingReason;
    return action;
  }

  /** @private */
  step({ now, playingPdt, serverNow, delayMs, delaySlope = 0, uncertaintyMs = 0, stalled = false }) {
    this.forgetTrouble(now);
    const previousBase = this.baseRate;
    this.baseRate = 1 - delaySlope;
    const baseShift = this.baseRate - previousBase;
    if (playingPdt === null || serverNow === null || !Number.isFinite(playingPdt) || !Number.isFinite(serverNow)) {
      if (stalled && this.hadReading && !this.seekGap) this.stall(now);
      else if (!stalled) this.afterStall = false; // paused or unknown: a fresh acquisition
      this.hadReading = false;
      this.readingSince = null;
      this.lastDelayMs = null;
      this.window = [];
      this.outlierSince = null;
      this.error = null;
      this.unlock();
      return this.rate === this.baseRate ? { error: null, rawError: null } : { ...this.setRate(this.baseRate, now, this.settleMs), error: null, rawError: null };
    }
    this.reading(now);
    const target = serverNow - delayMs;
    const rawError = playingPdt - target;
    const delayStep = this.lastDelayMs === null ? 0 : delayMs - this.lastDelayMs;
    this.lastDelayMs = delayMs;
    // The room's D moved: the target moved by exactly that much, and every sample taken
    // before moves with it.
    for (const s of this.window) s.e += delayStep;
    if (baseShift !== 0) {
      // D starts or stops moving (a ramp, announced ahead): every listener shifts its rate by
      // the same amount at the same moment, whatever it was correcting. One that locked with an
      // error still to take out starts on it now: the window restarts at every rate change, and
      // waiting for the next would keep it off for another second.
      if (this.catchingUp && Math.abs(this.rate - previousBase) < 1e-9 && this.window.length >= 2) {
        const error = this.projected(now);
        if (Math.abs(error) > this.startMs) return { ...this.correct(error, now), error, rawError };
      }
      return { ...this.setRate(this.rate + baseShift, now, this.settleMs), error: this.error, rawError };
    }
    if (delayStep !== 0 && delaySlope === 0) {
      // D jumped: a locked listener glides through the whole jump at once, rather than
      // waiting for its window to show it (and each listener then at its own time).
      if (this.locked && Math.abs(rawError) <= this.seekThresholdMs) {
        const error = this.window.length ? this.projected(now) : this.error !== null ? this.error + delayStep : rawError;
        this.error = error;
        this.outlierSince = null;
        if (Math.abs(error) > this.startMs) return { ...this.correct(error, now), error, rawError };
      }
    }

    if (Math.abs(rawError) > this.seekThresholdMs && this.locked) {
      if (this.outlierSince === null) {
        this.outlierSince = now;
        if (now - this.lastVerifyAt >= this.verifyEveryMs) {
          this.lastVerifyAt = now;
          return { error: this.error, rawError, verifyClock: true };
        }
      }
      if (now - this.outlierSince < this.seekConfirmMs) return { error: this.error, rawError };
      if (this.seekAllowed(now, rawError)) {
        this.outlierSince = null;
        this.unlock();
        return this.seek(target, rawError, now);
      }
      // Seeks are backed off (or this listener cannot keep up): glide with the rate instead.
    } else {
      this.outlierSince = null;
    }
    if (now < this.settleUntil) return { error: this.error, rawError };

    if (!this.locked) return this.acquire(now, target, rawError);
    this.window.push({ t: now, e: rawError });
    while (this.window.length && now - this.window[0].t > this.windowMs) this.window.shift();
    const error = this.projected(now);
    this.error = error;
    if (now - this.window[0].t < this.minSpanMs) return { error, rawError };

    if (this.rate === this.baseRate) {
      if (this.rateCheck?.end != null) {
        const { t, e, slope, end } = this.rateCheck;
        this.rateCheck = null;
        this.judgeRate(error - e, slope * (end - t));
      }
      if (!this.rateWorks) {
        // Corrections by rate do nothing here: a seek for an error worth one, within the backoff.
        if (Math.abs(error) <= this.seekOnlyMs || !this.seekAllowed(now, error)) return { error, rawError };
        this.unlock();
        return this.seek(target, error, now);
      }
      // A rate change is not free (Chromium can lose tens of ms at one under load): none for
      // an error the clock estimate cannot vouch for. Its uncertainty is a bound of 2.5
      // standard errors: an error beyond half of it is more likely the playhead's than the
      // clock's (gated by the whole bound, a listener on a 100 ± 25 ms path was left anywhere
      // within ±4 ms of its target).
      if (Math.abs(error) <= Math.max(this.startMs, uncertaintyMs / 2)) return { error, rawError };
      return { ...this.correct(error, now), error, rawError };
    }
    if (this.rateCheck && this.rateCheck.end === null) {
      // While the rate is on, the readings themselves (not the projection, which assumes the
      // rate works) show whether the error moves with it.
      const n = this.window.length;
      const meanE = this.window.reduce((s, x) => s + x.e, 0) / n;
      const meanT = this.window.reduce((s, x) => s + x.t, 0) / n;
      const { t, e, slope } = this.rateCheck;
      const verdict = this.judgeRate(meanE - e, slope * (meanT - t));
      if (verdict !== "unknown") this.rateCheck = null;
      if (verdict === "ignored") return { ...this.setRate(this.baseRate, now, this.settleMs), error: meanE, rawError };
    }
    const correctingAhead = this.rate < this.baseRate;
    if (Math.abs(error) < this.stopMs || (error > 0) !== correctingAhead) {
      if (this.rateCheck && this.rateCheck.end === null) this.rateCheck.end = now;
      this.catchingUp = false;
      return { ...this.setRate(this.baseRate, now, this.settleMs), error, rawError };
    }
    if (Math.abs(error) > 2 * Math.abs(this.correcting) + this.startMs) {
      // The error grew well past what the rate was set for (Chromium can lose tens of ms
      // of playback at a rate change under load): size the rate again, once.
      return { ...this.correct(error, now), error, rawError };
    }
    return { error, rawError };
  }

  /**
   * One settled sample while not locked: collect samples that agree with each other,
   * then seek or lock.
   * @private
   */
  acquire(now, target, rawError) {
    // A huge error might be the clock's: have it checked, but do not wait for the answer.
    const verify = Math.abs(rawError) > this.seekThresholdMs && now - this.lastVerifyAt >= this.verifyEveryMs ? { verifyClock: true } : {};
    if (verify.verifyClock) this.lastVerifyAt = now;
    this.acquireSince ??= now;
    const last = this.window.at(-1);
    const patient = now - this.acquireSince < this.acquireWaitMs;
    if (last && patient && Math.abs(rawError - last.e - (this.rate - 1) * (now - last.t)) > this.agreeMs) {
      // Still moving relative to the clock: playback has not (re)started yet.
      this.window = [];
    }
    this.window.push({ t: now, e: rawError });
    while (this.window.length && now - this.window[0].t > this.windowMs) this.window.shift();
    const error = this.projected(now);
    this.error = error;
    if (this.window.length < 2 || now - this.window[0].t < this.acquireSpanMs) return { error, rawError, ...verify };
    if (this.pendingSeekCheck) {
      // How far the last seek landed from its target: learn it for the next one. The first
      // landing of the page load, and a landing after an earlier seek of the same acquisition
      // (the residual is what the bias missed), are taken whole; the first landing of a later
      // acquisition is averaged in, so that one odd landing does not throw the next seek off.
      // Halving the residual on every seek left a busy page above acquireSeekMs after
      // maxAcquireSeeks and locked it 3 s late.
      this.pendingSeekCheck = false;
      const sameAcquisition = this.acquireSeeks >= 2;
      const predictable = this.biasLearned;
      if (this.judging) this.judging.before = { seekBias: this.seekBias, biasLearned: this.biasLearned };
      // The room's D moved since the seek (a step while joining): the target moved by that
      // much, which is no part of where the seek landed.
      const landing = error - (this.lastDelayMs - this.delayAtSeekMs);
      // A seek outside the buffer waits for data, and lands late by that wait: not a landing to learn.
      if (this.lastSeekGapMs <= this.drySeekMs) {
        const weight = this.biasLearnedHere && !sameAcquisition ? 0.5 : 1;
        this.seekBias = Math.max(-300, Math.min(300, this.seekBias + weight * landing));
        this.biasLearned = true;
        this.biasLearnedHere = true;
      }
      // A landing that could not be predicted (the first one teaches the bias) is no failure.
      if (this.judging) {
        if (predictable && Math.abs(landing) > this.landingToleranceMs) this.seekUnsettled(now);
        else this.judging.landed = true;
      }
    }
    // After a stall a small lag is glided away: a seek forward costs another gap, which a
    // starved page may not refill in time. Being ahead is seeked away as usual: the seek goes
    // back into audio already buffered, and gliding 100 ms at the clamped rate takes seconds.
    const seekBeyond = this.afterStall && error < 0 ? this.stallSeekMs : this.acquireSeekMs;
    if (Math.abs(error) > seekBeyond && this.acquireSeeks < this.maxAcquireSeeks) {
      if (this.seekAllowed(now, error)) {
        this.acquireSeeks += 1;
        this.stats.acquireSeeks += 1;
        return { ...this.seek(target, error, now), ...verify };
      }
      // The backoff ends sooner than the rate could take the error out: wait for it.
      const wait = this.lastSeekAt + this.backoffMs() - now;
      if (!this.struggling && wait < Math.abs(error) / this.maxRateDelta) return { error, rawError, ...verify };
    }
    this.locked = true;
    // A struggling listener glides gently: its errors can be seconds, and it cannot keep up anyway.
    this.catchingUp = !this.struggling && Math.abs(error) > this.acquireSeekMs;
    this.afterStall = false;
    this.acquireSeeks = 0;
    this.acquireSince = null;
    // The rate control starts from these samples.
    return { error, rawError, ...verify };
  }

  /**
   * Sets the rate that takes out `error` (ms) at gainPerSecond, clamped.
   * @private
   */
  correct(error, now) {
    this.correcting = error;
    const clamp = this.catchingUp ? this.catchUpRateDelta : this.maxRateDelta;
    const delta = Math.max(-clamp, Math.min(clamp, this.gainPerSecond * error / 1000));
    if (this.watchRate) this.rateCheck = { t: now, e: error, slope: -delta, end: null };
    return this.setRate(this.baseRate - delta, now, this.settleMs);
  }

  /**
   * The element refused a rate (it threw, or reads back another): correct by seeking from now on.
   * The controller's rate is the base rate again (the page sets the element back to it).
   * @param {number} now local ms
   * @returns {SyncAction}
   */
  rateRefused(now) {
    this.stats.rateIgnored += 1;
    this.rateWorks = false;
    this.rateCheck = null;
    this.rate = this.baseRate;
    this.restart(now, this.settleMs);
    return { error: this.error, rawError: null };
  }

  /**
   * Did a rate correction move the error (`moved`, ms) by at least a quarter of what it was
   * set for (`expected`, ms)? Less than 4 ms expected tells nothing: readings are that noisy.
   * @private
   * @returns {"works" | "ignored" | "unknown"}
   */
  judgeRate(moved, expected) {
    if (Math.abs(expected) < 4) return "unknown";
    if (moved / expected >= 0.25) {
      this.rateIgnoredInRow = 0;
      return "works";
    }
    this.stats.rateIgnored += 1;
    this.rateIgnoredInRow += 1;
    if (this.rateIgnoredInRow >= this.rateIgnoredLimit) this.rateWorks = false;
    return "ignored";
  }

  /**
   * Mean of the window, carried forward to `now`: at playbackRate r the error
   * moves by (r - 1) ms per ms, and the window only holds samples taken at the
   * current rate, so the mean (taken at the window's mean time) is projected.
   * @private
   */
  projected(now) {
    const n = this.window.length;
    const meanE = this.window.reduce((s, x) => s + x.e, 0) / n;
    const meanT = this.window.reduce((s, x) => s + x.t, 0) / n;
    return meanE + (this.rate - 1) * (now - meanT);
  }

  /**
   * Seeks to `target` (corrected by the learned landing error) and waits for it to settle.
   * @private
   */
  seek(target, error, now) {
    this.stats.seeks += 1;
    this.delayAtSeekMs = this.lastDelayMs;
    this.rateCheck = null;
    this.acquireSince = null;
    this.pendingSeekCheck = true;
    this.lastSeekAt = now;
    this.seekGap = true;
    this.afterStall = false;
    this.judging = { landed: false, watchUntil: null };
    const action = { seekTo: target - this.seekBias, error, rawError: error };
    if (this.rate !== this.baseRate) Object.assign(action, this.setRate(this.baseRate, now, this.seekSettleMs));
    else this.restart(now, this.seekSettleMs);
    this.error = error;
    return action;
  }

  /**
   * The next settled samples decide afresh whether a seek is needed (start-up, after a gap or
   * a big jump). The acquisition seek count is kept until the next lock: a seek's own gap in
   * the input must not reset it.
   * @private
   */
  unlock() {
    this.locked = false;
    this.catchingUp = false;
    this.acquireSince = null;
  }

  /**
   * Whether a seek for `error` (ms) may be made now: not before the backoff after the last
   * seek has passed, and while struggling only for a huge error, at most once per maxBackoffMs.
   * @private
   */
  seekAllowed(now, error) {
    if (this.struggling) return Math.abs(error) > this.hugeErrorMs && now - this.lastSeekAt >= this.maxBackoffMs;
    return now - this.lastSeekAt >= this.backoffMs();
  }

  /** Minimum wait (ms) between the last seek and the next one. */
  backoffMs() {
    return this.unsettled === 0 ? 0 : Math.min(this.maxBackoffMs, this.backoffBaseMs * 2 ** (this.unsettled - 1));
  }

  /**
   * A tick with a reading: ends the gap of a seek (starting its stall watch), judges a seek
   * that landed and was not followed by a stall as settled, and ends struggling once stable.
   * @private
   */
  reading(now) {
    if (!this.hadReading) this.readingSince = now;
    this.hadReading = true;
    if (this.seekGap) {
      this.seekGap = false;
      this.lastSeekGapMs = now - this.lastSeekAt;
      if (this.judging) this.judging.watchUntil = now + this.stallWatchMs;
    }
    const j = this.judging;
    if (j && j.landed && j.watchUntil !== null && now >= j.watchUntil) {
      this.judging = null;
      this.unsettled = 0;
      this.stats.settledSeeks += 1;
    }
    if (this.struggling && now - Math.max(this.lastTroubleAt, this.readingSince) >= this.stableMs) {
      this.struggling = false;
      this.strugglingReason = null;
      this.stallTimes = [];
      this.unsettledTimes = [];
    }
  }

  /**
   * The element stopped for data while playing (not this controller's seek).
   * @private
   */
  stall(now) {
    this.stats.stalls += 1;
    this.stallTimes.push(now);
    this.lastTroubleAt = now;
    this.afterStall = true;
    // The readings after it show the stall, not where the last seek landed.
    this.pendingSeekCheck = false;
    const j = this.judging;
    if (j && j.watchUntil !== null && now < j.watchUntil) {
      // A seek that ran dry tells nothing about where seeks land: forget what it taught.
      if (j.before) Object.assign(this, j.before);
      this.seekUnsettled(now);
    } else {
      this.judging = null;
    }
    this.checkStruggling();
  }

  /** @private */
  seekUnsettled(now) {
    this.judging = null;
    this.unsettled += 1;
    this.stats.unsettledSeeks += 1;
    this.unsettledTimes.push(now);
    this.lastTroubleAt = now;
    this.checkStruggling();
  }

  /** @private */
  checkStruggling() {
    if (this.struggling) return;
    const seeks = this.unsettledTimes.length >= this.strugglingAfter;
    if (!seeks && this.stallTimes.length < this.strugglingAfter) return;
    this.struggling = true;
    this.strugglingReason = seeks ? "seeks" : "stalls";
    this.stats.struggles += 1;
    // Seeks wait the longest until one settles, also once the struggle is over.
    this.unsettled = Math.max(this.unsettled, 1 + Math.ceil(Math.log2(this.maxBackoffMs / this.backoffBaseMs)));
  }

  /** @private */
  forgetTrouble(now) {
    while (this.stallTimes.length && now - this.stallTimes[0] > this.troubleWindowMs) this.stallTimes.shift();
    while (this.unsettledTimes.length && now - this.unsettledTimes[0] > this.troubleWindowMs) this.unsettledTimes.shift();
  }

  /** @private */
  setRate(rate, now, settleMs) {
    this.rate = rate;
    this.stats.rateChanges += 1;
    this.restart(now, settleMs);
    return { playbackRate: rate };
  }

  /** @private */
  restart(now, settleMs) {
    this.window = [];
    this.settleUntil = now + settleMs;
  }
}
