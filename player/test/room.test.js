import test from "node:test";
import assert from "node:assert/strict";
import { pageName, roomSlug, roomUrls } from "../js/room.js";

test("a page finds its room in its address; the one-room addresses are main's", () => {
  assert.equal(roomSlug("/r/crypt-of-the-lich/"), "crypt-of-the-lich");
  assert.equal(roomSlug("/r/crypt/gm"), "crypt");
  assert.equal(roomSlug("/r/crypt"), "crypt");
  assert.equal(roomSlug("/"), null);
  assert.equal(roomSlug("/gm"), null);
  assert.equal(roomSlug("/r/Crypt/"), null, "not a slug");
  assert.equal(roomSlug("/rx/crypt/"), null);
  assert.equal(pageName("/r/crypt/"), "");
  assert.equal(pageName("/r/crypt/check"), "check");
  assert.equal(pageName("/r/crypt/gm"), "gm");
  assert.equal(pageName("/check"), "check");
  assert.equal(pageName("/"), "");
});

test("a room's stream, session and socket are its own; main keeps the one-room URLs", () => {
  assert.deepEqual(roomUrls("crypt"), {
    slug: "crypt",
    stream: "/hls/crypt/live.m3u8",
    session: "/api/rooms/crypt/session",
    socket: "/ws?room=crypt",
    query: "?room=crypt",
    listen: "/r/crypt/",
  });
  assert.equal(roomUrls(null).stream, "/hls/live.m3u8");
  assert.equal(roomUrls(null).session, "/api/session");
  assert.equal(roomUrls(null).socket, "/ws");
});
