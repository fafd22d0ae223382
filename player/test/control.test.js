import test from "node:test";
import assert from "node:assert/strict";
import { ControlClient, wsUrl } from "../js/control.js";
import { ClockOffset } from "../js/clock.js";
import { FakeTimers, fakeWebSocketClass } from "./support/fakes.js";

const SERVER_AHEAD = 1_764_000_000_000;

function setup(extra = {}) {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const clock = new ClockOffset();
  const seen = { states: [], messages: [], statuses: [] };
  const client = new ControlClient({
    url: "ws://host/ws",
    WebSocket: FakeWebSocket,
    hello: () => ({ role: "listener", device: "Test" }),
    clock,
    now: () => timers.now,
    timers,
    random: () => 0.5,
    onState: (s) => seen.states.push(s),
    onMessage: (m) => seen.messages.push(m),
    onStatus: (s) => seen.statuses.push(s),
    ...extra,
  });
  return { timers, sockets, clock, client, seen };
}

/**
 * Makes `socket` answer each ping like a server SERVER_AHEAD ms ahead of the
 * client, 2 ms away each way: offset SERVER_AHEAD, rtt 4 ms.
 */
function autoPong(socket, timers) {
  const send = socket.send.bind(socket);
  socket.send = (text) => {
    send(text);
    const p = JSON.parse(text);
    if (p.type !== "ping") return;
    const t1 = p.clientSent + 2 + SERVER_AHEAD;
    timers.setTimeout(() => socket.receive({ type: "pong", id: p.id, clientSent: p.clientSent, serverReceived: t1, serverSent: t1 }), 4);
  };
  return socket;
}

test("wsUrl follows the page's scheme", () => {
  assert.equal(wsUrl({ protocol: "http:", host: "a:8080" }), "ws://a:8080/ws");
  assert.equal(wsUrl({ protocol: "https:", host: "b.example" }), "wss://b.example/ws");
  assert.equal(wsUrl({ protocol: "http:", host: "a:8080" }, "/ws?room=crypt"), "ws://a:8080/ws?room=crypt");
});

test("connects, says hello, bursts pings, then pings every second", () => {
  const { timers, sockets, client, seen } = setup();
  client.start();
  assert.equal(client.status, "connecting");
  const ws = sockets[0];
  assert.equal(ws.url, "ws://host/ws");
  ws.open();
  assert.equal(client.status, "open");
  assert.deepEqual(ws.sent[0], { type: "hello", role: "listener", device: "Test" });
  timers.advance(1000);
  assert.equal(ws.ofType("ping").length, 8, "a burst of 8 within the first second");
  timers.advance(4000);
  assert.equal(ws.ofType("ping").length, 12, "then one every second");
  assert.deepEqual(seen.statuses, ["connecting", "open"]);
});

test("pongs feed the clock estimator", () => {
  const { timers, sockets, client, clock } = setup();
  client.start();
  const ws = autoPong(sockets[0], timers);
  ws.open();
  timers.advance(1000);
  assert.ok(clock.ready);
  assert.equal(clock.offset, SERVER_AHEAD);
  assert.equal(clock.lastRtt(), 4);
  // unknown ids (a stale pong) are ignored
  ws.receive({ type: "pong", id: 999, clientSent: 0, serverReceived: 5, serverSent: 5 });
  assert.ok(Math.abs(clock.offset - SERVER_AHEAD) < 1e-6);
});

test("delivers state and other messages to the callbacks", () => {
  const { sockets, client, seen } = setup();
  client.start();
  sockets[0].open();
  sockets[0].receive({ type: "welcome", protocol: 1, clientId: "c7", serverTime: 1 });
  sockets[0].receive({ type: "state", state: { paused: true } });
  sockets[0].receive({ type: "listeners", listeners: [] });
  sockets[0].onmessage({ data: "not json" });
  assert.equal(client.clientId, "c7");
  assert.deepEqual(seen.states, [{ paused: true }]);
  assert.deepEqual(seen.messages.map((m) => m.type), ["welcome", "listeners"]);
});

test("sends a report every second with the latest rtt", () => {
  let calls = 0;
  const { timers, sockets, client } = setup({
    report: () => (++calls === 2 ? null : { syncError: 1.5, buffer: 0.8, state: "playing", device: "Test" }),
  });
  client.start();
  const ws = autoPong(sockets[0], timers);
  ws.open();
  timers.advance(3500);
  const reports = ws.ofType("report");
  assert.equal(reports.length, 2, "the null report was skipped");
  assert.deepEqual(reports[0], { type: "report", syncError: 1.5, buffer: 0.8, state: "playing", device: "Test", rtt: 4 });
});

test("reconnects with capped exponential backoff and jitter, then re-measures", () => {
  const { timers, sockets, client, clock, seen } = setup({ random: () => 1 });
  client.start();
  autoPong(sockets[0], timers).open();
  timers.advance(1000);
  assert.ok(clock.ready);
  sockets[0].drop();
  assert.equal(client.status, "reconnecting");
  // attempts fail immediately: delays 500, 1000, 2000, 4000, 8000, 15000 (cap), 15000
  for (const delay of [500, 1000, 2000, 4000, 8000, 15_000, 15_000]) {
    const before = sockets.length;
    timers.advance(delay - 1);
    assert.equal(sockets.length, before, `not before ${delay} ms`);
    timers.advance(1);
    assert.equal(sockets.length, before + 1, `after ${delay} ms`);
    sockets.at(-1).drop();
  }
  timers.advance(15_000);
  const ws = autoPong(sockets.at(-1), timers);
  ws.open();
  assert.equal(client.status, "open");
  assert.equal(clock.ready, false, "samples from before the loss are dropped");
  assert.equal(ws.ofType("hello").length, 1);
  ws.receive({ type: "welcome", protocol: 1, clientId: "c9", serverTime: 0 });
  assert.equal(client.attempt, 0, "backoff resets once welcomed");
  timers.advance(500);
  assert.ok(clock.ready);
  assert.deepEqual(seen.statuses, ["connecting", "open", "reconnecting", "open"]);
});

test("retryNow skips the backoff wait when the network is back, and does nothing otherwise", () => {
  const { timers, sockets, client } = setup({ random: () => 1 });
  client.start();
  client.retryNow();
  assert.equal(sockets.length, 1, "connecting: no second socket");
  sockets[0].open();
  client.retryNow();
  assert.equal(sockets.length, 1, "open: nothing to retry");
  sockets[0].drop();
  timers.advance(100);
  assert.equal(sockets.length, 1, "waiting out the 500 ms backoff");
  client.retryNow();
  assert.equal(sockets.length, 2, "retried at once");
  timers.advance(60_000);
  assert.equal(sockets.length, 2, "the skipped timer does not fire as well");
});

test("jitter spreads reconnects between half and the full delay", () => {
  const { timers, sockets, client } = setup({ random: () => 0 });
  client.start();
  sockets[0].open();
  sockets[0].drop();
  timers.advance(249);
  assert.equal(sockets.length, 1);
  timers.advance(1);
  assert.equal(sockets.length, 2);
});

test("a silent connection is declared dead and replaced", () => {
  const { timers, sockets, client } = setup();
  client.start();
  sockets[0].open();
  timers.advance(9000); // no pongs, no messages at all; pings go out at ~0.4, 2.4, ... 8.4 s
  assert.equal(client.status, "reconnecting");
  assert.equal(sockets[0].closed, true);
  timers.advance(1000);
  assert.equal(sockets.length, 2);
});

test("a clock jump or resync() starts a new burst", () => {
  const { timers, sockets, client, clock } = setup();
  client.start();
  const ws = autoPong(sockets[0], timers);
  ws.open();
  timers.advance(3500);
  assert.ok(clock.ready);
  const before = ws.ofType("ping").length;
  client.resync();
  assert.equal(clock.ready, false);
  timers.advance(1000);
  assert.equal(ws.ofType("ping").length, before + 8);
});

test("stop closes the socket and never reconnects", () => {
  const { timers, sockets, client } = setup();
  client.start();
  sockets[0].open();
  client.stop();
  assert.equal(client.status, "stopped");
  assert.equal(sockets[0].closed, true);
  timers.advance(60_000);
  assert.equal(sockets.length, 1);
  assert.equal(client.send({ type: "x" }), false);
});

test("a failed first attempt reports reconnecting", () => {
  const { sockets, client, seen } = setup();
  client.start();
  sockets[0].drop();
  assert.deepEqual(seen.statuses, ["connecting", "reconnecting"]);
});
