/**
 * The README's picture of the page: the default experiment (multigoal, RFM) trained for a fixed
 * number of env steps in headless Chromium (CPU backend), then paused; written to
 * docs/figures/playground.png. Run after `make build`:
 *   cd tests && node --import tsx e2e/screenshot.ts
 * (SHOT_STEPS overrides the step count.)
 */
import path from "node:path";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { launch, serveDist } from "./harness.ts";

const steps = Number(process.env.SHOT_STEPS ?? 600);
const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "docs", "figures", "playground.png");

const server = await serveDist();
const browser = await launch({ webgpu: false });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
  page.on("pageerror", (e) => console.error(`pageerror: ${e.message}`));
  await page.goto(`${server.url}?backend=cpu`);
  await page.waitForSelector("body[data-state=running]", { timeout: 180_000 });
  await page.selectOption("#speed", "100");
  await page.waitForFunction((n) => Number(document.getElementById("step-count")!.dataset.step) >= n, steps, { timeout: 600_000, polling: 500 });
  await page.click("#play");
  await page.waitForSelector("body[data-state=paused]");
  const before = Number(await page.getAttribute("#step-count", "data-step"));
  await page.click("#step");
  await page.waitForFunction((n) => Number(document.body.dataset.refreshedStep ?? -1) > n, before, { timeout: 120_000 });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  mkdirSync(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: false });
  console.log(`wrote ${out} (step ${await page.getAttribute("#step-count", "data-step")})`);
} finally {
  await browser.close();
  await server.close();
}
