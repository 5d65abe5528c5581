/**
 * A walk through every option the Experiment card offers (mode × env × agent × estimator ×
 * parameterisation × solver: every option at least once, not every combination), in Chromium
 * and in Firefox ESR (CPU backend), at 1400 px and 390 px wide. For each experiment:
 *
 * - it trains a bounded number of steps (counted on the page's step counter, not in seconds),
 *   with no page error and no console error;
 * - the Experiment card's controls stay inside the card;
 * - every visible canvas has content (more than one colour, some pixels painted), and every
 *   canvas that shows training changes between two paused frames some steps apart;
 * - panels that do not apply say so (SAC: no flow paths, no estimator variance, no ESS).
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { mkdirSync } from "node:fs";
import type { Browser } from "playwright-core";
import type { Browser as PBrowser } from "puppeteer-core";
import {
  artifactsDir,
  canvasSignatures,
  chromiumPage,
  firefoxPage,
  launch,
  launchFirefox,
  serveDist,
  type Driven,
} from "./harness.ts";

/** One experiment of the walk: control values (by config key), the width to open it at. */
interface Stop {
  name: string;
  settings: Record<string, string>;
  width: 1400 | 390;
}

const RL = (s: Record<string, string>) => ({ mode: "rl", ...s });
const SAMPLER = (s: Record<string, string>) => ({ mode: "sampler", ...s });

/** Together these use every option of every select at least once (checked against the page). */
const CHROMIUM_WALK: Stop[] = [
  { name: "rl-multigoal-rfm", width: 1400, settings: RL({ env: "multigoal", agent: "rfm", estimator: "rfm", param: "flow", solver: "euler", proposal: "mixture", warmupNoise: "uniform" }) },
  { name: "rl-pendulum-sac", width: 390, settings: RL({ env: "pendulum", agent: "sac" }) },
  { name: "rl-mountain-car-noise-heun-prior", width: 1400, settings: RL({ env: "mountain-car", agent: "rfm", estimator: "noise", param: "flow", solver: "heun", proposal: "prior", warmupNoise: "pink" }) },
  { name: "rl-pendulum-cv-iso-diffusion", width: 390, settings: RL({ env: "pendulum", agent: "rfm", estimator: "cv-iso", param: "diffusion" }) },
  { name: "sampler-gmm8-grad", width: 390, settings: SAMPLER({ target: "gmm8", estimator: "grad" }) },
  { name: "sampler-two-moons-eta", width: 1400, settings: SAMPLER({ target: "two-moons", estimator: "eta" }) },
  { name: "sampler-rings-rfm-diffusion-heun", width: 390, settings: SAMPLER({ target: "rings", estimator: "rfm", param: "diffusion", solver: "heun" }) },
  { name: "sampler-gmm40-cv-pool", width: 1400, settings: SAMPLER({ target: "gmm40", estimator: "cv-pool" }) },
];

/** Firefox: fewer stops (it trains slower here), both widths, RL with each agent, the sampler. */
const FIREFOX_WALK: Stop[] = [
  { name: "rl-multigoal-rfm", width: 1400, settings: RL({ env: "multigoal", agent: "rfm" }) },
  { name: "rl-pendulum-sac", width: 390, settings: RL({ env: "pendulum", agent: "sac" }) },
  { name: "sampler-two-moons-eta-diffusion-heun", width: 390, settings: SAMPLER({ target: "two-moons", estimator: "eta", param: "diffusion", solver: "heun" }) },
  { name: "sampler-gmm8-rfm", width: 1400, settings: SAMPLER({ target: "gmm8", estimator: "rfm" }) },
];

/** Steps for the two frames compared: RL passes the page's 200-step warm-up, so updates happen in between. */
const FRAMES = { rl: [20, 240], sampler: [10, 60] } as const;

/** Panels SAC has no data for (the crate's `Session.panels()` says so; the page must show it). */
const SAC_NOT_APPLICABLE = ["paths-canvas", "variance-canvas", "curve-ess"];

let server: Awaited<ReturnType<typeof serveDist>>;
before(async () => {
  server = await serveDist();
});
after(async () => {
  await server?.close();
});

async function state(page: Driven): Promise<{ state: string; run: number; step: number; refreshed: number; status: string }> {
  return page.evaluate(
    () => ({
      state: document.body.dataset.state ?? "",
      run: Number(document.body.dataset.run ?? 0),
      step: Number(document.getElementById("step-count")!.dataset.step),
      refreshed: Number(document.body.dataset.refreshedStep ?? -1),
      status: document.getElementById("status")!.textContent ?? "",
    }),
    null,
  );
}

/** Change one control (only when it shows another value) and wait for the re-initialised, paused run. */
async function setControl(page: Driven, key: string, value: string): Promise<void> {
  const info = await page.evaluate(
    (k) => {
      const e = document.getElementById(`cfg-${k}`) as HTMLSelectElement | HTMLInputElement | null;
      if (!e) return null;
      const options = e instanceof HTMLSelectElement ? Array.from(e.options).map((o) => o.value) : [];
      const hidden = (e.closest(".field") as HTMLElement | null)?.hidden ?? false;
      return { value: e.value, options, hidden };
    },
    key,
  );
  assert.ok(info, `no control for ${key}`);
  assert.equal(info.hidden, false, `the ${key} control is hidden`);
  // The estimator's fixed-η option may carry its η ("eta:0.5"): pick the option that starts so.
  const want = info.options.find((o) => o === value || (value === "eta" && o.startsWith("eta"))) ?? value;
  if (info.value === want) return;
  // An advanced setting: unfold "Advanced settings" first, as a person would.
  await page.evaluate((k) => {
    const d = document.getElementById(`cfg-${k}`)!.closest("details");
    if (d && !d.open) d.querySelector("summary")!.click();
  }, key);
  const { run } = await state(page);
  await page.select(`#cfg-${key}`, want);
  await page.waitFor((r) => Number(document.body.dataset.run) > r && (document.body.dataset.state === "paused" || document.body.dataset.state === "error"), run, 120_000);
  const s = await state(page);
  assert.equal(s.state, "paused", `after ${key} = ${want}: ${s.status}`);
}

/** Train (Play) until the step counter reaches `steps`, pause, then one step: every view is then fresh. */
async function trainTo(page: Driven, steps: number): Promise<number> {
  await page.click("#play");
  await page.waitFor((n) => Number(document.getElementById("step-count")!.dataset.step) >= n || document.body.dataset.state === "error", steps, 240_000);
  await page.click("#play");
  await page.waitFor(() => document.body.dataset.state === "paused" || document.body.dataset.state === "error", null, 60_000);
  const before = (await state(page)).step;
  await page.click("#step");
  await page.waitFor((n) => Number(document.body.dataset.refreshedStep ?? -1) > n || document.body.dataset.state === "error", before, 120_000);
  const s = await state(page);
  assert.notEqual(s.state, "error", s.status);
  // (The batch in flight when Pause was pressed may still have landed before this step.)
  assert.ok(s.refreshed >= before + 1, `refreshed at ${s.refreshed}, paused at ${before}`);
  return s.step;
}

/** Paused and idle: the Step button trains exactly one step. */
async function oneStepIsOne(page: Driven): Promise<void> {
  const before = (await state(page)).step;
  await page.click("#step");
  await page.waitFor((n) => Number(document.body.dataset.refreshedStep ?? -1) > n || document.body.dataset.state === "error", before, 120_000);
  assert.equal((await state(page)).step, before + 1, "one step is exactly one step");
}

/** The controls' right edges against the Experiment card's (px; positive = overflow). */
async function controlsOverflow(page: Driven): Promise<{ id: string; over: number }[]> {
  return page.evaluate(() => {
    const card = document.querySelector(".controls-card")!.getBoundingClientRect();
    const out: { id: string; over: number }[] = [];
    for (const e of Array.from(document.querySelectorAll<HTMLElement>(".controls-card select, .controls-card input"))) {
      const r = e.getBoundingClientRect();
      if (r.width === 0) continue;
      const over = Math.max(r.right - card.right, card.left - r.left, r.right - document.documentElement.clientWidth);
      if (over > 0.5) out.push({ id: e.id || e.className, over: Math.round(over) });
    }
    return out;
  }, null);
}

/** Every option of every select in the Experiment card, by config key. */
async function pageOptions(page: Driven): Promise<Record<string, string[]>> {
  return page.evaluate(
    () =>
      Object.fromEntries(
        Array.from(document.querySelectorAll<HTMLSelectElement>("#controls select")).map((s) => [
          s.id.replace(/^cfg-/, ""),
          Array.from(s.options).map((o) => o.value),
        ]),
      ),
    null,
  );
}

function covered(walk: Stop[]): Record<string, Set<string>> {
  const out: Record<string, Set<string>> = {};
  for (const s of walk) for (const [k, v] of Object.entries(s.settings)) (out[k] ??= new Set()).add(v);
  return out;
}

// RFM_WALK_EXTRA appends to every stop's query, e.g. "&module=relaxed" to walk another CPU module.
async function walkStop(page: Driven, stop: Stop): Promise<void> {
  await page.goto(`${server.url}?debug&paused&backend=cpu${process.env.RFM_WALK_EXTRA ?? ""}`);
  await page.waitFor(() => document.body.dataset.state === "paused" || document.body.dataset.state === "error", null, 180_000);
  for (const [k, v] of Object.entries(stop.settings)) await setControl(page, k, v);
  const overflow = await controlsOverflow(page);
  assert.deepEqual(overflow, [], `controls stick out of the Experiment card at ${stop.width} px`);
  const mode = stop.settings.mode as "rl" | "sampler";
  const [n1, n2] = FRAMES[mode];
  const reached = await trainTo(page, n1);
  const first = await page.evaluate(canvasSignatures, null);
  const kinds = await page.evaluate(() => document.getElementById("backend")!.dataset.kind, null);
  assert.equal(kinds, "cpu");
  for (const c of first) {
    assert.ok(c.colours > 1 && c.painted > 0, `${stop.name}: canvas #${c.id} is blank (${JSON.stringify(c)})`);
  }
  // (Checked last, so that the other checks run too.)
  const naMissing =
    stop.settings.agent === "sac"
      ? SAC_NOT_APPLICABLE.filter((id) => !/SAC|not used|does not apply/i.test(first.find((c) => c.id === id)?.notApplicable ?? ""))
      : [];
  const points1 = await chartPoints(page);
  // Play runs batches of steps, so the first stop can land past n2 on a fast machine: train as
  // far again from wherever it landed.
  await trainTo(page, Math.max(n2, reached + (n2 - n1)));
  const second = await page.evaluate(canvasSignatures, null);
  const points2 = await chartPoints(page);
  const still: string[] = [];
  for (const a of first) {
    const b = second.find((c) => c.id === a.id);
    if (!b || a.notApplicable) continue;
    // Static by design in sampler mode: the target is a fixed density, and the estimators'
    // variance depends on the target alone (not on the flow being trained).
    if (mode === "sampler" && (a.id === "density-target" || a.id === "variance-canvas")) continue;
    // A chart whose series got no new point in between stays as it was (e.g. no episode ended).
    if (a.id in points1 && points1[a.id] === points2[a.id]) continue;
    if (a.hash === b.hash && !naMissing.includes(a.id)) still.push(a.id);
  }
  assert.deepEqual(still, [], `${stop.name}: these canvases did not change while training`);
  await oneStepIsOne(page);
  assert.deepEqual(naMissing, [], `${stop.name}: these panels do not say that they do not apply to SAC`);
}

/** Each chart's point count per series (`data-points`, by canvas id). */
async function chartPoints(page: Driven): Promise<Record<string, string | undefined>> {
  return page.evaluate(
    () => Object.fromEntries(Array.from(document.querySelectorAll("canvas[data-points]")).map((c) => [c.id, (c as HTMLElement).dataset.points])),
    null,
  );
}

async function runWalk(t: TestContext, open: (width: number) => Promise<Driven>, walk: Stop[], shots: string, checkCoverage: boolean): Promise<void> {
  let options: Record<string, string[]> | null = null;
  for (const stop of walk) {
    await t.test(`${stop.name} at ${stop.width} px`, async () => {
      const page = await open(stop.width);
      try {
        await walkStop(page, stop);
        options ??= await pageOptions(page);
        mkdirSync(artifactsDir, { recursive: true });
        await page.screenshot(path.join(artifactsDir, `${shots}-${stop.name}-${stop.width}.png`));
        assert.deepEqual(page.errors, [], "page or console errors");
      } finally {
        await page.close();
      }
    });
  }
  if (!checkCoverage) return;
  await t.test("the walk used every option of every select", () => {
    assert.ok(options, "no page was read");
    const have = covered(walk);
    const missing = Object.entries(options).flatMap(([k, vs]) =>
      vs.filter((v) => !(have[k]?.has(v) || (k === "estimator" && v.startsWith("eta") && have[k]?.has("eta")))).map((v) => `${k}=${v}`),
    );
    assert.deepEqual(missing, [], "options no stop of the walk uses");
  });
}

describe("walk: Chromium (CPU)", () => {
  let browser: Browser;
  before(async () => {
    browser = await launch({ webgpu: false });
  });
  after(async () => {
    await browser?.close();
  });
  test("every option, both widths", async (t) => {
    await runWalk(t, (w) => chromiumPage(browser, w), CHROMIUM_WALK, "walk-chromium", true);
  });
});

describe("walk: Firefox ESR (CPU)", () => {
  let browser: PBrowser;
  before(async () => {
    browser = await launchFirefox();
  });
  after(async () => {
    await browser?.close();
  });
  test("RL with each agent and the sampler, both widths", async (t) => {
    await runWalk(t, (w) => firefoxPage(browser, w), FIREFOX_WALK, "walk-firefox", false);
  });
});
