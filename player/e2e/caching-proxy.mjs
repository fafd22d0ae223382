// The caching proxies we ship config for (k8s/proxy/: nginx and Varnish), started on
// 127.0.0.1 in front of a server for the harnesses, and a load of simulated LL-HLS listeners
// that make the thundering herd at each part a proxy has to coalesce.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PLAYER_DIR, percentile, sleep } from "./lib.mjs";

const K8S_DIR = resolve(PLAYER_DIR, "../k8s");
/** Part length on the time grid, ms. */
const PART_MS = 512;

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (s.address());
      s.close(() => done(port));
    });
  });
}

/**
 * Starts `kind` ("nginx" or "varnish") with our config in front of `target` (a base URL).
 * @returns {Promise<{base: string, stop: () => void}>}
 */
export async function startCachingProxy(kind, target) {
  const upstream = new URL(target).host;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `bardcast-${kind}-`));
  const render = { nginx: "proxy/render-local.sh", varnish: "proxy-varnish/render-varnish-local.sh" }[kind];
  if (!render) throw new Error(`unknown proxy ${kind}: nginx or varnish`);
  const quiet = { stdio: ["ignore", "ignore", "inherit"] };
  // The render script writes DIR/start and DIR/stop beside the config.
  execFileSync(join(K8S_DIR, render), [upstream, String(port), dir], quiet);
  execFileSync(join(dir, "start"), [], quiet);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/api/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 100) throw new Error(`${kind} did not come up on ${base}`);
    await sleep(100);
  }
  return {
    base,
    stop() {
      try { execFileSync(join(dir, "stop"), [], quiet); } catch { /* already gone */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `n` simulated listeners at the live edge of `base`, each doing what hls.js does: a blocking
 * playlist reload for the next part, then that part. `stop()` ends them and gives how late
 * the blocking answers came after their part's start on the grid (ms; p50, p99) and errors.
 */
export function startLoad(base, n) {
  let running = true;
  const lateMs = [];
  let errors = 0;
  const one = async () => {
    let next = null;
    while (running) {
      const query = next === null ? "" : `?_HLS_msn=${Math.floor(next / 4)}&_HLS_part=${next % 4}`;
      try {
        const text = await (await fetch(`${base}/hls/256k/live.m3u8${query}`)).text();
        if (next !== null) lateMs.push(Date.now() - next * PART_MS);
        const last = [...text.matchAll(/#EXT-X-PART:.*URI="part\/(\d+)\.m4s"/g)].at(-1);
        if (!last) throw new Error("no parts listed");
        const r = await fetch(`${base}/hls/256k/part/${last[1]}.m4s`);
        await r.arrayBuffer();
        next = Number(last[1]) + 1;
      } catch {
        errors += 1;
        next = null;
        await sleep(500);
      }
    }
  };
  const all = Array.from({ length: n }, () => one());
  return {
    async stop() {
      running = false;
      await Promise.all(all);
      return { p50: percentile(lateMs, 0.5), p99: percentile(lateMs, 0.99), answers: lateMs.length, errors };
    },
  };
}
