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
 *    is locked. Join to lock is then about two seeks of ~300 ms each.
 *  - locked: average the error over about a second and, once it passes
 *    startMs, set playbackRate = 1 - clamp(k * error) ONCE; go back to 1.0
 *    when the error falls under stopMs or changes sign. Only if the error
 *    grows to more than twice what the rate was set for is the rate sized
 *    again (a rate change can itself lose tens of ms in Chromium under load).
 * Changing the rate every tick wobbles at ±15 ms forever; this shape held
 * four Chromium pages within 1-7 ms p95 in the prototype. Chromium's reported
 * time jumps ~18 ms right after a rate change, so samples are ignored for
 * settleMs after each change or seek.
 *
 * Errors are in milliseconds; positive means this listener is ahead.
 */

/**
 * @typedef {object} SyncAction
 * @property {number} [seekTo] PDT to seek to, ms since the Unix epoch
 * @property {number} [playbackRate] new media playbackRate
 * @property {number | null} error smoothed error (ms), null while unknown
 * @property {number | null} rawError this tick's error (ms), null without input
 * @property {boolean} [verifyClock] re-check the server clock now (ping burst)
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
   * @param {number} [opts.settleMs=300] samples ignored after a rate change (ms)
   * @param {number} [opts.seekSettleMs=150] samples ignored after a seek (ms)
   * @param {number} [opts.acquireSeekMs=25] until locked, seek when the averaged error is beyond this (ms)
   * @param {number} [opts.acquireSpanMs=80] agreeing samples must span this long (ms) before an acquisition decision
   * @param {number} [opts.agreeMs=5] while acquiring, a sample that moved more than this (ms) from the one before
   *   (the playhead is still restarting) starts the acquisition samples afresh
   * @param {number} [opts.acquireWaitMs=1000] after this long (ms) without agreeing samples, decide on the mean anyway
   * @param {number} [opts.maxAcquireSeeks=4] acquisition seeks before falling back to rate nudges
   * @param {number} [opts.seekBias=0] landing error of a seek (ms) learned in an earlier session on this device
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
    settleMs = 300,
    seekSettleMs = 150,
    acquireSeekMs = 25,
    acquireSpanMs = 80,
    agreeMs = 5,
    acquireWaitMs = 1000,
    maxAcquireSeeks = 4,
    seekBias = 0,
  } = {}) {
    Object.assign(this, {
      seekThresholdMs, seekConfirmMs, verifyEveryMs, windowMs, minSpanMs, startMs, stopMs, gainPerSecond,
      maxRateDelta, settleMs, seekSettleMs, acquireSeekMs, acquireSpanMs, agreeMs, acquireWaitMs, maxAcquireSeeks,
    });
    /** False until the error has been brought under acquireSeekMs since the input (re)appeared. */
    this.locked = false;
    this.acquireSeeks = 0;
    /** Learned landing error of seeks (ms, positive = lands ahead), subtracted from the next seek target. */
    this.seekBias = seekBias;
    /** Whether seekBias comes from a landing seen (here or, passed in, in an earlier session). */
    this.biasLearned = seekBias !== 0;
    /** Local ms of the first settled sample of the current acquisition, or null. */
    this.acquireSince = null;
    this.pendingSeekCheck = false;
    /** Current playbackRate as last set by this controller. */
    this.rate = 1;
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
    /** Counters, for tests and diagnostics. */
    this.stats = { rateChanges: 0, seeks: 0, acquireSeeks: 0 };
  }

  /**
   * One tick.
   * @param {object} input
   * @param {number} input.now local monotonic time (ms)
   * @param {number | null} input.playingPdt PDT being played (ms since epoch); null when not playing
   * @param {number | null} input.serverNow server time estimate (ms since epoch); null when unknown
   * @param {number} input.delayMs playback delay D (ms)
   * @param {number} [input.uncertaintyMs=0] how far off serverNow can be (ms): no correction starts for a smaller error
   * @returns {SyncAction}
   */
  update({ now, playingPdt, serverNow, delayMs, uncertaintyMs = 0 }) {
    if (playingPdt === null || serverNow === null || !Number.isFinite(playingPdt) || !Number.isFinite(serverNow)) {
      this.window = [];
      this.outlierSince = null;
      this.error = null;
      this.unlock();
      return this.rate === 1 ? { error: null, rawError: null } : { ...this.setRate(1, now, this.settleMs), error: null, rawError: null };
    }
    const target = serverNow - delayMs;
    const rawError = playingPdt - target;

    if (Math.abs(rawError) > this.seekThresholdMs && this.locked) {
      if (this.outlierSince === null) {
        this.outlierSince = now;
        if (now - this.lastVerifyAt >= this.verifyEveryMs) {
          this.lastVerifyAt = now;
          return { error: this.error, rawError, verifyClock: true };
        }
      }
      if (now - this.outlierSince >= this.seekConfirmMs) {
        this.outlierSince = null;
        this.unlock();
        return this.seek(target, rawError, now);
      }
      return { error: this.error, rawError };
    }
    this.outlierSince = null;
    if (now < this.settleUntil) return { error: this.error, rawError };

    if (!this.locked) return this.acquire(now, target, rawError);
    this.window.push({ t: now, e: rawError });
    while (this.window.length && now - this.window[0].t > this.windowMs) this.window.shift();
    const error = this.projected(now);
    this.error = error;
    if (now - this.window[0].t < this.minSpanMs) return { error, rawError };

    if (this.rate === 1) {
      // A rate change is not free (Chromium can lose tens of ms at one under load): none for
      // an error the clock estimate cannot vouch for.
      if (Math.abs(error) <= Math.max(this.startMs, uncertaintyMs)) return { error, rawError };
      return { ...this.correct(error, now), error, rawError };
    }
    const correctingAhead = this.rate < 1;
    if (Math.abs(error) < this.stopMs || (error > 0) !== correctingAhead) {
      return { ...this.setRate(1, now, this.settleMs), error, rawError };
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
      // landing is taken whole; later ones are averaged in, so that one seek that had to wait
      // for data (after a stall) does not throw the next one off.
      this.pendingSeekCheck = false;
      this.seekBias = Math.max(-300, Math.min(300, this.seekBias + (this.biasLearned ? 0.5 : 1) * error));
      this.biasLearned = true;
    }
    if (Math.abs(error) > this.acquireSeekMs && this.acquireSeeks < this.maxAcquireSeeks) {
      this.acquireSeeks += 1;
      this.stats.acquireSeeks += 1;
      return { ...this.seek(target, error, now), ...verify };
    }
    this.locked = true;
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
    const delta = Math.max(-this.maxRateDelta, Math.min(this.maxRateDelta, this.gainPerSecond * error / 1000));
    return this.setRate(1 - delta, now, this.settleMs);
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
    this.acquireSince = null;
    this.pendingSeekCheck = true;
    const action = { seekTo: target - this.seekBias, error, rawError: error };
    if (this.rate !== 1) Object.assign(action, this.setRate(1, now, this.seekSettleMs));
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
    this.acquireSince = null;
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
