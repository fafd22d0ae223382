/**
 * Listeners panel (device, connection, sync error, buffer, rtt, state) and
 * library status: scan button + progress, pre-segmenting progress. Fed by
 * socket messages, with REST polling while a scan or pre-segmenting runs
 * (so progress still moves if the socket is down).
 */
import { h } from "../dom.js";
import { formatBytes, formatMs } from "../format.js";

/** Poll period while work is running (ms). */
const POLL_MS = 2000;

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {{listeners: HTMLElement, library: HTMLElement}} panels
 */
export function createStatus(ctx, panels) {
  const rows = h("tbody", { "data-testid": "listeners" });
  const heading = h("span", { "data-testid": "listener-count", text: "0" });
  const delay = h("p", { class: "muted small", "data-testid": "playback-delay", text: "" });
  panels.listeners.append(
    h("h2", {}, "Listeners ", heading),
    delay,
    h("table", { class: "listeners" },
      h("thead", {}, h("tr", {}, ["Device", "Sync", "Buffer", "RTT", "State"].map((t) => h("th", { text: t })))),
      rows),
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
    rows.replaceChildren(...listeners.map((l) => {
      const size = Math.abs(l.syncError ?? NaN);
      const quality = !Number.isFinite(size) ? "" : size < 10 ? "q-good" : size < 50 ? "q-fair" : "q-poor";
      return h("tr", { "data-testid": "listener-row", "data-client-id": l.clientId, "data-connected": String(Boolean(l.connected)) },
        h("td", { text: `${l.device || "unknown"}${l.role === "gm" ? " (GM)" : ""}` },
          l.outputDelayMs > 0 ? h("span", { class: "muted small", "data-testid": "listener-speaker", text: ` · speaker ${Math.round(l.outputDelayMs)} ms` }) : null),
        h("td", { class: quality, "data-testid": "listener-sync", text: formatMs(l.syncError) }),
        h("td", { text: Number.isFinite(l.buffer) ? `${l.buffer.toFixed(1)} s` : "–" }),
        h("td", { text: Number.isFinite(l.rtt) ? `${Math.round(l.rtt)} ms` : "–" }),
        h("td", { "data-testid": "listener-state", text: !l.connected ? "offline" : l.struggling ? `${l.state ?? "–"}, can't keep up` : l.state ?? "–" }));
    }));
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
  ctx.on("state", showDelay);
  ctx.on("scan", onScan);
  ctx.on("cache", showCache);
  showListeners([]);
  return { refresh: () => Promise.all([refreshScan(), refreshCache()]) };
}
