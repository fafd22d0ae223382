/** Test doubles: fake timers with a manual clock, and a fake WebSocket. */

export class FakeTimers {
  constructor() {
    this.now = 0;
    this.queue = [];
    this.seq = 0;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.queue.push({ id, at: this.now + Math.max(0, ms), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.queue = this.queue.filter((t) => t.id !== id);
    };
  }
  /** Runs every timer due within the next `ms` milliseconds, in order. */
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.queue[0];
      if (!next || next.at > end) break;
      this.queue.shift();
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }
}

/** Records every socket created; tests open, feed and close them by hand. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
    }
    send(text) {
      if (this.closed) throw new Error("send on a closed socket");
      this.sent.push(JSON.parse(text));
    }
    close() {
      if (this.closed) return;
      this.closed = true;
      this.onclose?.({});
    }
    // test side
    open() { this.onopen?.({}); }
    receive(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
    drop() { this.closed = true; this.onclose?.({}); }
    ofType(type) { return this.sent.filter((m) => m.type === type); }
  }
  return { FakeWebSocket, sockets };
}
