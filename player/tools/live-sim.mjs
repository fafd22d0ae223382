// Plays a simulated live stream into several listener pages and measures how
// closely they follow the server clock. The fake server (Playwright routes)
// publishes 2.048 s fMP4 AAC segments on the epoch grid (tfdt = PDT, as the
// real server does) in a plain live playlist, runs a clock 5 s ahead of the
// local one, and answers /ws pings. Needs ffmpeg for the audio.
//
// With outage=S the server "restarts" S seconds in: sockets close, connections
// are refused for OUTAGE_MS; the pages must come back in sync without a tap.
//
//   node player/tools/live-sim.mjs [pages=3] [seconds=45] [outage=S]
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";

const PAGES = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 45);
const OUTAGE_AT_S = process.argv[4] === undefined ? null : Number(process.argv[4]);
const OUTAGE_MS = 6000;
let down = false;
const sockets = new Set();
const BASE = "http://bardcast.test";
const SERVER_AHEAD_MS = 5000;
const DELAY_MS = 4500; // plain live HLS (no parts) needs a few seconds
const SEGMENT_MS = 2048;
const SAMPLES_PER_SEGMENT = 98_304; // 2.048 s at 48 kHz
const root = new URL("..", import.meta.url).pathname;
const serverNow = () => Date.now() + SERVER_AHEAD_MS;

// 8.192 s of sine as fragmented MP4: ftyp+moov, then four moof+mdat fragments of 96 AAC frames.
const dir = mkdtempSync(join(tmpdir(), "bardcast-sim-"));
execFileSync("ffmpeg", ["-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=8.192", "-ac", "2",
  "-c:a", "aac", "-b:a", "128k", "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "2048000", join(dir, "a.mp4")]);
const file = readFileSync(join(dir, "a.mp4"));
const top = boxes(file, 0, file.length);
const init = Buffer.concat(top.filter((b) => b.type === "ftyp" || b.type === "moov").map((b) => file.subarray(b.start, b.end)));
const fragments = [];
for (let i = 0; i < top.length; i++) {
  if (top[i].type === "moof" && top[i + 1]?.type === "mdat") fragments.push(file.subarray(top[i].start, top[i + 1].end));
}
fragments.splice(4);

function boxes(buf, start, end) {
  const out = [];
  for (let i = start; i < end;) {
    const size = buf.readUInt32BE(i);
    out.push({ type: buf.toString("latin1", i + 4, i + 8), start: i, end: i + size });
    i += size;
  }
  return out;
}

/** Fragment for media sequence number `msn`, its tfdt set to msn x 2.048 s (media time = wall time). */
function segment(msn) {
  const seg = Buffer.from(fragments[msn % fragments.length]);
  const moof = boxes(seg, 0, seg.length)[0];
  for (const traf of boxes(seg, moof.start + 8, moof.end).filter((b) => b.type === "traf")) {
    for (const b of boxes(seg, traf.start + 8, traf.end)) {
      if (b.type === "tfdt") seg.writeBigUInt64BE(BigInt(msn) * BigInt(SAMPLES_PER_SEGMENT), b.start + 12);
    }
  }
  return seg;
}

function playlist() {
  const last = Math.floor(serverNow() / SEGMENT_MS) - 1; // newest complete segment
  const first = last - 5;
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2", `#EXT-X-MEDIA-SEQUENCE:${first}`, '#EXT-X-MAP:URI="init.mp4"'];
  for (let n = first; n <= last; n++) {
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(n * SEGMENT_MS).toISOString()}`, "#EXTINF:2.048,", `seg-${n}.m4s`);
  }
  return lines.join("\n") + "\n";
}

const state = {
  nowPlaying: { trackId: 1, title: "Sine 440", artist: "ffmpeg", album: "", duration: 3600, position: 0, hasCover: false },
  paused: false, stopped: false, queue: [], queueIndex: 0, repeat: "off", shuffle: false, volume: 1,
  playbackDelayMs: DELAY_MS, effectiveAt: new Date(serverNow()).toISOString(), error: null,
};

async function route(r) {
  const path = new URL(r.request().url()).pathname;
  if (down && path.startsWith("/hls/")) return r.abort("connectionrefused");
  if (path === "/hls/live.m3u8") return r.fulfill({ contentType: "application/vnd.apple.mpegurl", headers: { "cache-control": "no-cache" }, body: playlist() });
  if (path === "/hls/init.mp4") return r.fulfill({ contentType: "video/mp4", body: init });
  const seg = path.match(/^\/hls\/seg-(\d+)\.m4s$/);
  if (seg) return r.fulfill({ contentType: "video/iso.segment", body: segment(Number(seg[1])) });
  const file = path === "/" ? "/index.html" : path;
  try {
    const body = await readFile(join(root, file));
    return r.fulfill({ contentType: { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css" }[extname(file)] ?? "text/plain", body });
  } catch {
    return r.fulfill({ status: 404, body: "" });
  }
}

function socket(ws) {
  if (down) {
    ws.close();
    return;
  }
  sockets.add(ws);
  ws.onClose(() => sockets.delete(ws));
  ws.onMessage((text) => {
    const msg = JSON.parse(text);
    if (msg.type === "hello") {
      ws.send(JSON.stringify({ type: "welcome", protocol: 1, clientId: "c", serverTime: serverNow() }));
      ws.send(JSON.stringify({ type: "state", state }));
    } else if (msg.type === "ping") {
      const t = serverNow();
      ws.send(JSON.stringify({ type: "pong", id: msg.id, clientSent: msg.clientSent, serverReceived: t, serverSent: t }));
    }
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
const pages = [];
for (let i = 0; i < PAGES; i++) {
  const context = await browser.newContext();
  await context.route(`${BASE}/**`, route);
  await context.routeWebSocket("ws://bardcast.test/ws", socket);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`page ${i} error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && !/Failed to load resource/.test(m.text()) && console.log(`page ${i} console: ${m.text()}`));
  await page.goto(`${BASE}/`);
  await page.getByTestId("join-button").click();
  await page.evaluate(() => {
    window.rateChanges = 0;
    document.querySelector("audio").addEventListener("ratechange", () => { window.rateChanges += 1; });
  });
  pages.push(page);
}

const samples = pages.map(() => []);
const end = Date.now() + SECONDS * 1000;
if (OUTAGE_AT_S !== null) {
  setTimeout(() => {
    console.log("server down");
    down = true;
    for (const ws of sockets) ws.close();
    setTimeout(() => { down = false; console.log("server up"); }, OUTAGE_MS);
  }, OUTAGE_AT_S * 1000);
}
while (Date.now() < end) {
  await Promise.all(pages.map(async (page, i) => {
    const s = await page.evaluate(([ahead, delay]) => {
      const pdt = window.hls?.playingDate?.getTime();
      return { t: Date.now(), error: Number.isFinite(pdt) ? pdt - (Date.now() + ahead - delay) : null, shown: window.bardcast.syncError, rate: document.querySelector("audio").playbackRate, state: window.bardcast.state };
    }, [SERVER_AHEAD_MS, DELAY_MS]);
    samples[i].push(s);
    if (process.env.VERBOSE && i === 0 && samples[i].length % 8 === 0) console.log(`t+${((s.t - end) / 1000 + SECONDS).toFixed(0)}s page 0: ${s.state} error ${s.error} shown ${s.shown?.toFixed(1)} rate ${s.rate}`);
  }));
  await new Promise((r) => setTimeout(r, 250));
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };
const settledFrom = Date.now() - (SECONDS * 1000) / 2;
for (let i = 0; i < pages.length; i++) {
  const late = samples[i].filter((s) => s.t >= settledFrom && s.error !== null);
  const abs = late.map((s) => Math.abs(s.error));
  const rateChanges = await pages[i].evaluate(() => window.rateChanges);
  console.log(`page ${i}: ${late.length} samples in the second half, |error| p50 ${pct(abs, 50)?.toFixed(1)} ms, p95 ${pct(abs, 95)?.toFixed(1)} ms, max ${Math.max(...abs).toFixed(1)} ms; ` +
    `rate changes ${rateChanges}; last state ${samples[i].at(-1).state}, shown ${samples[i].at(-1).shown?.toFixed(1)} ms`);
}
await browser.close();
