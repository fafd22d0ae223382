import test from "node:test";
import assert from "node:assert/strict";
import { NativePosition, enginePreference, nextPartUrl, playbackMode, playRejection, prefetchingLoader, storeEnginePreference } from "../js/media.js";

test("playbackMode: hls.js first, native HLS with getStartDate() synced, without it unsynced", () => {
  assert.equal(playbackMode({ hlsSupported: true, nativeHls: true, startDate: false }), "hls", "Chromium: hls.js, not its 'maybe'");
  assert.equal(playbackMode({ hlsSupported: false, nativeHls: true, startDate: true }), "native", "old iOS Safari");
  assert.equal(playbackMode({ hlsSupported: false, nativeHls: true, startDate: false }), "unsynced", "Chromium without hls.js");
  assert.equal(playbackMode({ hlsSupported: false, nativeHls: false, startDate: false }), "none");
});

test("playRejection: only NotAllowedError is a block; AbortError says nothing", () => {
  assert.equal(playRejection({ name: "AbortError" }), null);
  const blocked = playRejection({ name: "NotAllowedError" });
  assert.equal(blocked.retry, true);
  assert.match(blocked.message, /blocked.*Tap Join again/);
  assert.equal(playRejection({ name: "NotSupportedError" }).retry, false);
  assert.doesNotMatch(playRejection({ name: "NotSupportedError" }).message, /blocked/);
  assert.doesNotMatch(playRejection({ name: "Whatever" }).message, /blocked/);
  assert.doesNotMatch(playRejection(undefined).message, /blocked/);
});

test("nextPartUrl: the next part on the grid, nothing for other URLs", () => {
  assert.equal(nextPartUrl("http://h:3000/hls/256k/part/3446054912.m4s"), "http://h:3000/hls/256k/part/3446054913.m4s");
  assert.equal(nextPartUrl("http://h/hls/256k/part/9.m4s?x=1"), "http://h/hls/256k/part/10.m4s?x=1");
  assert.equal(nextPartUrl("http://h/hls/256k/part/9007199254740993.m4s"), "http://h/hls/256k/part/9007199254740994.m4s", "beyond 2^53");
  assert.equal(nextPartUrl("http://h/hls/256k/seg/12.m4s"), null);
  assert.equal(nextPartUrl("http://h/hls/256k/init.mp4"), null);
});

/** What hls.js's loaders do around loadInternal (BaseLoader), with the network as a counter. */
class FakeNetworkLoader {
  constructor() {
    this.stats = { loading: { start: 0, first: 0, end: 0 }, loaded: 0, total: 0, aborted: false };
    this.callbacks = null;
    this.context = null;
    this.network = 0;
  }

  load(context, _config, callbacks) {
    this.stats.loading.start = 1;
    this.context = context;
    this.callbacks = callbacks;
    this.loadInternal();
  }

  loadInternal() {
    this.network += 1;
  }

  abortInternal() {}

  abort() {
    this.abortInternal();
    this.callbacks?.onAbort?.();
  }
}

function loaderWith(prefetched) {
  const Loader = prefetchingLoader(FakeNetworkLoader, { takePrefetched: (url) => prefetched.get(url) ?? null });
  const loader = new Loader();
  const got = [];
  return { loader, got, load: (url) => loader.load({ url }, {}, { onSuccess: (response) => got.push(response) }) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("prefetchingLoader: a part fetched ahead is answered from its bytes, without asking the network", async () => {
  const bytes = new ArrayBuffer(16);
  const { loader, got, load } = loaderWith(new Map([["http://h/part/7.m4s", Promise.resolve(bytes)]]));
  load("http://h/part/7.m4s");
  await tick();
  assert.equal(loader.network, 0);
  assert.equal(got.length, 1);
  assert.equal(got[0].data, bytes);
  assert.equal(loader.stats.loaded, 16);
});

test("prefetchingLoader: anything else, or a fetch ahead that failed, goes to the network once", async () => {
  const other = loaderWith(new Map());
  other.load("http://h/part/8.m4s");
  assert.equal(other.loader.network, 1);
  const failed = loaderWith(new Map([["http://h/part/9.m4s", Promise.resolve(null)]]));
  failed.load("http://h/part/9.m4s");
  assert.equal(failed.loader.network, 0, "waits for the fetch ahead first");
  await tick();
  assert.equal(failed.loader.network, 1);
  assert.equal(failed.got.length, 0);
});

test("prefetchingLoader: an aborted request does not answer when the bytes arrive later", async () => {
  let arrive;
  const { loader, got, load } = loaderWith(new Map([["http://h/part/10.m4s", new Promise((resolve) => { arrive = resolve; })]]));
  load("http://h/part/10.m4s");
  loader.abort();
  arrive(new ArrayBuffer(4));
  await tick();
  assert.equal(got.length, 0);
  assert.equal(loader.network, 0);
});

test("playbackMode: the listener may ask for the browser's own HLS where it can be synced", () => {
  assert.equal(playbackMode({ hlsSupported: true, nativeHls: true, startDate: true, prefer: "native" }), "native", "Safari, ?engine=native");
  assert.equal(playbackMode({ hlsSupported: true, nativeHls: true, startDate: false, prefer: "native" }), "hls", "Chromium cannot: hls.js");
  assert.equal(playbackMode({ hlsSupported: true, nativeHls: true, startDate: true, prefer: "hlsjs" }), "hls");
  assert.equal(playbackMode({ hlsSupported: false, nativeHls: true, startDate: true, prefer: "hlsjs" }), "native", "no hls.js: native");
});

test("enginePreference: the address, else the device's choice, else auto", () => {
  const storage = new Map();
  const store = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v), removeItem: (k) => storage.delete(k) };
  assert.equal(enginePreference("", store), "auto");
  storeEnginePreference("native", store);
  assert.equal(enginePreference("", store), "native");
  assert.equal(enginePreference("?engine=hlsjs", store), "hlsjs");
  assert.equal(enginePreference("?engine=flash", store), "native", "an unknown choice is ignored");
  storeEnginePreference("auto", store);
  assert.equal(enginePreference("", store), "auto");
  const broken = { getItem: () => { throw new Error("disabled"); } };
  assert.equal(enginePreference("", broken), "auto");
});

/** A native-HLS element as Safari shows it: a start date that is NaN before `loadeddata`. */
function nativeElement({ start = NaN, time = 0 } = {}) {
  return { start, currentTime: time, getStartDate() { return new Date(this.start); } };
}

test("NativePosition: nothing before loadeddata, NaN start dates give nothing, position = start date + currentTime", () => {
  const pos = new NativePosition();
  const el = nativeElement({ start: 1_764_000_000_000, time: 12.5 });
  assert.equal(pos.read(el), null, "before loadeddata the start date may be stale");
  pos.markLoaded();
  assert.equal(pos.read(el), 1_764_000_012_500);
  el.start = NaN;
  assert.equal(pos.read(el), null);
  el.start = 0;
  assert.equal(pos.read(el), null, "the epoch is no start date");
  el.start = 1_764_000_000_000;
  el.currentTime = NaN;
  assert.equal(pos.read(el), null);
  pos.reset();
  el.currentTime = 1;
  assert.equal(pos.read(el), null, "a new load waits for its loadeddata");
  assert.equal(pos.read({ currentTime: 1 }), null, "no getStartDate at all");
});

test("NativePosition: one odd start date is ignored, a start date that stays is taken", () => {
  const pos = new NativePosition();
  pos.markLoaded();
  const el = nativeElement({ start: 1_764_000_000_000, time: 10 });
  assert.equal(pos.read(el), 1_764_000_010_000);
  el.start += 2000; // one reading off by 2 s
  assert.equal(pos.read(el), 1_764_000_010_000);
  el.start -= 2000;
  assert.equal(pos.read(el), 1_764_000_010_000);
  assert.equal(pos.jumps, 0);
  el.start += 6000; // the stream's timeline moved for good
  pos.read(el);
  assert.equal(pos.read(el), 1_764_000_016_000);
  assert.equal(pos.jumps, 1);
  el.start += 0.4; // rounding of the date: no jump
  assert.equal(pos.read(el), 1_764_000_016_000);
});
