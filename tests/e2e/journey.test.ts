/**
 * The user journey's rough edges, end to end (headless Chromium, CPU backend; the last one on
 * WebGPU):
 *
 * - switching the mode brings that mode's defaults (all but the seed) and says so;
 * - loading a weights file opens its experiment at its step count, with the curves afresh (no two runs on one curve);
 * - the greedy-evaluation curve and the CSV's evalReturn column fill in as the core evaluates;
 * - a training worker that dies mid-run is noticed, and training goes on from the autosave;
 * - several seeds at once: the other seeds' faint curves are drawn, the density shows any seed
 *   or all of them pooled, and the CSV says which seed each point is of;
 * - several seeds on WebGPU (SwiftShader here), whose updates run in the same kernels: each
 *   seed trains on its own (its own losses), every seed's curve is drawn.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { launch, screenshot, serveDist, watchErrors } from "./harness.ts";

/** By this many env steps the core has evaluated the greedy policy at least once. */
const EVAL_BY_STEP = 1000;

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

async function waitState(page: Page, states: string[], timeout = 180_000): Promise<string> {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state ?? "") || document.body.dataset.state === "error", states, { timeout });
  const st = (await page.getAttribute("body", "data-state")) ?? "";
  assert.ok(states.includes(st), `page reported: ${await page.textContent("#status")}`);
  return st;
}

const stepOf = (page: Page) => page.evaluate(() => Number(document.getElementById("step-count")!.dataset.step));

async function waitSteps(page: Page, atLeast: number, timeout = 240_000): Promise<void> {
  await page.waitForFunction((n) => Number(document.getElementById("step-count")!.dataset.step) >= n, atLeast, { timeout });
}

/** Every config control's value, by config key. */
async function controlValues(page: Page): Promise<Record<string, string>> {
  return page.$$eval("#controls input[id^=cfg-], #controls select[id^=cfg-]", (els) =>
    Object.fromEntries(els.filter((e) => e.id !== "cfg-eta").map((e) => [e.id.slice(4), (e as HTMLInputElement).value])),
  );
}

/** The metrics CSV the page exports, parsed (header → column). */
async function exportCsv(page: Page): Promise<Record<string, string>[]> {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
  const text = readFileSync((await dl.path())!, "utf8").trim().split("\n");
  const head = text[0].split(",");
  return text.slice(1).map((line) => Object.fromEntries(line.split(",").map((v, i) => [head[i], v])));
}

/** Pixels of canvas `id` that differ from its most common colour (its background). */
const ink = (page: Page, id: string) =>
  page.evaluate((id) => {
    const c = document.getElementById(id) as HTMLCanvasElement;
    const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    const counts = new Map<number, number>();
    for (let i = 0; i < d.length; i += 4) {
      const v = ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0;
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    return d.length / 4 - Math.max(...counts.values());
  }, id);

/** A hash of canvas `id`'s pixels. */
const pixelHash = (page: Page, id: string) =>
  page.evaluate((id) => {
    const c = document.getElementById(id) as HTMLCanvasElement;
    const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619) >>> 0;
    return h;
  }, id);

/** Set a config control and wait for the rebuilt (paused) experiment. */
async function setField(page: Page, id: string, value: string): Promise<void> {
  const run = Number(await page.getAttribute("body", "data-run"));
  await page.fill(id, value);
  await page.press(id, "Enter");
  await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "paused", run, { timeout: 120_000 });
}

/** Play until the spec's step budget stops the run. */
async function playToBudget(page: Page): Promise<void> {
  await page.selectOption("#speed", "100");
  await page.click("#play");
  await page.waitForFunction(() => document.body.dataset.finished !== undefined, null, { timeout: 300_000 });
}

describe("journey (CPU)", () => {
  test("four seeds at once: faint curves of the other seeds, the density of any seed or all pooled, the seed of every CSV row", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.url}?paused`);
    await waitState(page, ["paused"]);
    await page.click("#advanced-settings > summary");
    await setField(page, "#cfg-steps", "400");
    // One seed: no picker, and the loss chart's ink after 400 steps is the yardstick.
    assert.equal(await page.isHidden("#density-seed"), true);
    await playToBudget(page);
    const oneSeedInk = await ink(page, "curve-losses");
    assert.equal(await page.getAttribute("#curve-losses", "data-seed-lines"), "0");

    await setField(page, "#cfg-seeds", "4");
    const options = await page.$$eval("#density-seed option", (os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent]));
    assert.deepEqual(options, [
      ["0", "seed 0"],
      ["1", "seed 1"],
      ["2", "seed 2"],
      ["3", "seed 3"],
      ["all", "all 4 seeds (pooled)"],
    ]);
    await playToBudget(page);
    assert.equal(await stepOf(page), 400, "every seed stops at the budget; the count is each seed's");
    // Three faint lines beside seed 0's: more ink on the same chart after the same steps.
    assert.equal(await page.getAttribute("#curve-losses", "data-seed-lines"), "3");
    assert.equal(await page.getAttribute("#curve-returns", "data-seed-lines"), "3");
    const fourSeedInk = await ink(page, "curve-losses");
    assert.ok(fourSeedInk > 1.3 * oneSeedInk, `loss chart ink: 1 seed ${oneSeedInk} px, 4 seeds ${fourSeedInk} px`);

    // The density: seed 0, then every seed pooled, then seed 2: three different pictures.
    await page.waitForFunction(() => document.getElementById("density-maps")!.dataset.seed === "0");
    const seed0 = await pixelHash(page, "density-policy");
    await page.selectOption("#density-seed", "all");
    await page.waitForFunction(() => document.getElementById("density-maps")!.dataset.seed === "all", null, { timeout: 60_000 });
    await page.waitForTimeout(200); // the next animation frame paints it
    const bySeed = JSON.parse((await page.getAttribute("#kl-by-seed", "data-kl-by-seed")) ?? "[]") as number[];
    assert.equal(bySeed.length, 4);
    assert.ok(bySeed.every((k) => Number.isFinite(k) && k >= 0), JSON.stringify(bySeed));
    assert.match((await page.textContent("#kl-by-seed")) ?? "", /^pooled over 4 seeds; each seed's own KL /);
    const pooled = await pixelHash(page, "density-policy");
    assert.notEqual(pooled, seed0, "the pooled density is drawn");
    await page.selectOption("#density-seed", "2");
    await page.waitForFunction(() => document.getElementById("density-maps")!.dataset.seed === "2", null, { timeout: 60_000 });
    await page.waitForTimeout(200);
    assert.equal(await page.textContent("#kl-by-seed"), "");
    const seed2 = await pixelHash(page, "density-policy");
    assert.ok(seed2 !== seed0 && seed2 !== pooled, "seed 2's own density is drawn");
    await screenshot(page, "journey-four-seeds");

    const rows = await exportCsv(page);
    const seeds = new Set(rows.map((r) => r.seedIndex));
    assert.deepEqual([...seeds].sort(), ["0", "1", "2", "3"]);
    for (const s of seeds) assert.ok(rows.some((r) => r.seedIndex === s && r.criticLoss !== ""), `seed index ${s} has losses`);
    assert.deepEqual(errors, []);
    await ctx.close();
  });


  test("switching to sampler mode brings the sampler's defaults, keeps the seed and says so", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.url}?paused`);
    await waitState(page, ["paused"]);
    const rl = await controlValues(page);
    let run = Number(await page.getAttribute("body", "data-run"));
    await page.fill("#cfg-seed", "5");
    await page.press("#cfg-seed", "Enter");
    await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "paused", run);
    run = Number(await page.getAttribute("body", "data-run"));
    await page.selectOption("#cfg-mode", "sampler");
    await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "paused", run);
    assert.equal(await page.isVisible("#mode-note"), true);
    assert.match((await page.textContent("#mode-note")) ?? "", /Switched to sampler mode: its defaults are loaded for every setting but the seed/);
    const sampler = await controlValues(page);
    assert.equal(sampler.mode, "sampler");
    assert.equal(sampler.seed, "5", "the seed is kept");
    // The issue: sampler mode kept RL's λ = 0.1. Its own default is another temperature.
    assert.notEqual(sampler.lambda, rl.lambda, `sampler mode still has RL's λ = ${rl.lambda}`);
    // Back to RL: RL's defaults again (but the seed).
    run = Number(await page.getAttribute("body", "data-run"));
    await page.selectOption("#cfg-mode", "rl");
    await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "paused", run);
    assert.deepEqual(await controlValues(page), { ...rl, seed: "5" });
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("loading weights opens the checkpoint at its step count, with the curves afresh", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    await waitState(page, ["running"]);
    await page.selectOption("#speed", "50");
    await waitSteps(page, 300);
    await page.click("#play");
    await waitState(page, ["paused"]);
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#save-weights")]);
    const file = (await dl.path())!;
    const before = await stepOf(page);
    assert.ok(before >= 300);
    await page.setInputFiles("#load-weights", file);
    await page.waitForFunction(() => /^opened .* at step \d+/.test(document.getElementById("status")!.textContent ?? ""));
    assert.equal(await stepOf(page), before, "the experiment goes on from the checkpoint's step count");
    assert.deepEqual(await exportCsv(page), [], "the curves start afresh");
    // Training from the loaded weights: the curves hold this run only, in step order.
    await page.click("#play");
    await waitSteps(page, 120);
    await page.click("#play");
    await waitState(page, ["paused"]);
    const rows = await exportCsv(page);
    const steps = rows.map((r) => Number(r.step));
    const now = await stepOf(page);
    assert.ok(
      steps.length > 0 && steps.every((s, i) => s > before && s <= now && (i === 0 || s >= steps[i - 1])),
      `curve steps ${steps.join(" ")} (step count ${now}, opened at ${before})`,
    );
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("a step budget (Steps to run) stops training at exactly that step", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.url}?paused`);
    await waitState(page, ["paused"]);
    let run = Number(await page.getAttribute("body", "data-run"));
    await page.selectOption("#cfg-mode", "sampler");
    await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "paused", run);
    run = Number(await page.getAttribute("body", "data-run"));
    await page.click("#advanced-settings > summary");
    await page.fill("#cfg-steps", "60");
    await page.press("#cfg-steps", "Enter");
    await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "paused", run);
    await page.selectOption("#speed", "50");
    await page.click("#play");
    await page.waitForFunction(() => document.body.dataset.finished !== undefined, null, { timeout: 120_000 });
    assert.equal(await stepOf(page), 60);
    assert.equal(await page.getAttribute("body", "data-state"), "paused");
    assert.match((await page.textContent("#status")) ?? "", /finished/);
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("the greedy-evaluation curve and the CSV's evalReturn column fill in", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    await waitState(page, ["running"]);
    // Before any evaluation the chart says so (its legend; the count is on the canvas).
    const points0 = JSON.parse((await page.getAttribute("#curve-returns", "data-points")) ?? "{}") as Record<string, number>;
    assert.equal(points0.evalReturn ?? 0, 0);
    await page.selectOption("#speed", "100");
    // The core evaluates the greedy policy periodically (RL: every few hundred env steps): by
    // EVAL_BY_STEP env steps there must be an evaluation on the curve.
    await page.waitForFunction(
      (n) =>
        (JSON.parse(document.getElementById("curve-returns")!.dataset.points ?? "{}") as Record<string, number>).evalReturn > 0 ||
        Number(document.getElementById("step-count")!.dataset.step) >= n,
      EVAL_BY_STEP,
      { timeout: 300_000, polling: 500 },
    );
    const points = JSON.parse((await page.getAttribute("#curve-returns", "data-points")) ?? "{}") as Record<string, number>;
    assert.ok(points.evalReturn > 0, `no greedy evaluation on the curve after ${await stepOf(page)} env steps`);
    await page.click("#play");
    await waitState(page, ["paused"]);
    const rows = await exportCsv(page);
    const evals = rows.filter((r) => r.evalReturn !== "");
    assert.ok(evals.length > 0, "the CSV has evalReturn values");
    assert.ok(evals.every((r) => Number.isFinite(Number(r.evalReturn))), JSON.stringify(evals.slice(0, 3)));
    await screenshot(page, "journey-eval-curve");
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("a training worker that keeps dying before it trains a step is not restarted forever", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    // Every worker is stuck in "init" (a debug hook), so each one dies of the 2 s watchdog before
    // its first step. The page restarts it three times, then stops and says so.
    await page.goto(`${server.url}?debug&hangInit&watchdog=2000`);
    await waitState(page, ["error"]);
    assert.equal(await page.getAttribute("body", "data-worker-restarts"), "3");
    assert.equal(await stepOf(page), 0);
    assert.match((await page.textContent("#status")) ?? "", /the training worker keeps stopping/);
    assert.match((await page.textContent("#notice-text")) ?? "", /stopped 4 times in a row before it could train a step .*not restarted again: pick the CPU backend/);
    // Still 3 a while later: nothing restarts it behind the message.
    await page.waitForTimeout(3000);
    assert.equal(await page.getAttribute("body", "data-worker-restarts"), "3");
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test("a training worker that dies mid-run is noticed and training goes on from the autosave", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    // A short watchdog so the test does not wait a minute for the silence to count.
    await page.goto(`${server.url}?debug&watchdog=4000`);
    await waitState(page, ["running"]);
    await page.waitForFunction(() => Number(document.body.dataset.autosavedStep ?? -1) >= 1, null, { timeout: 120_000 });
    const saved = Number(await page.getAttribute("body", "data-autosaved-step"));
    await page.evaluate(() => (window as unknown as { rfmDebug: { terminateWorker(): void } }).rfmDebug.terminateWorker());
    await page.waitForSelector("body[data-worker-restarts='1']", { timeout: 30_000 });
    await waitState(page, ["running"]);
    const msg = (await page.textContent("#notice-text")) ?? "";
    assert.match(msg, /The training worker stopped \(the training worker stopped responding/);
    assert.match(msg, /goes on from its last autosave \(step [\d,]+\)/);
    assert.ok((await stepOf(page)) >= saved, `went on at ${await stepOf(page)}, autosave at ${saved}`);
    const s0 = await stepOf(page);
    await waitSteps(page, s0 + 10);
    // The page's own warning about the lost worker is a console warning, not an error.
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});

describe("journey (WebGPU)", () => {
  test("two seeds on WebGPU: updated in the same kernels, each its own run, both seeds' curves drawn", async () => {
    const gpu = await launch({ webgpu: true });
    try {
      const page = await gpu.newPage();
      const errors = watchErrors(page);
      await page.goto(`${server.url}?backend=webgpu&paused`);
      await waitState(page, ["paused"], 300_000);
      assert.equal(await page.getAttribute("#backend", "data-kind"), "webgpu", `backend: ${await page.textContent("#backend")}`);
      await page.click("#advanced-settings > summary");
      // One batch of warm-up, then a few updates (each about a second per seed on SwiftShader).
      await setField(page, "#cfg-warmup", "128");
      await setField(page, "#cfg-steps", "136");
      await setField(page, "#cfg-seeds", "2");
      await playToBudget(page);
      assert.equal(await stepOf(page), 136, "both seeds stop at the budget");
      assert.equal(await page.getAttribute("#curve-losses", "data-seed-lines"), "1");
      assert.ok((await ink(page, "curve-losses")) > 0, "the loss chart is drawn");
      const rows = await exportCsv(page);
      const losses = (s: string) => rows.filter((r) => r.seedIndex === s && r.criticLoss !== "").map((r) => Number(r.criticLoss));
      const [l0, l1] = [losses("0"), losses("1")];
      assert.ok(l0.length >= 5 && l1.length >= 5, `updates per seed: ${l0.length}, ${l1.length}`);
      assert.ok([...l0, ...l1].every(Number.isFinite), JSON.stringify([l0, l1]));
      // Independent runs (seeds 0 and 1, their own batches and draws) in the same kernels.
      assert.notDeepEqual(l0, l1, "each seed has its own losses");
      await screenshot(page, "journey-webgpu-two-seeds");
      assert.deepEqual(errors, []);
    } finally {
      await gpu.close();
    }
  });
});
