/**
 * `?bench` mode: instead of the playground, measure the trainer's throughput in this browser
 * (critic + actor updates/s, action selections/s, estimator targets/s, and with
 * `measure=products` the host matrix product's GFLOP/s on one thread; the figures of
 * `rfm bench`) per backend and config, and show them as JSON in `#bench-result`.
 *
 * URL parameters: `bench` = `cpu`, `webgpu` or empty (both, WebGPU only when the browser has
 * it); `configs` = comma-separated `playground` / `released` (default `playground`);
 * `seconds` per figure (default 3); `measure` (default `updates,actions,estimator`);
 * `modules` = comma-separated CPU modules to measure, `cpu` (plain SIMD) / `relaxed` (default
 * `auto`: the one the page would load). WebGPU always runs in the WebGPU module. `seeds` =
 * comma-separated numbers of agents stepped together for the updates figure, as the page steps
 * an experiment's seeds (default `1`; updates/s is then per agent, one row per number).
 * `overrides` = a JSON object of experiment-spec fields patched onto every config (as `rfm bench
 * --overrides`), e.g. `{"batch":1024}`; a malformed one is the run's error, named.
 * When done, `body[data-bench]` is `done` (or `error`), for tests.
 */
import type { BenchJob, BenchReply, GpuCounts } from "./benchProtocol";

export interface BenchPlan {
  backends: string[];
  configs: string[];
  /** CPU modules (`auto`, `cpu`, `relaxed`) the CPU backend is measured in. */
  modules: string[];
  seconds: number;
  measure: string;
  /** Agents stepped together for `updates` (one row per number). */
  seeds: number[];
  /** Spec fields patched onto every config (a JSON object), or none. */
  overrides: string | null;
}

/** The plan for a query string; `hasWebGpu` decides what an empty `bench` means. */
export function benchPlan(search: string, hasWebGpu: boolean): BenchPlan {
  const q = new URLSearchParams(search);
  const b = (q.get("bench") ?? "").trim();
  const backends = b === "" || b === "all" ? (hasWebGpu ? ["cpu", "webgpu"] : ["cpu"]) : b.split(",").map((s) => s.trim()).filter(Boolean);
  const configs = (q.get("configs") ?? "playground").split(",").map((s) => s.trim()).filter(Boolean);
  const s = Number(q.get("seconds") ?? "3");
  const modules = (q.get("modules") ?? "auto").split(",").map((m) => m.trim()).filter(Boolean);
  const seeds = (q.get("seeds") ?? "1").split(",").map((n) => Number(n.trim())).filter((n) => Number.isInteger(n) && n >= 1);
  return {
    backends,
    configs,
    modules: modules.length ? modules : ["auto"],
    seconds: Number.isFinite(s) && s >= 0 ? s : 3,
    measure: q.get("measure") ?? "updates,actions,estimator",
    seeds: seeds.length ? seeds : [1],
    overrides: q.get("overrides")?.trim() || null,
  };
}

export async function runBenchPage(): Promise<void> {
  const body = document.body;
  body.dataset.bench = "running";
  const status = document.getElementById("status");
  const say = (text: string) => {
    if (status) status.textContent = text;
  };
  const card = document.createElement("section");
  card.className = "card bench-card";
  card.setAttribute("aria-labelledby", "bench-title");
  const h = document.createElement("h2");
  h.id = "bench-title";
  h.textContent = "Benchmark (JSON)";
  const pre = document.createElement("pre");
  pre.id = "bench-result";
  card.append(h, pre);
  document.querySelector("main")?.prepend(card);

  const plan = benchPlan(location.search, "gpu" in navigator);
  const rows: Record<string, unknown>[] = [];
  let loadMs = NaN;
  const show = () => (pre.textContent = JSON.stringify({ userAgent: navigator.userAgent, plan, loadMs, rows }, null, 2));
  const worker = new Worker(new URL("./benchWorker.js", import.meta.url), { type: "module" });
  const pending = new Map<number, (r: BenchReply) => void>();
  let onReady: (r: BenchReply) => void = () => {};
  const ready = new Promise<BenchReply>((resolve) => (onReady = resolve));
  worker.onmessage = (ev: MessageEvent<BenchReply>) => {
    const r = ev.data;
    if (r.type === "ready") onReady(r);
    else if (r.id === -1) onReady(r);
    else pending.get(r.id)?.(r);
  };
  say("benchmark: loading the trainer…");
  const first = await ready;
  if (first.type === "error") {
    pre.textContent = JSON.stringify({ error: first.message });
    body.dataset.bench = "error";
    say(`benchmark: ${first.message}`);
    return;
  }
  if (first.type === "ready") loadMs = first.loadMs;
  let id = 0;
  let failed = false;
  const runs = plan.backends.flatMap((backend) => (backend === "webgpu" ? ["webgpu"] : plan.modules).map((module) => ({ backend, module })));
  for (const { backend, module } of runs) {
    for (const config of plan.configs) for (const seeds of plan.seeds) {
      say(`benchmark: ${config} on ${backend} (${module} module, ${seeds} seed${seeds > 1 ? "s" : ""})…`);
      // On WebGPU each figure runs as its own job, so the worker's call counters (submits,
      // dispatches, readbacks) can be divided by that figure's items.
      // Only updates depend on the seeds stepped together: the other figures run once.
      const wanted = seeds > 1 ? plan.measure.split(",").filter((m) => m.trim() === "updates").join(",") : plan.measure;
      if (!wanted) continue;
      const parts = backend === "webgpu" ? wanted.split(",").map((m) => m.trim()) : [wanted];
      let row: Record<string, unknown> | null = null;
      const perItem: Record<string, unknown> = {};
      for (const measure of parts) {
        const job: BenchJob = { id: ++id, backend, module, config, seconds: plan.seconds, measure, seeds, overrides: plan.overrides };
        const reply = await new Promise<BenchReply>((resolve) => {
          pending.set(job.id, resolve);
          worker.postMessage(job);
        });
        if (reply.type === "error") {
          failed = true;
          row = { ...(row ?? { backend, module, config }), error: reply.message };
          break;
        }
        if (reply.type !== "result") continue;
        row = mergeRows(row, reply.result, reply.wallMs);
        if (reply.gpu && backend === "webgpu") perItem[measure] = gpuPerItem(measure, reply.result, reply.gpu);
      }
      if (row && Object.keys(perItem).length > 0) row.gpuCallsPerItem = perItem;
      if (row) rows.push(row);
      show();
    }
  }
  show();
  console.log(pre.textContent);
  worker.terminate();
  body.dataset.bench = failed ? "error" : "done";
  say(failed ? "benchmark finished with errors" : "benchmark done");
}

/** One row from the per-figure results of the same backend and config. */
function mergeRows(row: Record<string, unknown> | null, result: Record<string, unknown>, wallMs: number): Record<string, unknown> {
  if (!row) return { ...result, wallMs };
  const out: Record<string, unknown> = { ...row, wallMs: (row.wallMs as number) + wallMs };
  for (const [k, v] of Object.entries(result)) {
    if (k === "errors") out.errors = [...((row.errors as string[]) ?? []), ...((v as string[]) ?? [])];
    else if (v !== null && v !== undefined) out[k] = v;
  }
  return out;
}

const FIGURE_KEY: Record<string, string> = { updates: "updates", actions: "actions", estimator: "estimatorTargets", products: "products" };

/**
 * WebGPU calls per item of `measure`. The counts include set-up (building the networks, and
 * the untimed first update or action, which is counted as an item here), so they are upper
 * bounds that approach the steady per-item figure as more items run.
 */
export function gpuPerItem(measure: string, result: Record<string, unknown>, gpu: GpuCounts): Record<string, number> {
  const rate = result[FIGURE_KEY[measure] ?? measure] as { items?: number } | undefined;
  if (!rate?.items) return { items: 0, ...gpu }; // the figure failed: the job's totals
  // The untimed first round: one update per agent stepped together, or one action.
  const untimed = measure === "updates" ? ((result.seeds as number | undefined) ?? 1) : measure === "actions" ? 1 : 0;
  const items = rate.items + untimed;
  const r = (x: number) => Math.round((x / items) * 10) / 10;
  return { items, submits: r(gpu.submits), dispatches: r(gpu.dispatches), mapAsync: r(gpu.mapAsync), maxInFlight: gpu.maxInFlight };
}
