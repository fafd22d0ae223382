/**
 * Transport panel: now playing, seek bar (position at effectiveAt advancing
 * with server time unless paused), previous / play-pause / stop / next,
 * repeat and shuffle modes, master volume, and a countdown to when listeners
 * hear the last command.
 */
import { h } from "../dom.js";
import { formatTime, msUntilAudible, positionAt } from "../format.js";
import { icon } from "./icons.js";

/** Display refresh period (ms). */
const REFRESH_MS = 200;
const REPEAT_NEXT = { off: "all", all: "one", one: "off" };
const REPEAT_LABEL = { off: "Off", all: "All", one: "One" };

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {HTMLElement} panel
 */
export function createTransport(ctx, panel) {
  const title = h("div", { class: "np-title", "data-testid": "np-title", text: "Nothing playing" });
  const artist = h("div", { class: "np-artist", "data-testid": "np-artist" });
  const elapsed = h("span", { "data-testid": "np-elapsed", text: formatTime(null) });
  const duration = h("span", { "data-testid": "np-duration", text: formatTime(null) });
  const seek = h("input", { type: "range", min: 0, max: 1, step: 0.1, value: 0, "aria-label": "Seek", "data-testid": "seek", disabled: true });
  const btn = (testid, label, iconName, onClick) =>
    h("button", { type: "button", class: "icon", "data-testid": testid, "aria-label": label, title: label, onClick }, icon(iconName));
  const prev = btn("prev", "Previous (p)", "previous", () => ctx.command("previous"));
  const playPause = btn("play-pause", "Pause / resume (space)", "pause", togglePause);
  const stop = btn("stop", "Stop", "stop", () => ctx.command("stop"));
  const next = btn("next", "Next (n)", "next", () => ctx.command("next"));
  const repeatText = h("span", { text: REPEAT_LABEL.off });
  const repeat = btn("repeat", "Repeat Off", "repeat", () => ctx.command("repeat", { mode: REPEAT_NEXT[ctx.state?.repeat ?? "off"] }));
  repeat.append(repeatText);
  const shuffle = btn("shuffle", "Shuffle", "shuffle", () => ctx.command("shuffle", { on: !ctx.state?.shuffle }));
  const volume = h("input", { type: "range", min: 0, max: 1, step: 0.01, value: 1, "aria-label": "Master volume", "data-testid": "master-volume" });
  const effective = h("div", { class: "effective", "data-testid": "effective", role: "status" });
  const error = h("div", { class: "banner", "data-testid": "session-error", hidden: true });

  panel.append(
    h("div", {}, title, artist),
    h("div", { class: "seek" }, elapsed, seek, duration),
    h("div", { class: "buttons" }, prev, playPause, stop, next, repeat, shuffle,
      h("label", { class: "master" }, h("span", { class: "muted", text: "Master" }), volume)),
    effective,
    error,
  );

  let seeking = false;
  seek.addEventListener("pointerdown", () => { seeking = true; });
  seek.addEventListener("input", () => {
    seeking = true;
    elapsed.textContent = formatTime(Number(seek.value));
  });
  seek.addEventListener("change", () => {
    seeking = false;
    ctx.command("seek", { position: Number(seek.value) });
  });
  let volumeTimer = null;
  volume.addEventListener("input", () => {
    clearTimeout(volumeTimer);
    volumeTimer = setTimeout(() => ctx.command("volume", { volume: Number(volume.value) }), 150);
  });

  function togglePause() {
    const s = ctx.state;
    if (!s?.nowPlaying) return;
    ctx.command(s.paused || s.stopped ? "resume" : "pause");
  }

  /**
   * Seeks relative to the current position.
   * @param {number} seconds
   */
  function seekBy(seconds) {
    const s = ctx.state;
    if (!s?.nowPlaying) return;
    const position = positionAt(s, ctx.serverNow()) ?? 0;
    ctx.command("seek", { position: Math.max(0, Math.min(s.nowPlaying.duration ?? Infinity, position + seconds)) });
  }

  function render() {
    const s = ctx.state;
    const np = s?.nowPlaying ?? null;
    title.textContent = np ? np.title || "Untitled" : "Nothing playing";
    artist.textContent = np ? [np.artist, np.album].filter(Boolean).join(" — ") : s?.stopped ? "Stopped" : "";
    duration.textContent = formatTime(np?.duration);
    seek.disabled = !np;
    seek.max = String(np?.duration || 1);
    const paused = Boolean(s?.paused || s?.stopped);
    playPause.replaceChildren(icon(paused ? "play" : "pause"));
    playPause.setAttribute("aria-label", paused ? "Resume (space)" : "Pause (space)");
    playPause.disabled = stop.disabled = !np;
    repeatText.textContent = REPEAT_LABEL[s?.repeat ?? "off"];
    repeat.setAttribute("aria-label", `Repeat ${repeatText.textContent}`);
    repeat.title = `Repeat: ${repeatText.textContent} (click for ${REPEAT_LABEL[REPEAT_NEXT[s?.repeat ?? "off"]].toLowerCase()})`;
    repeat.setAttribute("aria-pressed", String((s?.repeat ?? "off") !== "off"));
    shuffle.setAttribute("aria-pressed", String(Boolean(s?.shuffle)));
    if (document.activeElement !== volume) volume.value = String(s?.volume ?? 1);
    error.hidden = !s?.error;
    error.textContent = s?.error ?? "";
    tick();
  }

  /** Moves the seek bar and the countdown (every REFRESH_MS). */
  function tick() {
    const s = ctx.state;
    if (!s) return;
    const now = ctx.serverNow();
    const position = positionAt(s, now);
    if (!seeking) {
      seek.value = String(position ?? 0);
      elapsed.textContent = formatTime(position);
    }
    const wait = msUntilAudible(s, now);
    effective.textContent = wait > 0 ? `Listeners hear the change in ${(wait / 1000).toFixed(1)} s` : "";
  }

  ctx.on("state", render);
  setInterval(tick, REFRESH_MS);
  return { togglePause, seekBy };
}
