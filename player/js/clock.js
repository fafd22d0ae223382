/**
 * Server clock estimator (NTP-style offset and drift), pure: no DOM, no timers.
 *
 * Every ping/pong exchange yields four timestamps, all in milliseconds:
 * t0 client send, t1 server receive, t2 server send (server clock, ms since
 * the Unix epoch) and t3 client receive (local clock). Then
 *   offset = ((t1 - t0) + (t2 - t3)) / 2   (server clock minus local clock)
 *   rtt    = (t3 - t0) - (t2 - t1)          (network round trip)
 * and the sample stands for the offset at the local midpoint (t0 + t3) / 2.
 *
 * How the estimate is made (after NTP's clock filter and chrony's regression):
 *  - Samples are kept for `maxAgeMs` (5 minutes). Queueing only ever adds
 *    delay, and a sample's offset error is half the difference between its
 *    two one-way delays, so it is at most half of its RTT above the path's
 *    minimum: the `best` lowest-RTT samples of the window are fitted, each
 *    weighted by 1 / (rtt - minRtt + c)^2 (c = weightFloorMs), i.e. by how
 *    little queueing it can hold.
 *  - The fit is a weighted line, offset = a + drift * (t - tMean): crystals
 *    drift up to ~100 ppm, 30 ms over the window. The drift has a prior
 *    (0, or the last fitted drift after a reset) with a spread of
 *    `driftPriorPpm`, so a short or noisy span (a burst right after connect)
 *    falls back to offset only, smoothly, instead of fitting noise (ridge
 *    regression: slope = (Sxy + lambda * prior) / (Sxx + lambda),
 *    lambda = residual variance / prior variance).
 *  - `uncertainty()` is the estimate's own error: k standard errors of the
 *    fitted value now (from the weighted residuals, including the drift's
 *    extrapolation), at least floorMs. It is NOT rtt / 2: that is only the
 *    worst case of a fully one-sided path. Until a few samples are in, it is
 *    the hard bound: half the best sample's RTT.
 *  - Clock jumps: a new sample further from the fit than its own possible
 *    error ((rtt - minRtt) / 2), the fit's (the weighted mean of the same
 *    bound over the fitted samples, plus 3 standard errors) and
 *    jumpToleranceMs is a suspect, kept out of the fit. `jumpConfirm`
 *    suspects that agree with each other within their own bounds are a jump:
 *    the old samples are dropped and the suspects start the new estimate. A
 *    sample that agrees with the fit but not with the suspects dismisses
 *    them. Jitter, however large, moves a sample by at most half its extra
 *    RTT, which the bound allows for, so jitter and RTT spikes never fire it.
 *
 * The limit no two-way method can pass: if the path is asymmetric (say 10 ms
 * up and 90 ms down at the minimum), every sample, and so the estimate, is
 * off by half the difference (40 ms here), and nothing in the timestamps
 * shows it. Only the hard bound, half the minimum RTT, holds whatever the
 * path; `uncertainty()` assumes the path's minimum delays are about the same
 * both ways, which holds on most paths (the same route both ways, queueing
 * mostly on the way that carries traffic, which the low-RTT filter removes).
 *
 * The local clock is whatever `now()` the caller uses for t0 and t3. The
 * browser passes `performance.timeOrigin + performance.now()`, which is
 * monotonic, so a step of the system clock does not move it; what remains
 * (suspend/resume, a server restart on another machine, a stepped server
 * clock) shows up as the jump above, and the caller should re-measure.
 */

/**
 * @typedef {{offset: number, rtt: number, at: number, received: number}} Sample
 *   offset/rtt in ms; at = local ms of the exchange's midpoint; received = local ms at t3
 */

/**
 * @typedef {object} Fit
 * @property {number} tMean local ms the line is centred on
 * @property {number} offset offset at tMean (ms)
 * @property {number} drift ms of offset per local ms (1e-6 = 1 ppm)
 * @property {number} varMean variance of `offset` (ms^2)
 * @property {number} varDrift variance of `drift`
 * @property {number} minRtt lowest RTT among the window's samples (ms)
 * @property {number} excess weighted mean of (rtt - minRtt) / 2 over the fitted samples (ms)
 * @property {number} count samples fitted
 * @property {number} hardBound half the RTT of the best sample plus how far the line passes from it (ms)
 * @property {number} hardAt local ms of the best sample
 */

export class ClockOffset {
  /**
   * @param {object} [opts]
   * @param {number} [opts.maxSamples=400] samples kept at most (one ping a second plus bursts)
   * @param {number} [opts.maxAgeMs=300000] samples older than this (local ms) are dropped: with the
   *   drift fitted, old samples stay good, and a longer span pins the drift down
   * @param {number} [opts.best=64] at most this many lowest-RTT samples of the window are fitted
   * @param {number} [opts.minSamples=3] samples needed before `ready`
   * @param {number} [opts.weightFloorMs=5] c in the weights 1 / (rtt - minRtt + c)^2 (ms): the
   *   best sample's own unknown queueing, timer resolution
   * @param {number} [opts.driftPriorPpm=50] spread of the drift prior (ppm); a minute or two of samples
   *   outweighs it, so drifts of 100 ppm and more are still followed
   * @param {number} [opts.maxDriftPpm=1000] the fitted drift is clamped to this (ppm)
   * @param {number} [opts.sigmas=2.5] uncertainty() is this many standard errors
   * @param {number} [opts.floorMs=1] uncertainty() is at least this (ms)
   * @param {number} [opts.jumpToleranceMs=20] disagreement beyond the bounds that counts as a jump (ms)
   * @param {number} [opts.jumpConfirm=3] agreeing suspects that confirm a jump
   * @param {number} [opts.suspectMaxAgeMs=30000] suspects older than this are forgotten (ms)
   */
  constructor({
    maxSamples = 400,
    maxAgeMs = 300_000,
    best = 64,
    minSamples = 3,
    weightFloorMs = 5,
    driftPriorPpm = 50,
    maxDriftPpm = 1000,
    sigmas = 2.5,
    floorMs = 1,
    jumpToleranceMs = 20,
    jumpConfirm = 3,
    suspectMaxAgeMs = 30_000,
  } = {}) {
    Object.assign(this, {
      maxSamples, maxAgeMs, best, minSamples, weightFloorMs, driftPriorPpm, maxDriftPpm, sigmas, floorMs,
      jumpToleranceMs, jumpConfirm, suspectMaxAgeMs,
    });
    /** @type {Sample[]} in arrival order */
    this.samples = [];
    /** @type {Sample[]} samples that disagree with the fit, waiting for confirmation */
    this.suspects = [];
    /** @type {Fit | null} fit of the current samples */
    this.fit = null;
    /** @type {Fit | null} last fit, kept across `reset()` so playback can go on while re-measuring */
    this.lastFit = null;
    /** Drift prior (ms per ms): 0, or the last fitted drift once samples were reset. */
    this.driftPrior = 0;
    /** RTT (ms) of the most recent valid exchange, or null. */
    this.latestRtt = null;
    /** Local ms of the most recent valid exchange's midpoint, or null. */
    this.latestAt = null;
  }

  /**
   * Adds one exchange. Returns what happened: "ok", "jump" (the clock stepped:
   * the estimate restarted from the confirming samples, re-measure now),
   * "suspect" (held back pending confirmation) or "invalid" (negative RTT or
   * non-finite timestamps).
   * @param {number} t0 local ms at client send
   * @param {number} t1 server ms at server receive
   * @param {number} t2 server ms at server send
   * @param {number} t3 local ms at client receive
   * @returns {"ok" | "jump" | "suspect" | "invalid"}
   */
  addSample(t0, t1, t2, t3) {
    if (![t0, t1, t2, t3].every(Number.isFinite)) return "invalid";
    const rtt = (t3 - t0) - (t2 - t1);
    if (rtt < 0 || t2 < t1) return "invalid";
    /** @type {Sample} */
    const sample = { offset: ((t1 - t0) + (t2 - t3)) / 2, rtt, at: (t0 + t3) / 2, received: t3 };
    this.latestRtt = rtt;
    this.latestAt = sample.at;
    this.prune(t3);
    this.suspects = this.suspects.filter((s) => sample.at - s.at <= this.suspectMaxAgeMs);
    const fit = this.fit;
    if (fit !== null && this.samples.length >= this.minSamples && this.disagrees(sample, fit)) {
      if (this.suspects.length && !this.consistent(sample, this.suspects, fit)) this.suspects = [];
      this.suspects.push(sample);
      if (this.suspects.length < this.jumpConfirm) return "suspect";
      this.driftPrior = fit.drift;
      this.samples = this.suspects;
      this.suspects = [];
      this.refit();
      return "jump";
    }
    if (this.suspects.length && fit !== null && !this.consistent(sample, this.suspects, fit)) this.suspects = [];
    this.samples.push(sample);
    if (this.samples.length > this.maxSamples) this.samples.shift();
    this.refit();
    return "ok";
  }

  /** @private whether `sample` is further from the fit than the fit's and its own error allow */
  disagrees(sample, fit) {
    const minRtt = Math.min(fit.minRtt, sample.rtt);
    const own = (sample.rtt - minRtt) / 2;
    const fits = fit.excess + (fit.minRtt - minRtt) / 2 + 3 * Math.sqrt(this.variance(fit, sample.at));
    return Math.abs(sample.offset - this.predict(fit, sample.at)) > own + fits + this.jumpToleranceMs;
  }

  /** @private whether `sample` agrees with the most precise of `group` within both their bounds */
  consistent(sample, group, fit) {
    const ref = group.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    const minRtt = Math.min(fit.minRtt, sample.rtt, ref.rtt);
    const bound = (sample.rtt - minRtt) / 2 + (ref.rtt - minRtt) / 2 + this.jumpToleranceMs;
    return Math.abs(sample.offset - ref.offset - fit.drift * (sample.at - ref.at)) <= bound;
  }

  /** @private drops samples older than maxAgeMs relative to local ms `now` */
  prune(now) {
    const kept = this.samples.filter((s) => now - s.received <= this.maxAgeMs && s.received <= now);
    if (kept.length !== this.samples.length) {
      this.samples = kept;
      this.refit();
    }
  }

  /** @private the `best` lowest-RTT samples (the newer of equal ones) */
  chosen() {
    return [...this.samples].sort((a, b) => a.rtt - b.rtt || b.at - a.at).slice(0, this.best);
  }

  /** @private recomputes `fit` from the samples (weighted ridge line, see the module comment) */
  refit() {
    const chosen = this.chosen();
    if (!chosen.length) {
      this.fit = null;
      return;
    }
    const minRtt = chosen[0].rtt;
    const ref = chosen[0].offset; // offsets relative to it: exact when they are all equal
    const w = chosen.map((s) => 1 / (s.rtt - minRtt + this.weightFloorMs) ** 2);
    const W = w.reduce((a, b) => a + b, 0);
    const tMean = chosen.reduce((sum, s, i) => sum + w[i] * s.at, 0) / W;
    const dt = chosen.map((s) => s.at - tMean);
    const y = chosen.map((s) => s.offset - ref);
    const yMean = y.reduce((sum, v, i) => sum + w[i] * v, 0) / W;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < chosen.length; i++) {
      sxx += w[i] * dt[i] * dt[i];
      sxy += w[i] * dt[i] * (y[i] - yMean);
    }
    const n = chosen.length;
    const priorVar = (this.driftPriorPpm * 1e-6) ** 2;
    const maxDrift = this.maxDriftPpm * 1e-6;
    // The scale s2 of the weights (variance of sample i = s2 / w[i]), at least what a
    // (floorMs / 2) error on the best sample would give, so that a few lucky samples do
    // not make the line look exact.
    const s2Floor = (this.floorMs / 2) ** 2 / this.weightFloorMs ** 2;
    const residualScale = (drift, dof) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += w[i] * (y[i] - yMean - drift * dt[i]) ** 2;
      return Math.max(s2Floor, sum / Math.max(1, dof));
    };
    let drift = this.driftPrior;
    let s2 = residualScale(drift, n - 1);
    for (let pass = 0; pass < 2 && n >= 2; pass++) {
      const lambda = s2 / priorVar;
      drift = sxx + lambda > 0 ? (sxy + lambda * this.driftPrior) / (sxx + lambda) : this.driftPrior;
      drift = Math.max(-maxDrift, Math.min(maxDrift, drift));
      s2 = residualScale(drift, n - 2 + (sxx > 0 ? 0 : 1));
    }
    const excess = chosen.reduce((sum, s, i) => sum + w[i] * (s.rtt - minRtt), 0) / W / 2;
    this.fit = {
      tMean,
      offset: ref + yMean,
      drift,
      varMean: s2 / W,
      varDrift: 1 / (sxx / s2 + 1 / priorVar),
      minRtt: Math.min(...this.samples.map((s) => s.rtt)),
      excess,
      count: n,
      hardBound: minRtt / 2 + Math.abs(yMean + drift * (chosen[0].at - tMean) - y[0]),
      hardAt: chosen[0].at,
    };
    this.lastFit = this.fit;
  }

  /** @private offset (ms) the fit gives at local ms `t` */
  predict(fit, t) {
    return fit.offset + fit.drift * (t - fit.tMean);
  }

  /** @private variance (ms^2) of the fitted offset at local ms `t` */
  variance(fit, t) {
    return fit.varMean + fit.varDrift * (t - fit.tMean) ** 2;
  }

  /**
   * How far off the estimate can be (ms) at local ms `localNow` (default: the
   * latest exchange): `sigmas` standard errors of the fit, at least floorMs, at
   * most the hard bound (the true offset is within half the best sample's RTT of
   * that sample, whatever the path: that, plus how far the line passes from the
   * sample, plus the drift's uncertainty since it). With
   * fewer than minSamples samples, the hard bound. 0 with no samples at all.
   * It does not include the bias of an asymmetric path (see the module comment).
   * @param {number} [localNow]
   */
  uncertainty(localNow) {
    const fit = this.fit;
    if (fit === null) return 0;
    const t = localNow ?? this.latestAt ?? fit.tMean;
    const hard = fit.hardBound + Math.sqrt(fit.varDrift) * Math.abs(t - fit.hardAt);
    if (fit.count < this.minSamples) return hard;
    const statistical = Math.max(this.floorMs, this.sigmas * Math.sqrt(this.variance(fit, t)));
    return Math.min(hard, statistical);
  }

  /** Lowest RTT (ms) among the kept samples, or 0 when there are none. */
  bestRtt() {
    return this.samples.length ? Math.min(...this.samples.map((s) => s.rtt)) : 0;
  }

  /** Most recent exchange's RTT (ms), or null. */
  lastRtt() {
    return this.latestRtt;
  }

  /** Fitted drift of the server clock against the local one (ppm, positive = server runs faster), or null. */
  get driftPpm() {
    const fit = this.fit ?? this.lastFit;
    return fit === null ? null : fit.drift * 1e6;
  }

  /**
   * Server clock minus local clock (ms) at the latest exchange; the last good
   * value while re-measuring; null before any sample. See offsetAt() for another time.
   */
  get offset() {
    const fit = this.fit ?? this.lastFit;
    return fit === null ? null : this.offsetAt(this.latestAt ?? fit.tMean);
  }

  /**
   * Server clock minus local clock (ms) at local ms `localNow`, drift included; null before any sample.
   * @param {number} localNow
   */
  offsetAt(localNow) {
    const fit = this.fit ?? this.lastFit;
    if (fit === null) return null;
    return fit.drift === 0 ? fit.offset : this.predict(fit, localNow);
  }

  /** True once enough fresh samples back the estimate. */
  get ready() {
    return this.samples.length >= this.minSamples;
  }

  /**
   * Estimated server time (ms since the Unix epoch) at local time `localNow` (ms), or null.
   * @param {number} localNow
   */
  serverNow(localNow) {
    const offset = this.offsetAt(localNow);
    return offset === null ? null : localNow + offset;
  }

  /**
   * Forgets the samples (reconnect, page made visible again); the last fit (offset and
   * drift) carries on until new samples arrive, and its drift is the new samples' prior.
   */
  reset() {
    if (this.fit !== null) this.driftPrior = this.fit.drift;
    this.samples = [];
    this.suspects = [];
    this.fit = null;
  }
}
