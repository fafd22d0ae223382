/**
 * Listeners panel (device, engine, connection, sync error, buffer, rtt, state, the result of
 * a device check run on it; the calibration tick's switch), the recent device checks (`/check`), and
 * library status: scan button + progress, pre-segmenting progress. Fed by
 * socket messages, with REST polling while a scan or pre-segmenting runs
 * (so progress still moves if the socket is down).
 */
import { h } from "../dom.js";
import { formatBytes, formatMs } from "../format.js";

/** Poll period while work is running (ms). */
const POLL_MS = 2000;
const ENGINE_NAMES = { "hlsjs-mse": "hls.js", "hlsjs-mms": "hls.js (MMS)", native: "native HLS", unsynced: "unsynced", none: "no HLS" };
const VERDICT_QUALITY = { good: "good", fair: "fair", poor: "poor", failed: "poor" };

/** A check's result in a few words: verdict and sync p95. */
function checkLine(c) {
  return `${c.verdict}${c.syncP95Ms === null || c.syncP95Ms === undefined ? "" : `, p95 ${c.syncP95Ms} ms`}`;
}

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {{listeners: HTMLElement, library: HTMLElement}} panels
 */
export function createStatus(ctx, panels) {
  const rows = h("tbody", { "data-testid": "listeners" });
  const heading = h("span", { "data-testid": "listener-count", text: "0" });
  const delay = h("p", { class: "muted small", "data-testid": "playback-delay", text: "" });
  const tick = h("button", {
    type: "button", "data-testid": "tick", "aria-pressed": "false",
    title: "Every listener hears a click on each whole second: a player on a Bluetooth speaker slides their speaker delay until their click lands with the others'",
    text: "Calibration tick", onClick: () => ctx.command("tick", { on: !ctx.state?.tick }),
  });
  const checks = h("ul", { class: "checks small", "data-testid": "device-checks" });
  const checksCount = h("span", { text: "" });
  panels.listeners.append(
    h("h2", {}, "Listeners ", heading),
    h("div", { class: "row" }, h("div", { class: "grow" }, delay), tick),
    h("table", { class: "listeners" },
      h("thead", {}, h("tr", {}, ["Device", "Sync", "Buffer", "RTT", "State"].map((t) => h("th", { text: t })))),
      rows),
    h("details", { class: "checks-panel" },
      h("summary", {}, "Device checks", checksCount),
      h("p", { class: "muted small" }, "Players open ", h("a", { href: "/check", target: "_blank", text: "/check" }),
        " on their device: a minute later the result shows here."),
      checks),
  );

  const scanButton = h("button", { type: "button", "data-testid": "scan-button", text: "Scan library", onClick: scan });
  const scanProgress = h("progress", { "data-testid": "scan-progress", hidden: true });
  const scanText = h("div", { class: "muted small", "data-testid": "scan-status", text: "–" });
  const cacheButton = h("button", { type: "button", "data-testid": "cache-prepare", text: "Pre-segment all", onClick: prepare });
  const cacheProgress = h("progress", { "data-testid": "cache-progress", max: 1, value: 0 });
  const cacheText = h("div", { class: "muted small", "data-testid": "cache-status", text: "–" });
  panels.library.append(
    h("h2", {}, "Library"),
    h("div", { class: "row" }, scanButton, h("div", { class: "grow" }, scanText)),
    scanProgress,
    h("div", { class: "row", style: "margin-top: 12px" }, cacheButton, h("div", { class: "grow" }, cacheText)),
    cacheProgress,
  );

  let scanPoll = null;
  let cachePoll = null;

  let lastListeners = [];

  /** The room's playback delay D, how it was chosen, and who cannot keep up. */
  function showDelay() {
    tick.setAttribute("aria-pressed", String(Boolean(ctx.state?.tick)));
    const d = ctx.state?.delay;
    if (!d) return;
    const name = (id) => {
      const l = lastListeners.find((x) => x.clientId === id);
      return l ? `${l.device || "unknown"} (${id})` : id;
    };
    const gliding = d.targetMs !== d.currentMs ? ` → ${d.targetMs} ms` : "";
    const why = d.pinned ? "pinned by the GM" : d.setBy ? `raised for ${name(d.setBy)}` : "automatic";
    const behind = d.cannotKeepUp?.length ? `. Cannot keep up: ${d.cannotKeepUp.map(name).join(", ")}` : "";
    delay.textContent = `Playback delay ${d.currentMs} ms${gliding}, ${why}${behind}`;
  }

  function showListeners(listeners) {
    lastListeners = listeners;
    showDelay();
    heading.textContent = String(listeners.filter((l) => l.connected && l.role !== "gm").length);
    if (!listeners.length) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "muted", text: "Nobody connected yet." })));
      return;
    }
    const newCheck = listeners.some((l) => l.check && !seenChecks.has(`${l.clientId}@${l.check.receivedAt}`));
    if (newCheck) refreshChecks();
    rows.replaceChildren(...listeners.map((l) => {
      const size = Math.abs(l.syncError ?? NaN);
      const quality = !Number.isFinite(size) ? "" : size < 10 ? "q-good" : size < 50 ? "q-fair" : "q-poor";
      return h("tr", { "data-testid": "listener-row", "data-client-id": l.clientId, "data-connected": String(Boolean(l.connected)) },
        h("td", { text: `${l.device || "unknown"}${l.role === "gm" ? " (GM)" : ""}` },
          l.engine ? h("span", { class: "muted small", "data-testid": "listener-engine", text: ` · ${ENGINE_NAMES[l.engine] ?? l.engine}` }) : null,
          l.correction === "seek" ? h("span", { class: "warn small", text: " · corrects by jumps" }) : null,
          l.outputDelayMs > 0 ? h("span", { class: "muted small", "data-testid": "listener-speaker", text: ` · speaker ${Math.round(l.outputDelayMs)} ms` }) : null,
          l.check ? h("span", { class: `small q-${VERDICT_QUALITY[l.check.verdict]}`, "data-testid": "listener-check", text: ` · check: ${checkLine(l.check)}` }) : null),
        h("td", { class: quality, "data-testid": "listener-sync", text: formatMs(l.syncError) }),
        h("td", { text: Number.isFinite(l.buffer) ? `${l.buffer.toFixed(1)} s` : "–" }),
        h("td", { text: Number.isFinite(l.rtt) ? `${Math.round(l.rtt)} ms` : "–" }),
        h("td", { "data-testid": "listener-state", text: !l.connected ? "offline" : l.struggling ? `${l.state ?? "–"}, can't keep up` : l.state ?? "–" }));
    }));
  }

  /** Checks already shown, by `clientId@receivedAt`. */
  const seenChecks = new Set();

  async function refreshChecks() {
    const list = await ctx.run(() => ctx.api.deviceChecks());
    if (list === undefined) return;
    for (const l of lastListeners) if (l.check) seenChecks.add(`${l.clientId}@${l.check.receivedAt}`);
    checksCount.textContent = list.items.length ? ` (${list.items.length})` : "";
    checks.replaceChildren(...(list.items.length ? list.items.map((c) => h("li", { "data-testid": "device-check", "data-verdict": c.verdict },
      h("span", { class: `q-${VERDICT_QUALITY[c.verdict]}`, text: c.verdict }),
      ` ${c.device} · ${ENGINE_NAMES[c.engine] ?? c.engine} · ${checkLine(c)} · ${new Date(c.receivedAt).toLocaleString()}`,
      c.problems?.length ? h("div", { class: "muted", text: c.problems.join(" ") }) : null))
      : [h("li", { class: "muted", text: "No checks yet." })]));
  }

  function showScan(status) {
    const running = status.state === "scanning";
    scanButton.disabled = running;
    scanProgress.hidden = !running;
    const counts = `${status.seen ?? 0} seen, ${status.added ?? 0} added, ${status.updated ?? 0} updated, ${status.missing ?? 0} missing, ${status.errors ?? 0} errors`;
    if (running) scanText.textContent = `Scanning… ${counts}`;
    else if (status.lastFinishedAt) scanText.textContent = `Last scan ${new Date(status.lastFinishedAt).toLocaleString()} (${((status.elapsedMs ?? 0) / 1000).toFixed(1)} s): ${counts}`;
    else scanText.textContent = "Never scanned";
    clearTimeout(scanPoll);
    if (running) scanPoll = setTimeout(refreshScan, POLL_MS);
  }

  function showCache(status) {
    const done = status.done ?? 0;
    const pending = status.pending ?? 0;
    const failed = status.failed ?? 0;
    const total = done + pending + failed;
    cacheProgress.max = Math.max(1, total);
    cacheProgress.value = done;
    cacheText.textContent = `${done} ready, ${pending} pending, ${failed} failed — ${formatBytes(status.bytesUsed ?? 0)} of ${formatBytes(status.maxBytes ?? 0)}`;
    clearTimeout(cachePoll);
    if (pending > 0) cachePoll = setTimeout(refreshCache, POLL_MS);
  }

  let lastScanState = "idle";
  /** Shows a scan status; when a scan has just ended, tells the library views to reload. */
  function onScan(status) {
    const finished = lastScanState === "scanning" && status.state !== "scanning";
    lastScanState = status.state;
    showScan(status);
    if (finished) ctx.emit("library-changed", {});
  }

  async function refreshScan() {
    const status = await ctx.run(() => ctx.api.scanStatus());
    if (status !== undefined) onScan(status);
  }

  async function refreshCache() {
    const status = await ctx.run(() => ctx.api.cacheStatus());
    if (status !== undefined) showCache(status);
  }

  async function scan() {
    scanButton.disabled = true;
    const started = await ctx.run(() => ctx.api.scan(), "Scan started");
    if (started === undefined) scanButton.disabled = false;
    refreshScan();
  }

  async function prepare() {
    if ((await ctx.run(() => ctx.api.cachePrepare(), "Pre-segmenting the library")) !== undefined) refreshCache();
  }

  ctx.on("listeners", showListeners);
  refreshChecks();
  ctx.on("state", showDelay);
  ctx.on("scan", onScan);
  ctx.on("cache", showCache);
  showListeners([]);
  return { refresh: () => Promise.all([refreshScan(), refreshCache()]) };
}
