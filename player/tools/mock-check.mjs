// Drives both pages against an in-browser fake of the server contract (REST via
// page.route, /ws via page.routeWebSocket, static files from player/), clicks
// through the main flows and saves screenshots. No server and no network needed.
//
//   node player/tools/mock-check.mjs /tmp/shots
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";

const out = process.argv[2] ?? "/tmp/shots";
const root = new URL("..", import.meta.url).pathname;
const BASE = "http://bardcast.test";
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css" };

const tracks = Array.from({ length: 250 }, (_, i) => ({
  id: i + 1, filepath: `/music/a/${i + 1}.flac`, filename: `${i + 1}.flac`, title: `Track ${String(i + 1).padStart(3, "0")}`,
  artist: ["Bardic Trio", "Dungeon Synth", "Lute Club"][i % 3], album: "Tavern Nights", trackNumber: i + 1, discNumber: 1,
  duration: 120 + i, format: "flac", bitrate: 900, sampleRate: 48000, channels: 2, fileSize: 1e7, missing: i % 17 === 5, hasCover: false,
}));
const folders = [
  { id: 1, name: "Ambience", parentId: null, sortOrder: 0, trackCount: 3, children: [{ id: 3, name: "Tavern", parentId: 1, sortOrder: 0, trackCount: 0, children: [] }] },
  { id: 2, name: "Combat", parentId: null, sortOrder: 1, trackCount: 0, children: [] },
];
const folderTracks = { 1: [4, 5, 6], 2: [], 3: [] };
const state = () => ({
  nowPlaying: { trackId: 7, title: "Track 007", artist: "Lute Club", album: "Tavern Nights", duration: 126, position: 30, hasCover: false },
  paused: false, stopped: false,
  queue: [8, 9, 10].map((id) => ({ trackId: id, title: `Track 00${id}`, artist: "Bardic Trio", duration: 125 })), queueIndex: 0,
  repeat: "all", shuffle: false, volume: 0.8, playbackDelayMs: 1000, effectiveAt: new Date(Date.now() + 600).toISOString(), error: null,
});
const calls = [];

function api(route) {
  const req = route.request();
  const url = new URL(req.url());
  const json = (body, status = 200) => route.fulfill({ status, contentType: "application/json", body: JSON.stringify(body) });
  calls.push(`${req.method()} ${url.pathname}${url.search}${req.postData() ? " " + req.postData() : ""}`);
  if (req.headers().authorization !== "Bearer test-key" && req.method() !== "GET") return json({ error: { code: "forbidden", message: "wrong key" } }, 403);
  const p = url.pathname;
  if (p === "/api/tracks") {
    const search = (url.searchParams.get("search") ?? "").toLowerCase();
    const page = Number(url.searchParams.get("page") ?? 1);
    const limit = Number(url.searchParams.get("limit") ?? 100);
    const hits = tracks.filter((t) => !search || t.title.toLowerCase().includes(search));
    return json({ items: hits.slice((page - 1) * limit, page * limit), total: hits.length, page, limit });
  }
  if (p === "/api/folders" && req.method() === "GET") return json({ items: folders });
  const ft = p.match(/^\/api\/folders\/(\d+)\/tracks$/);
  if (ft && req.method() === "GET") {
    const items = folderTracks[ft[1]].map((id) => tracks[id - 1]);
    return json({ items, total: items.length, page: 1, limit: 500 });
  }
  if (p === "/api/session" || p.startsWith("/api/session/")) return json(state());
  if (p === "/api/scan/status") return json({ state: "idle", lastFinishedAt: "2026-11-25T00:00:00Z", seen: 250, added: 250, updated: 0, missing: 14, errors: 0, elapsedMs: 5300 });
  if (p === "/api/cache/status") return json({ done: 40, pending: 0, failed: 1, bytesUsed: 3.2e9, maxBytes: 20e9 });
  return json({}, req.method() === "POST" ? 200 : 200);
}

async function serveStatic(route) {
  const url = new URL(route.request().url());
  const path = url.pathname === "/" ? "/index.html" : url.pathname;
  try {
    const body = await readFile(join(root, path));
    return route.fulfill({ status: 200, contentType: TYPES[extname(path)] ?? "application/octet-stream", body });
  } catch {
    return route.fulfill({ status: 404, body: "not found" });
  }
}

async function fakeSocket(ws) {
  ws.onMessage((text) => {
    const msg = JSON.parse(text);
    if (msg.type === "hello") {
      ws.send(JSON.stringify({ type: "welcome", protocol: 1, clientId: "c1", serverTime: Date.now() }));
      ws.send(JSON.stringify({ type: "state", state: state() }));
      if (msg.role === "gm") {
        ws.send(JSON.stringify({ type: "listeners", listeners: [
          { clientId: "c2", role: "listener", device: "Safari on iPhone", connected: true, syncError: 3.2, buffer: 1.4, rtt: 18, state: "playing", lastReportAt: "" },
          { clientId: "c3", role: "listener", device: "Chrome on Android", connected: true, syncError: -61, buffer: 0.2, rtt: 95, state: "stalled", lastReportAt: "" },
          { clientId: "c4", role: "listener", device: "Firefox on Windows", connected: false, syncError: null, buffer: null, rtt: null, state: "idle", lastReportAt: "" },
        ] }));
        ws.send(JSON.stringify({ type: "scan", status: { state: "scanning", seen: 120, added: 3, updated: 1, missing: 0, errors: 0, elapsedMs: 800 } }));
      }
    }
    if (msg.type === "ping") {
      const t = Date.now() + 5000; // server clock 5 s ahead
      ws.send(JSON.stringify({ type: "pong", id: msg.id, clientSent: msg.clientSent, serverReceived: t, serverSent: t }));
    }
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
const problems = [];
async function open(path, viewport) {
  const context = await browser.newContext({ viewport });
  await context.route(`${BASE}/api/**`, api);
  await context.route(`${BASE}/hls/**`, (r) => r.fulfill({ status: 404, body: "" }));
  await context.route(`${BASE}/**`, (r) => (new URL(r.request().url()).pathname.startsWith("/api/") ? r.fallback() : serveStatic(r)));
  await context.routeWebSocket(`${BASE.replace("http", "ws")}/ws`, fakeSocket);
  const page = await context.newPage();
  page.on("pageerror", (err) => problems.push(`${path}: pageerror ${err.message}`));
  page.on("console", (m) => m.type() === "error" && !/Failed to load resource/.test(m.text()) && problems.push(`${path}: console ${m.text()}`));
  await page.goto(BASE + path);
  return page;
}

// Dashboard
const gm = await open("/gm.html?key=test-key", { width: 1280, height: 900 });
await gm.getByTestId("track-row").first().waitFor();
console.log("url after key strip:", gm.url());
const rows = gm.getByTestId("track-row");
await rows.nth(0).click();
await rows.nth(3).click({ modifiers: ["Shift"] });
await rows.nth(6).click({ modifiers: ["Control"] });
console.log("selected:", await gm.getByTestId("selection-count").textContent());
await rows.nth(0).dragTo(gm.locator('[data-testid="folder"][data-folder-id="2"]'));
await gm.waitForTimeout(200);
await gm.getByTestId("page-next").click();
await gm.waitForTimeout(200);
console.log("page:", await gm.getByTestId("page-info").textContent());
await gm.getByTestId("search").fill("track 01");
await gm.waitForTimeout(500);
console.log("search page:", await gm.getByTestId("page-info").textContent(), "| title:", await gm.getByTestId("tracks-title").textContent());
await gm.keyboard.press("Escape");
await gm.locator("body").click({ position: { x: 5, y: 300 } });
await gm.keyboard.press(" ");
await gm.keyboard.press("n");
await gm.keyboard.press("ArrowRight");
await gm.waitForTimeout(300);
console.log("effective:", await gm.getByTestId("effective").textContent());
console.log("elapsed:", await gm.getByTestId("np-elapsed").textContent(), "listeners:", await gm.getByTestId("listener-row").count());
await gm.screenshot({ path: `${out}/mock-gm-desktop.png` });
await gm.locator('[data-testid="folder"][data-folder-id="1"]').click();
await gm.waitForTimeout(300);
await gm.getByTestId("track-row").nth(2).dragTo(gm.getByTestId("track-row").nth(0), { targetPosition: { x: 20, y: 5 } });
await gm.getByTestId("track-row").nth(0).click();
await gm.getByTestId("selection-down").click();
await gm.waitForTimeout(200);
await gm.locator('[data-testid="folder"][data-folder-id="1"] [data-testid="folder-menu"]').click();
await gm.screenshot({ path: `${out}/mock-gm-menu.png` });
await gm.getByTestId("folder-move").click();
await gm.getByTestId("dialog-choice").nth(1).click();
await gm.waitForTimeout(200);
await gm.getByTestId("queue-down").first().click();
await gm.waitForTimeout(200);
await gm.setViewportSize({ width: 390, height: 844 });
await gm.evaluate(() => window.scrollTo(0, 0));
await gm.screenshot({ path: `${out}/mock-gm-phone.png` });
await gm.getByTestId("listener-row").first().scrollIntoViewIfNeeded();
await gm.screenshot({ path: `${out}/mock-gm-phone-listeners.png` });
console.log(calls.filter((c) => !c.startsWith("GET")).join("\n"));
await gm.evaluate(() => localStorage.setItem("bardcast.gmKey", "wrong"));
await gm.getByTestId("next").click();
await gm.getByTestId("key-gate").waitFor();
console.log("wrong key ->", await gm.getByTestId("key-message").textContent());
await gm.getByTestId("key-input").fill("test-key");
await gm.getByTestId("key-submit").click();
await gm.getByTestId("track-row").first().waitFor();
console.log("key accepted again; connection:", await gm.getByTestId("connection").textContent());

// Listener
const listener = await open("/", { width: 390, height: 844 });
await listener.getByTestId("join-button").click();
await listener.waitForTimeout(2500);
console.log("listener:", await listener.evaluate(() => JSON.stringify({ ...window.bardcast, offset: window.bardcast.offset, state: window.bardcast.state, hls: Boolean(window.hls) })));
await listener.screenshot({ path: `${out}/mock-listener.png`, fullPage: true });

await browser.close();
for (const p of problems) console.log("PROBLEM", p);
process.exit(problems.length ? 1 : 0);
