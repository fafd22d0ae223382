/**
 * The listener's own volume (0..1), remembered on this device. The GM's volume is in the
 * stream itself, so every listener hears it change at the same moment.
 *
 * Where `audio.volume` is read-only (iOS), the hardware buttons set the level and the page
 * offers no slider. It builds no Web Audio route either: a routed element mishandles
 * playbackRate ≠ 1 with preservesPitch off (WebKit bug 240405) and falls silent when the
 * screen locks.
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
    /** This listener's volume (0..1). */
    this.personal = storedVolume();
    /** False where the element's volume is read-only: the hardware buttons set it. */
    this.adjustable = !volumeIsReadOnly(audio);
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
    if (this.adjustable) this.audio.volume = this.personal;
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
