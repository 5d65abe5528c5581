/**
 * Golden images of a few deterministic frames: sampler mode (8 Gaussians, the mode's defaults,
 * seed 0), CPU backend, paused, after exactly GOLDEN_STEPS updates (the `?debug` hook
 * `train(n)`, which then refreshes every view). The canvases' pixels are compared with the PNGs
 * in tests/golden/ with a small tolerance (anti-aliasing, alpha rounding).
 *
 * Regenerate (after a deliberate change to what is drawn, or to the trainer's numbers):
 *   cd tests && RFM_UPDATE_GOLDEN=1 node --import tsx --test e2e/golden.test.ts
 * and look at the new PNGs before committing them.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { launch, serveDist, watchErrors } from "./harness.ts";

const goldenDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "golden");
const update = process.env.RFM_UPDATE_GOLDEN === "1";
export const GOLDEN_STEPS = 100;
/** Canvases compared (ids). */
const CANVASES = ["density-policy", "density-target", "paths-canvas", "curve-losses"];
/** A pixel differs when a channel differs by more than this (0–255). */
const CHANNEL_TOLERANCE = 24;
/** At most this share of a canvas's pixels may differ (renaming one legend entry changes 0.15 %; reruns 0 %). */
const PIXEL_TOLERANCE = 0.0005;

let server: Awaited<ReturnType<typeof serveDist>>;
let browser: Browser;
before(async () => {
  server = await serveDist();
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

async function frame(page: Page): Promise<void> {
  await page.goto(`${server.url}?debug&paused&backend=cpu`);
  await page.waitForSelector("body[data-state=paused]", { timeout: 180_000 });
  const run = Number(await page.getAttribute("body", "data-run"));
  await page.selectOption("#cfg-mode", "sampler");
  await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "paused", run, { timeout: 120_000 });
  assert.equal(await page.inputValue("#cfg-target"), "gmm8");
  assert.equal(await page.inputValue("#cfg-seed"), "0");
  await page.evaluate((n) => (window as unknown as { rfmDebug: { train(n: number): Promise<void> } }).rfmDebug.train(n), GOLDEN_STEPS);
  await page.waitForFunction((n) => Number(document.body.dataset.refreshedStep) === n, GOLDEN_STEPS, { timeout: 120_000 });
  // Let the requested animation frame paint.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

test(`golden frames: sampler gmm8, seed 0, CPU, paused after ${GOLDEN_STEPS} updates`, async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
  const errors = watchErrors(page);
  await frame(page);
  const report: string[] = [];
  for (const id of CANVASES) {
    const file = path.join(goldenDir, `sampler-gmm8-${id}.png`);
    if (update) {
      const url = await page.$eval(`#${id}`, (c) => (c as HTMLCanvasElement).toDataURL("image/png"));
      mkdirSync(goldenDir, { recursive: true });
      writeFileSync(file, Buffer.from(url.split(",")[1], "base64"));
      report.push(`${id}: written`);
      continue;
    }
    assert.ok(existsSync(file), `${file} is missing: regenerate with RFM_UPDATE_GOLDEN=1 (see the top of this file)`);
    const golden = `data:image/png;base64,${readFileSync(file).toString("base64")}`;
    const diff = await page.$eval(
      `#${id}`,
      async (c, { golden, tol }) => {
        const live = c as HTMLCanvasElement;
        const img = new Image();
        img.src = golden;
        await img.decode();
        if (img.width !== live.width || img.height !== live.height) return { size: `${live.width}×${live.height} vs golden ${img.width}×${img.height}`, share: 1 };
        const off = document.createElement("canvas");
        off.width = img.width;
        off.height = img.height;
        const octx = off.getContext("2d")!;
        octx.drawImage(img, 0, 0);
        const a = octx.getImageData(0, 0, off.width, off.height).data;
        const b = live.getContext("2d")!.getImageData(0, 0, live.width, live.height).data;
        let bad = 0;
        for (let i = 0; i < a.length; i += 4) {
          if (Math.abs(a[i] - b[i]) > tol || Math.abs(a[i + 1] - b[i + 1]) > tol || Math.abs(a[i + 2] - b[i + 2]) > tol || Math.abs(a[i + 3] - b[i + 3]) > tol) bad++;
        }
        return { size: "", share: bad / (a.length / 4) };
      },
      { golden, tol: CHANNEL_TOLERANCE },
    );
    report.push(`${id}: ${(diff.share * 100).toFixed(3)} % of pixels differ${diff.size ? ` (${diff.size})` : ""}`);
    assert.equal(diff.size, "", `${id}: ${diff.size}`);
    assert.ok(diff.share <= PIXEL_TOLERANCE, `${id}: ${(diff.share * 100).toFixed(2)} % of pixels differ from ${file} (tolerance ${PIXEL_TOLERANCE * 100} %)`);
  }
  console.log(report.join("\n"));
  assert.deepEqual(errors, []);
  await page.close();
});
