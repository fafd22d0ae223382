/**
 * Output volume = GM (room) volume × the listener's own volume, both 0..1.
 * Where `audio.volume` is read-only (iOS), the element is routed through a
 * Web Audio GainNode instead; that must be set up inside the Join gesture.
 */

const STORAGE_KEY = "bardcast.volume";

/** The listener's remembered volume (0..1), 1 by default. */
export function storedVolume(storage = globalThis.localStorage) {
  const value = Number.parseFloat(storage?.getItem(STORAGE_KEY) ?? "");
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 1;
}

export class Volume {
  /** @param {HTMLAudioElement} audio */
  constructor(audio) {
    this.audio = audio;
    /** Room volume set by the GM (0..1). */
    this.room = 1;
    /** This listener's volume (0..1). */
    this.personal = storedVolume();
    this.context = null;
    this.gain = null;
  }

  /** Call from the Join click: builds the Web Audio route if the element's volume is read-only. */
  unlock() {
    if (this.context) {
      this.context.resume();
      return;
    }
    if (!volumeIsReadOnly(this.audio)) return;
    const Context = window.AudioContext ?? window.webkitAudioContext;
    if (!Context) return;
    this.context = new Context();
    this.gain = this.context.createGain();
    this.context.createMediaElementSource(this.audio).connect(this.gain).connect(this.context.destination);
    this.context.resume();
    this.apply();
  }

  /** Resumes a Web Audio route the browser suspended (page hidden, call). */
  resume() {
    if (this.context?.state === "suspended") this.context.resume();
  }

  /** @param {number} value 0..1, from the GM */
  setRoom(value) {
    this.room = Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 1;
    this.apply();
  }

  /** @param {number} value 0..1, remembered in localStorage */
  setPersonal(value) {
    this.personal = Math.min(1, Math.max(0, value));
    try {
      localStorage.setItem(STORAGE_KEY, String(this.personal));
    } catch {
      // private mode: not remembered, still applied
    }
    this.apply();
  }

  /** @private */
  apply() {
    const level = this.room * this.personal;
    if (this.gain) this.gain.gain.value = level;
    else this.audio.volume = level;
  }
}

/** True when assigning audio.volume has no effect (iOS Safari). */
function volumeIsReadOnly(audio) {
  const before = audio.volume;
  const probe = before === 0.5 ? 0.25 : 0.5;
  audio.volume = probe;
  const readOnly = audio.volume !== probe;
  audio.volume = before;
  return readOnly;
}
