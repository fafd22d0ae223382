/**
 * The device check (`/check`, the listener page, which loads this module there): a section
 * under Now playing and a one-minute run that watches the player (check.js), shows a plain
 * report and sends it to the server (`POST /api/reports`), where the GM's listeners panel
 * shows it. `?seconds=` sets the length (5–600 s, for tests).
 */
import { CheckRecorder, FAIR_P95_MS, GOOD_P95_MS } from "./check.js";
import { $, h } from "./dom.js";

const DEFAULT_SECONDS = 60;
const TICK_MS = 100;
const VERDICT_TEXT = {
  good: "Works: in step with the table.",
  fair: "Works, with hiccups.",
  poor: "Plays, but not reliably in step.",
  failed: "Does not work on this device.",
};
const ENGINE_TEXT = {
  "hlsjs-mse": "hls.js on Media Source Extensions",
  "hlsjs-mms": "hls.js on ManagedMediaSource",
  native: "the browser's own HLS",
  unsynced: "the browser's own HLS, without a position",
  none: "none: this browser cannot play HLS",
};

const seconds = checkSeconds(location.search);
const ui = {
  join: /** @type {HTMLButtonElement} */ ($("#join")),
  status: h("p", { class: "check-status", "data-testid": "check-status", role: "status", "aria-live": "polite" }),
  result: h("div", { "data-testid": "check-result", hidden: true }),
};
const audio = /** @type {HTMLAudioElement} */ ($("#audio"));
document.title = "bardcast · device check";
$(".now").after(h("section", { class: "check", "aria-labelledby": "check-title" },
  h("h2", { id: "check-title", text: "Device check" }),
  h("p", { class: "muted", text: `One tap, then ${seconds === 60 ? "a minute" : `${seconds} s`} of listening: does this device play the table's stream, `
    + "in step with the others? Lock the screen for part of it to test background play. The result goes to the GM." }),
  ui.status,
  ui.result));
/** Local monotonic ms, like the player's. */
const now = () => performance.timeOrigin + performance.now();

/** The check's length (s) from `?seconds=`, else DEFAULT_SECONDS. */
function checkSeconds(search) {
  const s = Number(new URLSearchParams(search).get("seconds"));
  return Number.isFinite(s) && s >= 5 && s <= 600 ? Math.round(s) : DEFAULT_SECONDS;
}

function player() {
  return /** @type {any} */ (window).bardcast;
}

function label() {
  if (!ui.join.disabled && ui.join.textContent === "Join the table") ui.join.textContent = `Start the check (${seconds} s)`;
}

let recorder = null;

function start() {
  if (recorder) return;
  const p = player();
  recorder = new CheckRecorder({ now: now(), stats: p.syncStats });
  const endsAt = now() + seconds * 1000;
  ui.result.hidden = true;
  const timer = setInterval(() => {
    const t = now();
    recorder.tick({ now: t, state: p.state, syncError: p.syncError, locked: p.locked, struggling: p.struggling, stats: p.syncStats });
    const left = Math.max(0, Math.ceil((endsAt - t) / 1000));
    const error = p.syncError === null ? "measuring…" : `${Math.round(Math.abs(p.syncError) * 10) / 10} ms off`;
    ui.status.textContent = `Checking… ${left} s left · ${error}`;
    if (t >= endsAt) {
      clearInterval(timer);
      finish();
    }
  }, TICK_MS);
}

async function finish() {
  const p = player();
  const report = recorder.report({
    engine: p.engine,
    correction: p.correction,
    device: p.device,
    userAgent: navigator.userAgent,
    clientId: p.clientId,
    outputLatencyMs: p.outputLatencyMs,
    outputDelayMs: p.outputDelayMs,
    mediaTime: audio.currentTime,
  });
  show(report);
  ui.status.textContent = "Sending the result to the GM…";
  try {
    const r = await fetch("/api/reports", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(report) });
    if (!r.ok) throw new Error((await r.json().catch(() => null))?.error?.message ?? `HTTP ${r.status}`);
    ui.status.textContent = "Done. The GM sees this result in the listeners panel.";
  } catch (err) {
    ui.status.textContent = `Done, but the result could not be sent: ${err.message}`;
  }
  ui.status.dataset.done = "true";
}

function show(report) {
  const ms = (v) => (v === null ? "–" : `${v} ms`);
  const rows = [
    ["Browser", report.device],
    ["Engine", ENGINE_TEXT[report.engine] ?? report.engine],
    ["Playback started", report.started ? "yes" : "no"],
    ["Sync error, median", ms(report.syncP50Ms)],
    ["Sync error, 95 %", `${ms(report.syncP95Ms)} (good within ${GOOD_P95_MS}, audible beyond ${FAIR_P95_MS})`],
    ["Ran out of audio", String(report.stalls)],
    ["Corrects by", { rate: "speed changes", seek: "jumps (speed changes had no effect)", none: "nothing: no position" }[report.correction]],
    ["Speed changes / jumps", `${report.rateChanges} / ${report.seeks}`],
    ["Hidden or locked", report.hiddenSeconds ? `${report.hiddenSeconds} s, audio ${report.advancedWhileHidden === false ? "stopped" : "played on"}` : "not tried"],
    ["Output latency", report.outputLatencyMs === null ? "not reported by this browser" : `${report.outputLatencyMs} ms`],
    ["Speaker delay", `${report.outputDelayMs} ms`],
  ];
  ui.result.replaceChildren(
    h("p", { class: `verdict ${report.verdict}`, "data-testid": "check-verdict", "data-verdict": report.verdict, text: VERDICT_TEXT[report.verdict] }),
    h("dl", { class: "check-figures" }, ...rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])),
    ...(report.problems.length ? [h("ul", { class: "problems" }, ...report.problems.map((p) => h("li", { text: p })))] : []),
  );
  ui.result.hidden = false;
}

ui.join.addEventListener("click", start);
addEventListener("bardcast:ready", label);
label();
document.addEventListener("visibilitychange", () => {
  recorder?.visibility(document.visibilityState === "hidden", now(), audio.currentTime);
});
