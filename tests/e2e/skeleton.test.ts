/**
 * The walking skeleton end to end: the served page starts the worker, which trains the probe
 * network on WebGPU (SwiftShader) or, without WebGPU, on the CPU backend; the page shows the
 * backend and a falling loss.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { launch, screenshot, serveDist, watchErrors } from "./harness.ts";

let server: Awaited<ReturnType<typeof serveDist>>;

before(async () => {
  server = await serveDist();
});
after(async () => {
  await server?.close();
});

for (const webgpu of [true, false]) {
  const label = webgpu ? "webgpu" : "cpu-fallback";
  describe(`probe in a worker (${label})`, () => {
    let browser: Browser;
    before(async () => {
      browser = await launch({ webgpu });
    });
    after(async () => {
      await browser?.close();
    });

    test("trains and shows backend and loss", async () => {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      const t0 = Date.now();
      await page.goto(server.url);
      await page.waitForSelector("body[data-state=done], body[data-state=error]", { timeout: 120_000 });
      const state = await page.getAttribute("body", "data-state");
      const status = await page.textContent("#status");
      assert.equal(state, "done", `page reported: ${status}`);
      const kind = await page.getAttribute("#backend", "data-kind");
      const backend = (await page.textContent("#backend")) ?? "";
      assert.equal(kind, webgpu ? "webgpu" : "cpu", `backend shown: ${backend}`);
      if (!webgpu) assert.match(backend, /CPU/);
      const initial = Number(await page.getAttribute("#loss", "data-initial"));
      const final = Number(await page.getAttribute("#loss", "data-final"));
      assert.ok(Number.isFinite(initial) && Number.isFinite(final), `loss ${initial} → ${final}`);
      assert.ok(final < 0.5 * initial, `loss did not fall: ${initial} → ${final}`);
      const file = await screenshot(page, `skeleton-${label}`);
      console.log(`${label}: ${backend}; loss ${initial.toFixed(4)} → ${final.toFixed(4)}; ${Date.now() - t0} ms; ${file}`);
      assert.deepEqual(errors, []);
      await page.close();
    });
  });
}
