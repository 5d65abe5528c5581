/**
 * Reliability end to end (CPU backend, headless Chromium), each test in a fresh browser
 * context (its own IndexedDB):
 *
 * - a fault injected into the page's training (`?debug` hook) pauses it with a plain message,
 *   and changing a setting goes on from the last good weights and step count;
 * - a lost device moves training to the CPU and it continues from the last snapshot (on the CPU
 *   backend, and from WebGPU on SwiftShader);
 * - a reload resumes the autosaved experiment (same config, step count ≥ the saved one);
 * - a corrupted autosave is discarded with a message and the page starts from the defaults.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launch, serveDist, watchErrors } from "./harness.ts";

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

async function open(ctx: BrowserContext, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await waitRunning(page);
  return { page, errors };
}

async function waitRunning(page: Page, timeout = 180_000): Promise<void> {
  await page.waitForSelector("body[data-state=running], body[data-state=error]", { timeout });
  assert.equal(await page.getAttribute("body", "data-state"), "running", `page reported: ${await page.textContent("#status")}`);
}

async function stepCount(page: Page): Promise<number> {
  return Number(await page.getAttribute("#step-count", "data-step"));
}

async function waitSteps(page: Page, atLeast: number, timeout = 180_000): Promise<void> {
  await page.waitForFunction((n) => Number(document.getElementById("step-count")!.dataset.step) >= n, atLeast, { timeout });
}

async function notice(page: Page): Promise<string> {
  return (await page.isVisible("#notice")) ? ((await page.textContent("#notice-text")) ?? "") : "";
}

/** Change one numeric control and wait for the re-initialised run to train. */
async function setControl(page: Page, id: string, value: string): Promise<void> {
  const run = Number(await page.getAttribute("body", "data-run"));
  await page.fill(id, value);
  await page.press(id, "Enter");
  await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state !== "loading", run, { timeout: 180_000 });
}

/** Wait for an autosave of at least `atLeast` steps; returns its step count. */
async function waitAutosave(page: Page, atLeast: number): Promise<number> {
  await page.waitForFunction((n) => Number(document.body.dataset.autosavedStep ?? -1) >= n, atLeast, { timeout: 180_000 });
  return Number(await page.getAttribute("body", "data-autosaved-step"));
}

describe("reliability (CPU)", () => {
  test("an injected NaN fault pauses with a message; a changed setting resumes from the last good weights", async () => {
    const ctx = await browser.newContext();
    const { page, errors } = await open(ctx, `${server.url}?debug`);
    await waitSteps(page, 30);
    await page.evaluate(() => (window as unknown as { rfmDebug: { injectFault(k: string): Promise<void> } }).rfmDebug.injectFault("nan-q"));
    await page.waitForSelector("body[data-fault]", { timeout: 120_000 });
    assert.equal(await page.getAttribute("body", "data-fault"), "nan-q");
    assert.equal(await page.getAttribute("body", "data-state"), "paused");
    const msg = await notice(page);
    assert.match(msg, /Training paused itself: the critic's Q values became NaN at step \d+/);
    assert.match(msg, /last good weights \(step \d+\) are restored/);
    const faultStep = await stepCount(page);
    // Fix a setting: the run restarts from the last good weights and step count, and trains.
    await setControl(page, "#cfg-criticLr", "0.0005");
    await waitRunning(page);
    assert.match(await notice(page), /Going on from the last good weights \(step [\d,]+\) with the new setting/);
    assert.ok((await stepCount(page)) >= faultStep, `step ${await stepCount(page)} < ${faultStep}`);
    await waitSteps(page, faultStep + 5);
    assert.equal(await page.getAttribute("body", "data-fault"), null);
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("a lost device moves training to the CPU and it continues from the last snapshot", async () => {
    const ctx = await browser.newContext();
    const { page, errors } = await open(ctx, `${server.url}?debug`);
    await waitSteps(page, 30);
    await page.evaluate(() => (window as unknown as { rfmDebug: { injectFault(k: string): Promise<void> } }).rfmDebug.injectFault("device-lost"));
    await page.waitForSelector("body[data-fallback]", { timeout: 120_000 });
    const from = Number(await page.getAttribute("body", "data-fallback"));
    assert.ok(from >= 30, `continued from step ${from}`);
    assert.match(await notice(page), /device was lost; the experiment can go on from step \d+ on the CPU\. Training goes on on the CPU from step/);
    assert.equal(await page.getAttribute("#backend", "data-kind"), "cpu");
    assert.equal(await page.inputValue("#backend-choice"), "cpu");
    await waitSteps(page, from + 10);
    assert.equal(await page.getAttribute("body", "data-state"), "running");
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("a reload resumes the autosaved experiment (same config, step count at least the saved one)", async () => {
    const ctx = await browser.newContext();
    const { page, errors } = await open(ctx, server.url);
    await setControl(page, "#cfg-seed", "7");
    await waitRunning(page);
    const saved = await waitAutosave(page, 20);
    // A fresh load of the bare address (no link): the autosave decides what runs.
    await page.goto("about:blank");
    await page.goto(server.url);
    await waitRunning(page);
    assert.equal(await page.inputValue("#cfg-seed"), "7");
    assert.ok((await stepCount(page)) >= saved, `resumed at ${await stepCount(page)}, saved ${saved}`);
    assert.match(await notice(page), /Resumed your autosaved experiment at step [\d,]+/);
    // …and a plain reload (the link in the address bar is the same experiment) resumes too.
    const again = await waitAutosave(page, saved + 1);
    await page.reload();
    await waitRunning(page);
    assert.equal(await page.inputValue("#cfg-seed"), "7");
    assert.ok((await stepCount(page)) >= again);
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("a corrupted autosave is discarded with a message; the page starts from the defaults", async () => {
    const ctx = await browser.newContext();
    const { page, errors } = await open(ctx, server.url);
    const defaultSeed = await page.inputValue("#cfg-seed");
    await setControl(page, "#cfg-seed", "7");
    await waitRunning(page);
    await waitAutosave(page, 1);
    for (const corrupt of ["step", "garbage"] as const) {
      // Pause (no more autosaves), damage the stored record in place, then load the bare address.
      await page.click("#play");
      await page.waitForSelector("body[data-state=paused]");
      await page.evaluate(async (how) => {
        const db = await new Promise<IDBDatabase>((res, rej) => {
          const r = indexedDB.open("rfm-playground", 1);
          r.onupgradeneeded = () => r.result.createObjectStore("autosave");
          r.onsuccess = () => res(r.result);
          r.onerror = () => rej(r.error);
        });
        // (No helper functions in here: the test runner's bundler would name them.)
        const rec = await new Promise<Record<string, unknown>>((res) => {
          const g = db.transaction("autosave", "readwrite").objectStore("autosave").get("current");
          g.onsuccess = () => res(g.result as Record<string, unknown>);
        });
        const bad = how === "step" ? { ...rec, step: Number(rec.step) + 1 } : "not a saved experiment";
        await new Promise<void>((res) => {
          const p = db.transaction("autosave", "readwrite").objectStore("autosave").put(bad, "current");
          p.onsuccess = () => res();
        });
        db.close();
      }, corrupt);
      await page.goto(server.url);
      await waitRunning(page);
      const msg = await notice(page);
      assert.match(msg, /autosaved experiment was damaged \((its checksum does not match its content|it is not a saved experiment)\) and has been discarded; starting from the default settings/, corrupt);
      assert.equal(await page.inputValue("#cfg-seed"), defaultSeed, corrupt);
      if (corrupt === "step") {
        // Make the next round's record again a valid one with seed 7.
        await setControl(page, "#cfg-seed", "7");
        await waitRunning(page);
        await waitAutosave(page, 1);
      }
    }
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});

describe("reliability (WebGPU, SwiftShader)", () => {
  let gpuBrowser: Browser;
  before(async () => {
    gpuBrowser = await launch({ webgpu: true });
  });
  after(async () => {
    await gpuBrowser?.close();
  });

  test("a lost WebGPU device moves training to the CPU from the last snapshot", async () => {
    const ctx = await gpuBrowser.newContext();
    // WebGPU chosen: `auto` would train on the CPU over SwiftShader. SwiftShader's first
    // requests take longer than the 8 s watchdog: only the worker's heartbeat keeps it quiet.
    const { page, errors } = await open(ctx, `${server.url}?debug&backend=webgpu&watchdog=8000`);
    assert.equal(await page.getAttribute("#backend", "data-kind"), "webgpu", (await page.textContent("#backend")) ?? "");
    await waitSteps(page, 5);
    await page.evaluate(() => (window as unknown as { rfmDebug: { injectFault(k: string): Promise<void> } }).rfmDebug.injectFault("device-lost"));
    await page.waitForSelector("body[data-fallback]", { timeout: 300_000 });
    const from = Number(await page.getAttribute("body", "data-fallback"));
    assert.ok(from >= 5, `continued from step ${from}`);
    assert.match(await notice(page), /device was lost.*Training goes on on the CPU from step/);
    assert.equal(await page.getAttribute("#backend", "data-kind"), "cpu");
    await waitSteps(page, from + 10);
    assert.equal(await page.getAttribute("body", "data-worker-restarts"), null, "the watchdog restarted a live worker");
    assert.equal(await page.getAttribute("body", "data-state"), "running");
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});
