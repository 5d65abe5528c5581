/**
 * The benchmark worker (`?bench` mode): loads the wasm core and runs `runBench` (crate
 * `throughput.rs`, the figures of `rfm bench`) for each request, one at a time.
 */
import { relaxedSimd } from "wasm-feature-detect";
import type { BenchJob, BenchReply } from "./benchProtocol";
import { parseManifest, pickCpuModule, webgpuModule, type Manifest } from "./modules";

interface BenchWasm {
  default: (input?: unknown) => Promise<unknown>;
  runBench(backend: string, config: string, seconds: number, measure: string): Promise<Record<string, unknown>>;
}

const scope = self as unknown as {
  postMessage(msg: BenchReply): void;
  onmessage: ((ev: MessageEvent<BenchJob>) => void) | null;
};

const manifest: Promise<Manifest> = fetch(new URL("./modules.json", import.meta.url), { cache: "no-store" })
  .then((r) => (r.ok ? r.text() : null))
  .catch(() => null)
  .then(parseManifest);

const loaded = new Map<string, Promise<BenchWasm>>();
/** The module for `name` (`auto` = what the page would pick), loaded once. */
async function load(name: string): Promise<{ api: BenchWasm; module: string }> {
  const m = await manifest;
  let module = name;
  if (name === "auto" || name === "cpu" || name === "relaxed") {
    module = pickCpuModule(m, await relaxedSimd().catch(() => false), name === "auto" ? null : name);
    if (name === "relaxed" && module !== "relaxed") throw new Error("this site or browser has no relaxed-SIMD module");
  }
  let entry;
  if (module === "webgpu") {
    const w = webgpuModule(m);
    if ("unavailable" in w) throw new Error(w.unavailable);
    entry = w.entry;
  } else entry = module === "relaxed" && m.relaxed ? m.relaxed : m.cpu;
  if (!loaded.has(module)) {
    loaded.set(
      module,
      import(/* @vite-ignore */ new URL(`./${entry.js}`, import.meta.url).href).then(async (api: BenchWasm) => {
        await api.default();
        return api;
      }),
    );
  }
  return { api: await loaded.get(module)!, module };
}

/**
 * WebGPU work counters: queue submits, compute dispatches (`dispatchWorkgroups`, direct and
 * indirect) and buffer mappings (`mapAsync`, i.e. readbacks), counted by wrapping the
 * prototypes in this worker, where the wasm core runs. Absent without WebGPU.
 */
const gpuCounts = { submits: 0, dispatches: 0, mapAsync: 0 };
function countCalls(proto: object | undefined, name: string, key: keyof typeof gpuCounts): boolean {
  const p = proto as Record<string, unknown> | undefined;
  const f = p?.[name];
  if (!p || typeof f !== "function") return false;
  p[name] = function (this: unknown, ...args: unknown[]) {
    gpuCounts[key] += 1;
    return (f as (...a: unknown[]) => unknown).apply(this, args);
  };
  return true;
}
const g = self as unknown as Record<string, { prototype: object } | undefined>;
const counting =
  countCalls(g.GPUQueue?.prototype, "submit", "submits") &&
  countCalls(g.GPUComputePassEncoder?.prototype, "dispatchWorkgroups", "dispatches") &&
  countCalls(g.GPUComputePassEncoder?.prototype, "dispatchWorkgroupsIndirect", "dispatches") &&
  countCalls(g.GPUBuffer?.prototype, "mapAsync", "mapAsync");

const t0 = performance.now();
const ready = load("auto");
ready.then(
  () => scope.postMessage({ type: "ready", loadMs: performance.now() - t0 }),
  (e) => scope.postMessage({ type: "error", id: -1, message: `could not load the wasm core: ${String(e)}` }),
);

scope.onmessage = async (ev) => {
  const job = ev.data;
  try {
    await ready;
    const { api, module } = await load(job.module ?? (job.backend === "webgpu" ? "webgpu" : "auto"));
    const started = performance.now();
    const before = { ...gpuCounts };
    const result = await api.runBench(job.backend, job.config, job.seconds, job.measure);
    const gpu = counting
      ? { submits: gpuCounts.submits - before.submits, dispatches: gpuCounts.dispatches - before.dispatches, mapAsync: gpuCounts.mapAsync - before.mapAsync }
      : undefined;
    scope.postMessage({ type: "result", id: job.id, result: { ...result, module }, wallMs: performance.now() - started, gpu });
  } catch (e) {
    scope.postMessage({ type: "error", id: job.id, message: e instanceof Error ? e.message : String(e) });
  }
};
