// Renders the pages in headless Chromium at phone and desktop sizes, saves
// screenshots and fails on uncaught exceptions or console errors from our code.
// Browser-generated network noise (a failed fetch or WebSocket while the server
// is down) is listed but allowed: the pages must survive exactly that.
//
//   python3 -m http.server 8099 --directory player &   # no API: "server unreachable"
//   node player/tools/screenshot.mjs http://127.0.0.1:8099 /tmp/shots
import { chromium } from "playwright-core";

const base = process.argv[2] ?? "http://127.0.0.1:8099";
const out = process.argv[3] ?? "/tmp/shots";
const pages = ["/index.html", "/gm.html", "/gm.html?key=test-key"];
const viewports = [{ name: "phone", width: 390, height: 844 }, { name: "desktop", width: 1280, height: 800 }];
const NETWORK_NOISE = /Failed to load resource|WebSocket connection to .* failed/;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
});
let failures = 0;
for (const vp of viewports) {
  for (const path of pages) {
    const context = await browser.newContext({ viewport: { width: vp.width, height: vp.height }, hasTouch: vp.name === "phone" });
    const page = await context.newPage();
    const problems = [];
    const noise = [];
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      (NETWORK_NOISE.test(msg.text()) ? noise : problems).push(msg.text());
    });
    await page.goto(base + path, { waitUntil: "load" });
    await page.waitForTimeout(2500);
    const file = `${out}/${vp.name}-${path.replace(/[^a-z0-9]+/gi, "_")}.png`;
    await page.screenshot({ path: file, fullPage: true });
    const url = page.url();
    console.log(`${problems.length ? "FAIL" : "ok  "} ${vp.name} ${path} -> ${file} (now at ${url.slice(base.length)}; ${noise.length} network errors)`);
    for (const p of problems) console.log(`     ${p}`);
    failures += problems.length;
    await context.close();
  }
}
await browser.close();
process.exit(failures ? 1 : 0);
