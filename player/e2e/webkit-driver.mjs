// WebKit for the end-to-end tests: Debian's WebKitGTK MiniBrowser, driven through its
// WebDriver (`webkit2gtk-driver`) on a private Xvfb display, since Playwright's WebKit build
// cannot be installed here. `scripts/install-test-deps` installs both.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { sleep } from "./lib.mjs";

const MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const DRIVER = "/usr/bin/WebKitWebDriver";
const XVFB = "/usr/bin/Xvfb";

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts Xvfb and WebKitWebDriver, and one MiniBrowser session.
 * @returns {Promise<{ua: string, open: (url: string) => Promise<void>, run: (script: string) => Promise<any>,
 *   click: (selector: string) => Promise<void>, stop: () => Promise<void>}>}
 */
export async function startWebKit() {
  for (const bin of [MINIBROWSER, DRIVER, XVFB]) {
    if (!existsSync(bin)) throw new Error(`${bin} missing: run scripts/install-test-deps (webkit2gtk-driver, xvfb)`);
  }
  const display = `:${90 + Math.floor(Math.random() * 400)}`;
  const xvfb = spawn(XVFB, [display, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], { stdio: "ignore" });
  const port = await freePort();
  const driverProc = spawn(DRIVER, [`--port=${port}`, "--host=127.0.0.1"], { env: { ...process.env, DISPLAY: display }, stdio: "ignore" });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, path, body) => {
    const res = await fetch(base + path, {
      method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(json.value)}`);
    return json.value;
  };
  const stopProcs = async () => {
    driverProc.kill("SIGTERM");
    xvfb.kill("SIGTERM");
    await sleep(200);
  };
  let session;
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ready = await fetch(`${base}/status`).then((r) => r.ok).catch(() => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error("WebKitWebDriver did not start");
      await sleep(200);
    }
    session = (await call("POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] } } },
    })).sessionId;
  } catch (e) {
    await stopProcs();
    throw e;
  }
  const s = `/session/${session}`;
  const run = (script) => call("POST", `${s}/execute/sync`, { script, args: [] });
  return {
    ua: await run("return navigator.userAgent"),
    open: async (url) => { await call("POST", `${s}/url`, { url }); },
    run,
    /** A real click (a user gesture, as play() needs). */
    click: async (selector) => {
      const el = await call("POST", `${s}/element`, { using: "css selector", value: selector });
      await call("POST", `${s}/element/${Object.values(el)[0]}/click`, {});
    },
    stop: async () => {
      await call("DELETE", s).catch(() => {});
      await stopProcs();
    },
  };
}
