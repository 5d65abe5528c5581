/**
 * The playground end to end, against the built site in headless Chromium.
 *
 * CPU fallback (WebGPU disabled): every class preset trains a fixed number of steps; the
 * sampler lessons' density-panel KL stays below 0.8 × its first value (the median of the last
 * five readings), and the RL lesson's stays well below the KL of uniform actions against the
 * same (moving) target; a share link round-trips the config; malformed, tampered and
 * future-version links fall back to the defaults with a message; invalid values are refused
 * inline; keyboard shortcuts, presenter mode and phone width work. WebGPU (SwiftShader, ~100×
 * slower for tiny nets): `auto` trains on the CPU and says why; WebGPU, when chosen, trains a
 * few steps without errors.
 *
 * Both runs record time-to-first-frame and training steps per second (one JSON line each, and
 * tests/artifacts/browser-bench.json).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { artifactsDir, distDir, launch, screenshot, serveDist, watchErrors, watchWarnings } from "./harness.ts";

let server: Awaited<ReturnType<typeof serveDist>>;
const bench: Record<string, unknown>[] = [];
/** A share link to lesson 2 (sampler mode), made by the CPU run and reused by the WebGPU run. */
let samplerLink = "";

/** Open the page, pick a lesson and return the share link the page writes for it. */
async function lessonLink(browser: Browser, preset: string): Promise<string> {
  const page = await browser.newPage();
  await page.goto(server.url);
  await page.waitForSelector("button[data-preset]:not([disabled])");
  await page.waitForSelector("body[data-state=running], body[data-state=paused], body[data-state=error]", { timeout: 300_000 });
  const before = await page.evaluate(() => location.hash);
  await page.click(`button[data-preset=${preset}]`);
  // The fragment is rewritten after the preset is applied (an async encode in the worker): wait
  // for the new one, not just the new controls.
  await page.waitForFunction(
    (h0) => (document.getElementById("cfg-mode") as HTMLSelectElement).value === "sampler" && /#v?\d/.test(location.hash) && location.hash !== h0,
    before,
    { timeout: 60_000 },
  );
  await page.waitForSelector("body[data-state=running]", { timeout: 300_000 });
  const link = page.url();
  await page.close();
  return link;
}

before(async () => {
  server = await serveDist();
});
after(async () => {
  await server?.close();
  if (bench.length) {
    mkdirSync(artifactsDir, { recursive: true });
    writeFileSync(path.join(artifactsDir, "browser-bench.json"), JSON.stringify(bench, null, 2) + "\n");
  }
});

/** Every config control's value, by id (the page's view of the config). */
async function controlValues(page: Page): Promise<Record<string, string>> {
  return page.$$eval("#controls input[id^=cfg-], #controls select[id^=cfg-]", (els) =>
    Object.fromEntries(els.map((e) => [e.id, (e as HTMLInputElement).value])),
  );
}

async function waitRunning(page: Page, timeout = 120_000): Promise<void> {
  await page.waitForSelector("body[data-state=running], body[data-state=error]", { timeout });
  const state = await page.getAttribute("body", "data-state");
  assert.equal(state, "running", `page reported: ${await page.textContent("#status")}`);
}

async function stepCount(page: Page): Promise<number> {
  return Number(await page.getAttribute("#step-count", "data-step"));
}

/** One density-panel reading: the step it was taken at, its KL and the uniform yardstick's. */
interface KlReading {
  step: number;
  kl: number;
  klUniform: number;
}

/**
 * Density readings at fixed step counts: for each checkpoint, train (Play) until the step
 * counter reaches it, pause, and take one step, which refreshes every view; then read the KL.
 * (A reading lands at or just past its checkpoint: the batch in flight at Pause still lands.)
 * Counts steps, not seconds (the time limit only guards against a page that stopped training),
 * and always gives one reading per checkpoint.
 */
async function klAt(page: Page, checkpoints: number[], timeoutMs: number): Promise<KlReading[]> {
  const out: KlReading[] = [];
  for (const cp of checkpoints) {
    if ((await page.getAttribute("body", "data-state")) === "paused") await page.click("#play");
    await page.waitForFunction((n) => Number(document.getElementById("step-count")!.dataset.step) >= n, cp, { timeout: timeoutMs, polling: 250 });
    await page.click("#play");
    await page.waitForSelector("body[data-state=paused]");
    const before = await stepCount(page);
    await page.click("#step");
    await page.waitForFunction((n) => Number(document.body.dataset.refreshedStep ?? -1) > n, before, { timeout: 120_000 });
    const r = await page.evaluate(() => ({
      step: Number(document.getElementById("step-count")!.dataset.step),
      kl: Number(document.getElementById("kl")!.dataset.kl ?? Number.NaN),
      klUniform: Number(document.getElementById("kl-uniform")!.dataset.klUniform ?? Number.NaN),
    }));
    out.push(r);
  }
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Time to first frame (from navigation) and steps/s measured over `windowMs` of training. */
async function measure(
  page: Page,
  windowMs: number,
): Promise<{ firstFrameMs: number; startup: Record<string, number>; stepsPerSec: number; rateShownPerSec: number }> {
  await page.waitForSelector("body[data-first-frame-ms]", { timeout: 300_000 });
  const firstFrameMs = Number(await page.getAttribute("body", "data-first-frame-ms"));
  // Where the time to the first frame went (ms since navigation; app.ts `startupMark`).
  const startup = JSON.parse((await page.getAttribute("body", "data-startup")) ?? "{}") as Record<string, number>;
  const s0 = await stepCount(page);
  const t0 = Date.now();
  await page.waitForTimeout(windowMs);
  await page.waitForFunction((s) => Number(document.getElementById("step-count")!.dataset.step) > s, s0, { timeout: 300_000 });
  const s1 = await stepCount(page);
  const stepsPerSec = ((s1 - s0) * 1000) / (Date.now() - t0);
  const rateShownPerSec = Number(await page.getAttribute("#rate", "data-rate"));
  return { firstFrameMs, startup, stepsPerSec, rateShownPerSec };
}

/** Record the page's main-thread long tasks (> 50 ms) from navigation on (read by `longTasks`). */
async function watchLongTasks(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { __longTasks: { start: number; ms: number }[] };
    w.__longTasks = [];
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, ms: e.duration });
      }).observe({ type: "longtask", buffered: true });
    } catch {
      // No Long Tasks API: nothing recorded.
    }
  });
}

/** Long tasks since `sinceMs` (page time): count, total and longest, in ms. */
async function longTasks(page: Page, sinceMs = 0): Promise<{ count: number; totalMs: number; maxMs: number; windowMs: number }> {
  return page.evaluate((since) => {
    const all = (window as unknown as { __longTasks?: { start: number; ms: number }[] }).__longTasks ?? [];
    const xs = all.filter((t) => t.start >= since);
    return {
      count: xs.length,
      totalMs: Math.round(xs.reduce((a, t) => a + t.ms, 0)),
      maxMs: Math.round(xs.reduce((a, t) => Math.max(a, t.ms), 0)),
      windowMs: Math.round(performance.now() - since),
    };
  }, sinceMs);
}

/** The wasm files `page` requests, by file name, in order (filled in as they are fetched). */
function wasmRequests(page: Page): string[] {
  const names: string[] = [];
  page.on("request", (r) => {
    const name = new URL(r.url()).pathname.split("/").pop() ?? "";
    if (name.endsWith(".wasm")) names.push(name);
  });
  return names;
}

/**
 * Open the `?bench` page and return its JSON rows (throughput per backend and config, see
 * web/src/bench.ts). Fails when the page reports an error.
 */
async function inPageBench(browser: Browser, query: string, timeout: number): Promise<Record<string, unknown>[]> {
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}?${query}`);
  await page.waitForSelector("body[data-bench=done], body[data-bench=error]", { timeout });
  const out = JSON.parse((await page.textContent("#bench-result")) ?? "{}") as { rows?: Record<string, unknown>[]; loadMs?: number };
  assert.equal(await page.getAttribute("body", "data-bench"), "done", JSON.stringify(out));
  assert.deepEqual(errors, []);
  await page.close();
  const rows = out.rows ?? [];
  assert.ok(rows.length > 0, "the benchmark produced rows");
  return rows.map((r) => ({ kind: "throughput", loadMs: out.loadMs, ...r }));
}

/** Assert that `row` has a positive rate for each figure in `keys`. */
function assertRates(row: Record<string, unknown>, keys: string[]): void {
  for (const key of keys) {
    const rate = row[key] as { perS: number; items: number } | undefined;
    assert.ok(rate && rate.perS > 0 && rate.items > 0, `${key} in ${JSON.stringify(row)}`);
  }
}

describe("playground (CPU fallback)", () => {
  let browser: Browser;
  before(async () => {
    browser = await launch({ webgpu: false });
  });
  after(async () => {
    await browser?.close();
  });

  test("without COOP/COEP headers the page's service worker isolates it (one reload) and the threaded module loads", async () => {
    const plain = await serveDist({ isolated: false });
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const errors = watchErrors(page);
      // Console messages of the module's pool threads reach the page too: each thread once
      // warned of wasm-bindgen's deprecated init call (web/build.mjs, patchPoolWorker).
      const warnings = watchWarnings(page);
      await page.goto(`${plain.url}#`);
      await waitRunning(page);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      assert.equal(await page.getAttribute("body", "data-module"), "threads");
      assert.match((await page.getAttribute("#backend", "title")) ?? "", /relaxed SIMD, \d+ threads/);
      // Isolated by the service worker, after the one reload it asks for.
      assert.equal(await page.evaluate(() => navigator.serviceWorker.controller !== null), true, "no service worker controls the page");
      assert.equal(await page.evaluate(() => (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).type), "reload");
      assert.deepEqual(errors, []);
      assert.deepEqual(warnings, []);
    } finally {
      await ctx.close();
      await plain.close();
    }
  });

  test("?module=cpu and ?module=relaxed run the other CPU modules in the page", async () => {
    for (const module of ["cpu", "relaxed"]) {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      const fetched = wasmRequests(page);
      await page.goto(`${server.url}?module=${module}`);
      await waitRunning(page);
      assert.equal(await page.getAttribute("body", "data-module"), module);
      assert.deepEqual(fetched, [module === "cpu" ? "rfm-playground_bg.wasm" : "rfm-playground-relaxed_bg.wasm"]);
      const before = Number(await page.getAttribute("#step-count", "data-step"));
      await page.waitForFunction((n) => Number(document.getElementById("step-count")!.dataset.step) >= n + 50, before, { timeout: 120_000 });
      assert.deepEqual(errors, []);
      await page.close();
    }
  });

  test("the default experiment starts by itself on the CPU, and the badge says why in plain words", async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const errors = watchErrors(page);
    await watchLongTasks(page);
    await page.goto(server.url);
    await waitRunning(page);
    assert.equal(await page.getAttribute("#backend", "data-kind"), "cpu");
    // No WebGPU in this browser: plain words on the badge, no Rust error text.
    assert.equal(await page.textContent("#backend"), "CPU — This browser has no WebGPU; training on the CPU");
    assert.match((await page.getAttribute("#backend", "title")) ?? "", /flex/);
    const startup = await longTasks(page);
    const t0 = await page.evaluate(() => performance.now());
    const m = await measure(page, 3000);
    const training = await longTasks(page, t0);
    // The start-up milestones are all there, in order, and end at the first frame.
    const order = ["wasmReady", "sessionReady", "firstDensity", "firstFrame"].map((k) => m.startup[k]);
    assert.ok(order.every((v, i) => Number.isFinite(v) && (i === 0 || v >= order[i - 1])), `start-up marks ${JSON.stringify(m.startup)}`);
    assert.equal(m.startup.firstFrame, m.firstFrameMs);
    const row = { backend: "cpu", adapter: (await page.textContent("#backend")) ?? "", config: "defaults (RL multigoal, RFM)", ...m, longTasks: { startup, training } };
    bench.push(row);
    console.log(JSON.stringify(row));
    await screenshot(page, "playground-cpu-default");
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("a lesson's share link opens, trains on the CPU and reports timings", async () => {
    samplerLink = await lessonLink(browser, "estimators");
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const errors = watchErrors(page);
    await page.goto(samplerLink);
    await waitRunning(page);
    assert.equal(await page.inputValue("#cfg-mode"), "sampler", "the link opens the lesson's experiment");
    assert.equal(await page.getAttribute("#backend", "data-kind"), "cpu");
    assert.match((await page.textContent("#backend")) ?? "", /CPU/);
    const m = await measure(page, 4000);
    assert.ok(m.stepsPerSec > 0, `no training progress: ${JSON.stringify(m)}`);
    const row = { backend: "cpu", adapter: (await page.textContent("#backend")) ?? "", config: "sampler gmm8, noise estimator (lesson 2)", ...m };
    bench.push(row);
    console.log(JSON.stringify(row));
    await screenshot(page, "playground-cpu-sampler");
    assert.deepEqual(errors, []);
    await page.close();
  });

  // Steps each lesson trains before its claim is checked (RL: env steps, past the 200-step
  // warm-up; sampler: updates), and the speed it trains at. The claim is judged on the last
  // five readings, taken every 100 steps up to `steps`.
  const LESSON_STEPS: Record<string, { steps: number; speed: string }> = {
    multimodal: { steps: 900, speed: "100" },
    estimators: { steps: 600, speed: "50" },
    temperature: { steps: 600, speed: "50" },
  };
  const LAST_FIVE = (steps: number) => [4, 3, 2, 1, 0].map((k) => steps - 100 * k);
  for (const preset of ["multimodal", "estimators", "temperature"]) {
    const rl = preset === "multimodal";
    const { steps, speed } = LESSON_STEPS[preset];
    const claim = rl ? "its KL stays well below uniform actions' KL" : "its KL stays below its initial value";
    test(`preset "${preset}" trains ${steps} steps and ${claim}`, async () => {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      const errors = watchErrors(page);
      await page.goto(server.url);
      await waitRunning(page);
      await page.selectOption("#speed", speed);
      const run = Number(await page.getAttribute("body", "data-run"));
      await page.click(`button[data-preset=${preset}]`);
      assert.equal(await page.isVisible("#preset-text"), true);
      assert.ok(((await page.textContent("#preset-text")) ?? "").length > 200, "the lesson's paragraph is shown");
      // The preset re-initialises: wait for the fresh run's first density.
      await page.waitForFunction(
        (r) => (Number(document.body.dataset.run) > r && document.getElementById("kl")!.dataset.klInitial !== undefined) || document.body.dataset.state === "error",
        run,
        { timeout: 120_000 },
      );
      await waitRunning(page);
      const initial = Number(await page.getAttribute("#kl", "data-kl-initial"));
      const last = await klAt(page, LAST_FIVE(steps), 400_000);
      await screenshot(page, `playground-preset-${preset}`);
      assert.deepEqual(errors, []);
      await page.close();
      assert.ok(last.every((r) => Number.isFinite(r.kl)), `non-finite KL readings: ${JSON.stringify(last)}`);
      if (rl) {
        // RL: the target exp(Q/λ) is nearly flat before the critic has learned anything, so the
        // first KL is no yardstick; the target then sharpens to a few nats of KL from uniform.
        // The policy must follow it, and keep following it: the median of its last five KL
        // readings below 0.8 × the median KL that uniform actions have against the same targets
        // (an untrained flow scores worse than uniform; measured natively in docs/ui.md).
        const ratio = median(last.map((r) => r.kl)) / median(last.map((r) => r.klUniform));
        console.log(JSON.stringify({ preset, steps, ratio, last }));
        assert.ok(last.every((r) => r.klUniform > 0.3), `the target is still flat: ${JSON.stringify(last)}`);
        assert.ok(ratio < 0.8, `the policy does not follow the target: median KL / KL(uniform) = ${ratio.toFixed(2)} over the last five readings (${JSON.stringify(last)})`);
        return;
      }
      const m = median(last.map((r) => r.kl));
      console.log(JSON.stringify({ preset, steps, initial, median: m, last }));
      assert.ok(Number.isFinite(initial) && initial > 0, `initial KL ${initial}`);
      assert.ok(m < 0.8 * initial, `KL did not stay down: first ${initial}, median of the last five ${m} (${JSON.stringify(last)})`);
    });
  }

  test("a share link reproduces the config", async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    await waitRunning(page);
    // Each change restarts the run; wait for it before the next so the link holds all of them.
    const settle = async (change: () => Promise<void>) => {
      const run = Number(await page.getAttribute("body", "data-run"));
      await change();
      await page.waitForFunction((r) => Number(document.body.dataset.run) > r && document.body.dataset.state === "running", run, { timeout: 120_000 });
    };
    await settle(() => page.selectOption("#cfg-mode", "sampler").then(() => {}));
    await settle(() => page.selectOption("#cfg-target", "two-moons").then(() => {}));
    await settle(async () => {
      await page.fill("#cfg-k", "32");
      await page.press("#cfg-k", "Enter");
    });
    await settle(async () => {
      await page.fill("#cfg-seed", "7");
      await page.press("#cfg-seed", "Enter");
    });
    const want = await controlValues(page);
    assert.equal(want["cfg-target"], "two-moons");
    const link = page.url();
    assert.match(link, /#.+/);
    const other = await browser.newPage();
    const errors2 = watchErrors(other);
    await other.goto(link);
    await waitRunning(other);
    assert.deepEqual(await controlValues(other), want);
    assert.equal(await other.isVisible("#notice"), false);
    assert.equal(other.url(), link, "the fragment is stable");
    assert.deepEqual([...errors, ...errors2], []);
    await page.close();
    await other.close();
  });

  test("malformed, tampered and future-version links show a message and the defaults", async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(server.url);
    await waitRunning(page);
    const defaults = await controlValues(page);
    const good = new URL(page.url()).hash.slice(1);
    // One character edited in the middle of the link (inside the encoded settings).
    const mid = Math.floor(good.length / 2);
    const tampered = good.slice(0, mid) + (good[mid] === "A" ? "B" : "A") + good.slice(mid + 1);
    const future = good.replace(/^v?\d+/, (v) => (v.startsWith("v") ? "v99" : "99"));
    for (const [what, fragment] of [
      ["malformed", "%%%not-a-link"],
      ["tampered", tampered],
      ["future", future],
    ] as const) {
      const p = await browser.newPage();
      const errs = watchErrors(p);
      await p.goto(`${server.url}#${fragment}`);
      await p.waitForSelector("#notice:not([hidden])", { timeout: 60_000 });
      const text = (await p.textContent("#notice")) ?? "";
      assert.match(text, /could not be opened/, `${what}: ${text}`);
      assert.equal(await p.getAttribute("#notice", "role"), "alert");
      await waitRunning(p);
      assert.match((await p.textContent("#notice")) ?? "", /could not be opened/, "the link message stays");
      assert.deepEqual(await controlValues(p), defaults, `${what}: falls back to the defaults`);
      if (what === "malformed") await screenshot(p, "playground-bad-link");
      console.log(`${what} link: ${text.trim()}`);
      assert.deepEqual(errs, []);
      await p.close();
    }
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("invalid values are refused inline; keyboard and presenter mode work", async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const errors = watchErrors(page);
    await page.goto(samplerLink || server.url);
    await waitRunning(page);
    await page.fill("#cfg-k", "0");
    await page.press("#cfg-k", "Enter");
    await page.waitForSelector("#cfg-k[aria-invalid=true]");
    assert.equal(await page.isVisible("#cfg-k-error"), true);
    assert.match((await page.textContent("#cfg-k-error")) ?? "", /1\.\.=1000|range/);
    await page.waitForSelector("body[data-state=invalid]");
    assert.equal(await page.isDisabled("#play"), true, "no training with an invalid config");
    await page.fill("#cfg-lambda", "abc");
    await page.press("#cfg-lambda", "Enter");
    await page.waitForSelector("#cfg-lambda[aria-invalid=true]");
    await screenshot(page, "playground-invalid");
    // Fix both: training resumes.
    await page.fill("#cfg-lambda", "1");
    await page.press("#cfg-lambda", "Enter");
    await page.fill("#cfg-k", "16");
    await page.press("#cfg-k", "Enter");
    await waitRunning(page);
    assert.equal(await page.getAttribute("#cfg-k", "aria-invalid"), null);
    // Space pauses, S steps, P toggles presenter mode.
    await page.locator("body").focus();
    await page.click("h1");
    await page.keyboard.press("Space");
    await page.waitForSelector("body[data-state=paused]");
    const s0 = await stepCount(page);
    await page.keyboard.press("s");
    await page.waitForFunction((s) => Number(document.getElementById("step-count")!.dataset.step) > s, s0);
    await page.keyboard.press("p");
    assert.equal(await page.evaluate(() => document.body.classList.contains("presenter")), true);
    await page.keyboard.press("Space");
    await waitRunning(page);
    await page.waitForTimeout(1500);
    await screenshot(page, "playground-presenter");
    await page.keyboard.press("p");
    // Phone width: one column.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(800);
    const cols = await page.$eval(".layout", (e) => getComputedStyle(e).gridTemplateColumns.split(" ").length);
    assert.equal(cols, 1);
    await screenshot(page, "playground-phone");
    assert.deepEqual(errors, []);
    await page.close();
  });
});

describe("in-page benchmark (?bench)", () => {
  // Throughput of the trainer's building blocks in this browser (the figures of `rfm bench`):
  // critic + actor updates/s, greedy action selections/s, estimator targets/s, and the host
  // matrix product's GFLOP/s. Every figure runs at least one iteration, so slow backends still
  // finish; no speed is asserted.
  test("reports updates/s, actions/s, estimator targets/s and the product's GFLOP/s on the CPU", async () => {
    const browser = await launch({ webgpu: false });
    try {
      const rows = await inPageBench(browser, "bench=cpu&configs=playground,released&seconds=2&measure=updates,actions,estimator,products", 600_000);
      for (const r of rows) console.log(JSON.stringify(r));
      bench.push(...rows);
      assert.deepEqual(rows.map((r) => `${r.backend}/${r.config}`), ["cpu/playground", "cpu/released"]);
      for (const r of rows) {
        assert.deepEqual(r.errors, [], JSON.stringify(r));
        assertRates(r, ["updates", "actions", "estimatorTargets", "products"]);
      }
      // The product is the sampler's hidden layer: [batch·candidates, hidden]·[hidden, hidden].
      const shape = (r: Record<string, unknown>) => {
        const p = r.products as { m: number; k: number; n: number; gflopPerS: number };
        assert.ok(p.gflopPerS > 0, JSON.stringify(p));
        return [p.m, p.k, p.n];
      };
      assert.deepEqual(rows.map(shape), [[128 * 8, 64, 64], [256 * 32, 256, 256]]);
    } finally {
      await browser.close();
    }
  });

  test("reports the same figures on WebGPU", async () => {
    const browser = await launch({ webgpu: true });
    try {
      const rows = await inPageBench(browser, "bench=webgpu&configs=playground&seconds=2&seeds=1,2", 600_000);
      for (const r of rows) console.log(JSON.stringify(r));
      bench.push(...rows);
      assert.deepEqual(rows.map((r) => `${r.backend}/${r.config}/${r.seeds}`), ["webgpu/playground/1", "webgpu/playground/2"]);
      const [r, two] = rows;
      // Updates too: they used to fail with a NaN Q on WebGPU (WGSL's tanh overflows for the
      // posterior's large latents; nets::squash clamps its input).
      assertRates(r, ["actions", "estimatorTargets", "updates"]);
      // The WebGPU work per item, which does not depend on the machine (set-up included, so
      // upper bounds; docs/benchmarks.md): an action is the fused sampler's one dispatch and
      // one readback (the issue's goal: ≤ 5 and 1); a trainer step, the fused training steps'
      // ~30 dispatches (the goal: ≤ 30; 106 with burn's autodiff steps, 359.5 before
      // any training kernel), 2 readbacks: the action, and one at the update's end with both
      // steps' losses and the posterior, the pick and the candidates all computed on the
      // device (the issue's ≤ 1 per update; 3 while the scored candidates came back to the
      // host, 4 while the posterior's Q did, 5 while the critic's loss was read on its own).
      // A kernel falling back to burn's ops shows here.
      type Calls = Record<string, { dispatches: number; submits: number; mapAsync: number; maxInFlight: number }>;
      const calls = r.gpuCallsPerItem as Calls;
      assert.ok(calls.actions.dispatches <= 5 && calls.actions.mapAsync <= 1, JSON.stringify(calls.actions));
      assert.ok(calls.updates.dispatches <= 30 && calls.updates.mapAsync <= 2, JSON.stringify(calls.updates));
      // Two seeds stepped together (the page's "Seeds at once"): their updates run in the same
      // kernels (trainer/seam/batch.rs), so one update readback serves both (1.5 readbacks per
      // agent step: each seed's action, and half the update's) and far fewer submits per agent
      // (9.5–9.8 against 14–14.5 in the runs of docs/benchmarks.md); while one seed waits on
      // its action's readback the other's is already in flight. (Dispatches per agent are not
      // compared: over the 2–4 timed steps each seed's one-time set-up outweighs the shared
      // kernels; with more steps they fall, 29 → 15.4 at 8 seeds.)
      assertRates(two, ["updates"]);
      const twoCalls = (two.gpuCallsPerItem as Calls).updates;
      assert.equal(calls.updates.maxInFlight, 1, JSON.stringify(calls.updates));
      assert.equal(twoCalls.maxInFlight, 2, JSON.stringify(twoCalls));
      assert.ok(twoCalls.mapAsync <= 1.5, JSON.stringify(twoCalls));
      assert.ok(twoCalls.submits < 0.8 * calls.updates.submits, `${JSON.stringify(twoCalls)} vs one seed ${JSON.stringify(calls.updates)}`);
      assert.ok(twoCalls.dispatches <= 60, JSON.stringify(twoCalls));
    } finally {
      await browser.close();
    }
  });
});

describe("playground (WebGPU)", () => {
  let browser: Browser;
  before(async () => {
    browser = await launch({ webgpu: true });
  });
  after(async () => {
    await browser?.close();
  });

  test("auto picks the CPU over SwiftShader and says why; WebGPU chosen still works", async () => {
    const auto = await browser.newPage();
    const autoErrors = watchErrors(auto);
    const fetched = wasmRequests(auto);
    await auto.goto(server.url);
    await auto.waitForSelector("#backend[data-kind=cpu], #backend[data-kind=webgpu], body[data-state=error]", { timeout: 300_000 });
    assert.equal(await auto.getAttribute("#backend", "data-kind"), "cpu");
    assert.equal(await auto.textContent("#backend"), "CPU — Software WebGPU adapter (SwiftShader) found: training on the CPU, which is faster");
    await waitRunning(auto);
    // Only the small CPU module was downloaded: its threaded relaxed-SIMD build (the test server
    // sends the COOP/COEP headers `trunk serve` sends; Chromium has relaxed SIMD and threads).
    assert.equal(await auto.getAttribute("body", "data-module"), "threads");
    assert.equal(await auto.evaluate(() => crossOriginIsolated), true);
    assert.deepEqual(fetched, ["rfm-playground-threads_bg.wasm"]);
    assert.deepEqual(autoErrors, []);
    await auto.close();
  });

  test("auto on a hardware adapter measures both backends, takes the faster, and remembers it (?calibrate: SwiftShader treated as hardware)", async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const errors = watchErrors(page);
      await page.goto(`${server.url}?calibrate`);
      await page.waitForSelector("#backend[data-kind=cpu], #backend[data-kind=webgpu], body[data-state=error]", { timeout: 300_000 });
      const badge = (await page.textContent("#backend")) ?? "";
      // SwiftShader's WebGPU is far slower than the CPU modules at these sizes.
      const m = /^CPU — WebGPU ([\d.]+) upd\/s · CPU ([\d.]+) upd\/s → CPU$/.exec(badge);
      assert.ok(m, `badge: ${badge}`);
      assert.ok(Number(m[2]) > Number(m[1]), badge);
      await waitRunning(page);
      // A reload reads the remembered figures instead of measuring again.
      await page.reload();
      await page.waitForSelector("#backend[data-kind=cpu], #backend[data-kind=webgpu], body[data-state=error]", { timeout: 60_000 });
      assert.equal(await page.textContent("#backend"), `${badge} (measured earlier in this browser)`);
      assert.deepEqual(errors, []);
    } finally {
      await ctx.close();
    }
  });

  test("while the WebGPU module is still building, choosing WebGPU trains on the CPU and says so", async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    const fetched = wasmRequests(page);
    await page.route("**/modules.json", async (route) => {
      const m = JSON.parse(readFileSync(path.join(distDir, "modules.json"), "utf8"));
      await route.fulfill({ contentType: "application/json", body: JSON.stringify({ ...m, webgpu: { status: "building" } }) });
    });
    await page.goto(`${server.url}?backend=webgpu`);
    await page.waitForSelector("#backend[data-kind=cpu], #backend[data-kind=webgpu], body[data-state=error]", { timeout: 300_000 });
    assert.equal(await page.textContent("#backend"), "CPU — The WebGPU module is still building: training on the CPU", `state ${await page.getAttribute("body", "data-state")}: ${await page.textContent("#status")}`);
    await waitRunning(page);
    assert.deepEqual(fetched, ["rfm-playground-threads_bg.wasm"]);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("trains a few steps on WebGPU (chosen) without errors", async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const errors = watchErrors(page);
    const fetched = wasmRequests(page);
    const link = new URL(samplerLink || server.url);
    link.search = "?backend=webgpu";
    await page.goto(link.href);
    await page.waitForSelector("#backend[data-kind=webgpu], #backend[data-kind=cpu], body[data-state=error]", { timeout: 300_000 });
    assert.equal(await page.getAttribute("#backend", "data-kind"), "webgpu", `backend: ${await page.textContent("#backend")}`);
    // The WebGPU module is loaded on demand, after the CPU module the page starts with.
    assert.deepEqual(fetched, ["rfm-playground-threads_bg.wasm", "rfm-playground-webgpu_bg.wasm"]);
    await waitRunning(page, 300_000);
    const m = await measure(page, 2000);
    const adapter = (await page.textContent("#backend")) ?? "";
    const row = { backend: "webgpu", adapter, config: samplerLink ? "sampler gmm8, noise estimator (lesson 2)" : "defaults", ...m };
    bench.push(row);
    console.log(JSON.stringify(row));
    await page.click("#play");
    await page.waitForSelector("body[data-state=paused]", { timeout: 300_000 });
    await screenshot(page, "playground-webgpu");
    const klShown = await page.getAttribute("#kl", "data-kl");
    assert.ok(klShown !== null && klShown !== "" && Number.isFinite(Number(klShown)), `the density panel shows a KL (data-kl = ${klShown})`);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
