/**
 * Soak test (opt-in: `make soak`, never part of `make test`): the page trains continuously in
 * headless Chromium (CPU backend) for SOAK_MINUTES (default 60) while this script samples,
 * every SOAK_SAMPLE_S seconds (default 60), after a forced garbage collection:
 *
 * - the worker's wasm memory (the WebAssembly.Memory buffer of the core),
 * - the worker's JS heap and the page's JS heap (CDP `Runtime.getHeapUsage` / `performance.memory`),
 * - the step count and the page state.
 *
 * It fails on any console error or page error, on the page leaving the running state, on
 * training that stops advancing between two samples, or on unbounded growth. Bounded plateau:
 * for every series, the largest value of the second half of the run exceeds the value at the
 * midpoint by less than SOAK_MAX_GROWTH (default 10 %) of it or SOAK_SLACK_MIB (default 4 MiB),
 * whichever is larger. Samples go to SOAK_OUT (default tests/artifacts/soak.json) as they are taken.
 *
 *   SOAK_MINUTES=3 SOAK_SAMPLE_S=20 make soak      # a quick check of the script itself
 *   SOAK_LINK='#v1…' make soak                      # soak a given experiment (share-link fragment)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { CDPSession } from "playwright-core";
import { artifactsDir, launch, serveDist, watchErrors } from "./harness.ts";

const minutes = Number(process.env.SOAK_MINUTES ?? 60);
const sampleS = Number(process.env.SOAK_SAMPLE_S ?? 60);
const maxGrowth = Number(process.env.SOAK_MAX_GROWTH ?? 0.1);
const slackBytes = Number(process.env.SOAK_SLACK_MIB ?? 4) * 2 ** 20;
const outFile = process.env.SOAK_OUT ?? path.join(artifactsDir, "soak.json");
const link = process.env.SOAK_LINK ?? "";

interface Sample {
  minute: number;
  step: number;
  state: string;
  wasmBytes: number;
  workerHeapBytes: number;
  pageHeapBytes: number;
}

const MIB = 2 ** 20;
const mib = (b: number) => (b / MIB).toFixed(1);

/**
 * The JS heap of the page's dedicated worker via the browser's CDP connection (workers have no
 * `performance.memory`): attach to the worker target and ask `Runtime.getHeapUsage`.
 */
async function workerHeap(browserCdp: CDPSession): Promise<number> {
  const { targetInfos } = (await browserCdp.send("Target.getTargets")) as { targetInfos: { targetId: string; type: string }[] };
  const target = targetInfos.find((t) => t.type === "worker");
  if (!target) return Number.NaN;
  const { sessionId } = (await browserCdp.send("Target.attachToTarget", { targetId: target.targetId, flatten: false })) as { sessionId: string };
  try {
    const reply = new Promise<number>((resolve) => {
      const on = (ev: { sessionId: string; message: string }) => {
        const m = JSON.parse(ev.message) as { id?: number; result?: { usedSize: number } };
        if (ev.sessionId !== sessionId || m.id !== 1) return;
        browserCdp.off("Target.receivedMessageFromTarget", on);
        resolve(m.result?.usedSize ?? Number.NaN);
      };
      browserCdp.on("Target.receivedMessageFromTarget", on);
    });
    await browserCdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id: 1, method: "Runtime.getHeapUsage" }) });
    return await Promise.race([reply, new Promise<number>((r) => setTimeout(() => r(Number.NaN), 30_000))]);
  } finally {
    await browserCdp.send("Target.detachFromTarget", { sessionId }).catch(() => undefined);
  }
}

/** Growth verdict of one series: bounded when the second half's peak stays near the midpoint value. */
function growth(values: number[]): { mid: number; peak: number; grew: number; bounded: boolean } {
  const m = Math.floor((values.length - 1) / 2);
  const mid = values[m];
  const peak = Math.max(...values.slice(m));
  const grew = peak - mid;
  return { mid, peak, grew, bounded: grew <= Math.max(maxGrowth * mid, slackBytes) };
}

async function main(): Promise<number> {
  const server = await serveDist();
  const browser = await launch({ webgpu: false, extraArgs: ["--enable-precise-memory-info", "--js-flags=--expose-gc"] });
  const page = await browser.newPage();
  const errors = watchErrors(page);
  const cdp = await page.context().newCDPSession(page);
  const browserCdp = await browser.newBrowserCDPSession();
  const samples: Sample[] = [];
  const failures: string[] = [];
  const save = (summary?: unknown) => {
    mkdirSync(path.dirname(outFile), { recursive: true });
    writeFileSync(outFile, JSON.stringify({ minutes, sampleS, maxGrowth, slackMiB: slackBytes / MIB, link, samples, failures, summary }, null, 2) + "\n");
  };
  try {
    await page.goto(server.url + link);
    await page.waitForSelector("body[data-state=running], body[data-state=error]", { timeout: 600_000 });
    const t0 = Date.now();
    const end = t0 + minutes * 60_000;
    for (;;) {
      const worker = page.workers()[0];
      if (!worker) throw new Error("the training worker is gone");
      // Force a collection in both realms so the heaps are live sizes, not GC timing.
      await page.evaluate(() => (globalThis as unknown as { gc?: () => void }).gc?.());
      const w = await worker.evaluate(async () => {
        (globalThis as unknown as { gc?: () => void }).gc?.();
        // The wasm-bindgen glue returns the already-initialised instance's exports.
        const glue = await import(new URL("./rfm-playground.js", location.href).href);
        const exports = (await glue.default()) as { memory: WebAssembly.Memory };
        return { wasmBytes: exports.memory.buffer.byteLength };
      });
      const heap = (await cdp.send("Runtime.getHeapUsage")) as { usedSize: number };
      const s: Sample = {
        minute: (Date.now() - t0) / 60_000,
        step: Number(await page.getAttribute("#step-count", "data-step")),
        state: (await page.getAttribute("body", "data-state")) ?? "",
        wasmBytes: w.wasmBytes,
        workerHeapBytes: await workerHeap(browserCdp),
        pageHeapBytes: heap.usedSize,
      };
      samples.push(s);
      console.log(
        `soak ${s.minute.toFixed(1)} min: step ${s.step}, state ${s.state}, wasm ${mib(s.wasmBytes)} MiB, worker heap ${mib(s.workerHeapBytes)} MiB, page heap ${mib(s.pageHeapBytes)} MiB`,
      );
      if (s.state !== "running") failures.push(`the page left the running state at ${s.minute.toFixed(1)} min: ${s.state} (${await page.textContent("#status")})`);
      const prev = samples[samples.length - 2];
      if (prev && s.step <= prev.step) failures.push(`training did not advance between ${prev.minute.toFixed(1)} and ${s.minute.toFixed(1)} min (step ${s.step})`);
      if (errors.length) failures.push(...errors.splice(0));
      save();
      if (failures.length || Date.now() >= end) break;
      await page.waitForTimeout(Math.min(sampleS * 1000, Math.max(0, end - Date.now())));
    }
  } catch (e) {
    failures.push(`soak aborted: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await browser.close();
    await server.close();
  }
  const summary: Record<string, unknown> = { samples: samples.length };
  if (samples.length >= 3) {
    for (const key of ["wasmBytes", "workerHeapBytes", "pageHeapBytes"] as const) {
      const values = samples.map((s) => s[key]).filter(Number.isFinite);
      if (values.length < 3) continue;
      const g = growth(values);
      summary[key] = { first: values[0], mid: g.mid, secondHalfPeak: g.peak, last: values[values.length - 1], bounded: g.bounded };
      console.log(`soak ${key}: first ${mib(values[0])}, mid ${mib(g.mid)}, second-half peak ${mib(g.peak)}, last ${mib(values[values.length - 1])} MiB → ${g.bounded ? "bounded" : "GROWING"}`);
      if (!g.bounded) failures.push(`${key} kept growing: ${mib(g.mid)} MiB at the midpoint, ${mib(g.peak)} MiB later`);
    }
    const first = samples[0];
    const last = samples[samples.length - 1];
    summary.steps = last.step - first.step;
    summary.stepsPerSec = (last.step - first.step) / ((last.minute - first.minute) * 60);
    console.log(`soak: ${last.step - first.step} steps in ${(last.minute - first.minute).toFixed(1)} min`);
  } else if (!failures.length) {
    failures.push(`only ${samples.length} samples: run for longer than 2 sample intervals`);
  }
  save(summary);
  for (const f of failures) console.error(`soak FAILED: ${f}`);
  if (!failures.length) console.log(`soak passed (${outFile})`);
  return failures.length ? 1 : 0;
}

process.exit(await main());
