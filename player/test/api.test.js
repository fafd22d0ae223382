import test from "node:test";
import assert from "node:assert/strict";
import { createApi, ApiError, extractKey, query } from "../js/api.js";

function fakeFetch(respond) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, ...init });
    const { status = 200, body = "" } = respond(url, init);
    return { ok: status >= 200 && status < 300, status, statusText: "", text: async () => (typeof body === "string" ? body : JSON.stringify(body)) };
  };
  return { fetch, calls };
}

test("adds the bearer key and JSON body", async () => {
  const { fetch, calls } = fakeFetch(() => ({ body: { paused: true } }));
  const api = createApi({ fetch, key: () => "s3cret" });
  assert.deepEqual(await api.command("seek", { position: 12.5 }), { paused: true });
  assert.equal(calls[0].url, "/api/session/seek");
  assert.equal(calls[0].method, "POST");
  assert.equal(calls[0].headers.Authorization, "Bearer s3cret");
  assert.equal(calls[0].body, JSON.stringify({ position: 12.5 }));
});

test("no key, no Authorization header; GET has no body", async () => {
  const { fetch, calls } = fakeFetch(() => ({ body: { items: [], total: 0, page: 1, limit: 100 } }));
  await createApi({ fetch }).tracks({ page: 2, limit: 100, search: "", folder_id: undefined, sort: "title" });
  assert.equal(calls[0].url, "/api/tracks?page=2&limit=100&sort=title");
  assert.equal(calls[0].headers.Authorization, undefined);
  assert.equal(calls[0].body, undefined);
});

test("server errors become ApiError with code and message", async () => {
  const { fetch } = fakeFetch(() => ({ status: 409, body: { error: { code: "conflict", message: "cannot move a folder under itself" } } }));
  await assert.rejects(createApi({ fetch }).updateFolder(3, { parentId: 4 }), (e) => e instanceof ApiError && e.status === 409 && e.code === "conflict" && /under itself/.test(e.message));
});

test("non-JSON errors and empty bodies", async () => {
  const { fetch } = fakeFetch((url) => (url.includes("folders/1") ? { status: 204 } : { status: 502, body: "<html>bad gateway</html>" }));
  const api = createApi({ fetch });
  assert.equal(await api.deleteFolder(1), null);
  await assert.rejects(api.session(), (e) => e.status === 502 && e.code === "http_502");
});

test("network failure is 'unreachable'", async () => {
  const api = createApi({ fetch: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(api.folders(), (e) => e instanceof ApiError && e.status === 0 && e.code === "unreachable");
});

test("extractKey strips ?key= and keeps the rest", () => {
  assert.deepEqual(extractKey("http://h/gm.html?key=abc&x=1#top"), { key: "abc", cleanUrl: "/gm.html?x=1#top" });
  assert.deepEqual(extractKey("http://h/gm.html"), { key: null, cleanUrl: "/gm.html" });
});

test("query skips empty values", () => {
  assert.equal(query({ a: 1, b: "", c: null, d: "x y" }), "?a=1&d=x+y");
  assert.equal(query({}), "");
});
