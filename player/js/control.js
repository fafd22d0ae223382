/**
 * Control-socket client (/ws), with the WebSocket constructor, the clock and
 * the timers injected so tests drive it without a network.
 *
 * It says hello, keeps the server clock estimate fresh with pings (a burst at
 * connect, reconnect, visibility change, clock jumps and samples that look like
 * one, then one every pingEveryMs), hands `state` and other messages to callbacks, sends a
 * position report every reportEveryMs, and reconnects with capped exponential
 * backoff plus jitter after the connection is lost, including a connection
 * that went silent (a server restart behind a proxy may never send a close).
 */

/** Connection status: "connecting" (first attempt), "open", "reconnecting" (an attempt failed or the connection was lost; retrying), "stopped". */

/**
 * The socket URL for the page's location: ws:// for http, wss:// for https.
 * @param {{protocol: string, host: string}} location
 * @param {string} [path="/ws"] the room's socket path and query (see room.js)
 */
export function wsUrl(location, path = "/ws") {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}

export class ControlClient {
  /**
   * @param {object} o
   * @param {string} o.url socket URL (see wsUrl)
   * @param {typeof WebSocket} o.WebSocket constructor
   * @param {() => object} o.hello fields of the hello message: {role, key?, device}
   * @param {import("./clock.js").ClockOffset} o.clock offset estimator fed by pongs
   * @param {() => number} o.now local monotonic clock (ms), the one the clock estimator uses
   * @param {(state: object) => void} [o.onState] each `state` payload
   * @param {(msg: object) => void} [o.onMessage] every other message but pong
   * @param {(status: string) => void} [o.onStatus] connection status changes
   * @param {() => object | null} [o.report] report fields {syncError, buffer, state, device}, or null to skip
   * @param {{setTimeout: Function, clearTimeout: Function}} [o.timers]
   * @param {() => number} [o.random] uniform [0, 1), for backoff jitter
   * @param {number} [o.pingEveryMs=1000] steady ping period (ms)
   * @param {number} [o.burstCount=8] pings in a burst
   * @param {number} [o.burstGapMs=60] gap between burst pings (ms)
   * @param {number} [o.reportEveryMs=1000] report period (ms)
   * @param {number} [o.backoffBaseMs=500] first reconnect delay before jitter (ms)
   * @param {number} [o.backoffMaxMs=15000] reconnect delay cap (ms)
   * @param {number} [o.silenceMs=7000] no message for this long means the connection is dead (ms)
   */
  constructor(o) {
    this.o = {
      onState: () => {}, onMessage: () => {}, onStatus: () => {}, report: () => null,
      timers: globalThis, random: Math.random,
      pingEveryMs: 1000, burstCount: 8, burstGapMs: 60, reportEveryMs: 1000,
      backoffBaseMs: 500, backoffMaxMs: 15_000, silenceMs: 7000,
      ...o,
    };
    this.status = "stopped";
    this.socket = null;
    /** Server-assigned id from `welcome`, or null. */
    this.clientId = null;
    this.attempt = 0;
    this.nextId = 1;
    /** @type {Set<number>} ids of pings sent on the current socket */
    this.outstanding = new Set();
    this.burstLeft = 0;
    this.lastHeard = 0;
    this.timers = { ping: null, report: null, retry: null };
  }

  /** Opens the connection (no-op unless stopped). */
  start() {
    if (this.status !== "stopped") return;
    this.setStatus("connecting");
    this.connect();
  }

  /** Closes the connection for good. */
  stop() {
    this.setStatus("stopped");
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
  }

  /**
   * Tries again at once if the connection is lost and waiting out its backoff (the
   * browser says the network is back): the backoff spares a server that is down, not a
   * network that was.
   */
  retryNow() {
    if (this.status !== "reconnecting" || this.timers.retry === null) return;
    this.o.timers.clearTimeout(this.timers.retry);
    this.timers.retry = null;
    this.connect();
  }

  /** Forgets the clock samples and re-measures with a burst (page visible again). */
  resync() {
    this.o.clock.reset();
    this.measure();
  }

  /** Sends a burst of pings now, keeping the samples (the sync controller asked for a clock check). */
  measure() {
    this.burstLeft = this.o.burstCount;
    if (this.timers.ping !== null) this.o.timers.clearTimeout(this.timers.ping);
    this.timers.ping = null;
    this.ping();
  }

  /**
   * Sends a message if the socket is open; returns whether it was sent.
   * @param {object} msg
   */
  send(msg) {
    if (this.status !== "open" || !this.socket) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** @private */
  connect() {
    let socket;
    try {
      socket = new this.o.WebSocket(this.o.url);
    } catch {
      this.lost(null);
      return;
    }
    this.socket = socket;
    socket.onopen = () => this.opened(socket);
    socket.onmessage = (event) => this.received(socket, event.data);
    socket.onclose = () => this.lost(socket);
    socket.onerror = () => {}; // a close event always follows
  }

  /** @private */
  opened(socket) {
    if (socket !== this.socket) return;
    this.setStatus("open");
    this.lastHeard = this.o.now();
    this.outstanding.clear();
    this.send({ type: "hello", ...this.o.hello() });
    this.o.clock.reset();
    this.measure();
    this.scheduleReport();
  }

  /** @private */
  received(socket, data) {
    if (socket !== this.socket) return;
    this.lastHeard = this.o.now();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    switch (msg.type) {
      case "pong":
        this.pong(msg);
        return;
      case "welcome":
        this.clientId = msg.clientId ?? null;
        this.attempt = 0;
        break;
      case "state":
        if (msg.state) this.o.onState(msg.state);
        return;
    }
    this.o.onMessage(msg);
  }

  /** @private */
  pong(msg) {
    if (!this.outstanding.delete(msg.id)) return; // not ours, or from an old socket
    const result = this.o.clock.addSample(msg.clientSent, msg.serverReceived, msg.serverSent, this.o.now());
    // A suspect (a sample far off the estimate) is confirmed or dismissed by the next few: get them now.
    if (result === "jump" || (result === "suspect" && this.burstLeft === 0)) this.measure();
  }

  /** @private */
  lost(socket) {
    if (socket !== this.socket || this.status === "stopped") return;
    this.socket = null;
    this.clearTimers();
    this.setStatus("reconnecting");
    const delay = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** this.attempt);
    this.attempt += 1;
    const jittered = delay * (0.5 + 0.5 * this.o.random());
    this.timers.retry = this.o.timers.setTimeout(() => {
      this.timers.retry = null;
      this.connect();
    }, jittered);
    if (socket) socket.close();
  }

  /** @private sends one ping and schedules the next; also the silence watchdog */
  ping() {
    if (this.status !== "open") return;
    const now = this.o.now();
    if (now - this.lastHeard > this.o.silenceMs) {
      this.lost(this.socket);
      return;
    }
    const id = this.nextId++;
    this.outstanding.add(id);
    if (this.outstanding.size > 64) this.outstanding.delete(this.outstanding.values().next().value);
    this.send({ type: "ping", id, clientSent: now });
    if (this.burstLeft > 0) this.burstLeft -= 1;
    const wait = this.burstLeft > 0 ? this.o.burstGapMs : this.o.pingEveryMs;
    this.timers.ping = this.o.timers.setTimeout(() => this.ping(), wait);
  }

  /** @private */
  scheduleReport() {
    this.timers.report = this.o.timers.setTimeout(() => {
      const fields = this.o.report();
      if (fields) this.send({ type: "report", ...fields, rtt: this.o.clock.lastRtt() });
      this.scheduleReport();
    }, this.o.reportEveryMs);
  }

  /** @private */
  clearTimers() {
    for (const key of Object.keys(this.timers)) {
      if (this.timers[key] !== null) this.o.timers.clearTimeout(this.timers[key]);
      this.timers[key] = null;
    }
  }

  /** @private */
  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.o.onStatus(status);
  }
}
