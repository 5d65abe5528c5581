/**
 * The benchmark worker (`?bench` mode): loads the wasm core and runs `runBench` (crate
 * `throughput.rs`, the figures of `rfm bench`) for each request, one at a time.
 */
import type { BenchJob, BenchReply } from "./benchProtocol";
import { fetchManifest, loadCpuModule, loadModule } from "./moduleLoader";
import { webgpuModule } from "./modules";

interface BenchWasm {
  default: (input?: unknown) => Promise<unknown>;
  moduleInfo(): { threads: number };
  runBench(backend: string, config: string, seconds: number, measure: string, seeds?: number, overrides?: string | null): Promise<Record<string, unknown>>;
}

const scope = self as unknown as {
  postMessage(msg: BenchReply): void;
  onmessage: ((ev: MessageEvent<BenchJob>) => void) | null;
};

const loaded = new Map<string, Promise<{ api: BenchWasm; module: string }>>();
/**
 * The module for `name` (`auto` = what the page would pick, `cpu` / `relaxed` / `threads`, or
 * `webgpu`), loaded once. A module this browser or site cannot run is an error, not a stand-in.
 * One threaded module per worker: its pool is global.
 */
function load(name: string): Promise<{ api: BenchWasm; module: string }> {
  if (!loaded.has(name)) {
    loaded.set(
      name,
      (async () => {
        if (name === "webgpu") {
          const w = webgpuModule(await fetchManifest());
          if ("unavailable" in w) throw new Error(w.unavailable);
          return { api: await loadModule<BenchWasm>(w.entry), module: "webgpu" };
        }
        const { api, kind } = await loadCpuModule<BenchWasm>(name === "auto" ? null : name);
        if (name !== "auto" && kind !== name) throw new Error(`this site or browser cannot run the ${name} module (it would load ${kind})`);
        return { api, module: kind };
      })(),
    );
  }
  return loaded.get(name)!;
}

/**
 * WebGPU work counters: queue submits, compute dispatches (`dispatchWorkgroups`, direct and
 * indirect) and buffer mappings (`mapAsync`, i.e. readbacks), counted by wrapping the
 * prototypes in this worker, where the wasm core runs. Absent without WebGPU. `mapAsync`'s
 * promises are followed too: the most readbacks in flight at once (several seeds stepped
 * together overlap theirs) is `maxInFlight`, reset per job.
 */
const gpuCounts = { submits: 0, dispatches: 0, mapAsync: 0 };
const inFlight = { now: 0, max: 0 };
function countCalls(proto: object | undefined, name: string, key: keyof typeof gpuCounts): boolean {
  const p = proto as Record<string, unknown> | undefined;
  const f = p?.[name];
  if (!p || typeof f !== "function") return false;
  p[name] = function (this: unknown, ...args: unknown[]) {
    gpuCounts[key] += 1;
    const out = (f as (...a: unknown[]) => unknown).apply(this, args);
    if (key === "mapAsync" && out instanceof Promise) {
      inFlight.max = Math.max(inFlight.max, ++inFlight.now);
      const done = () => void inFlight.now--;
      out.then(done, done);
    }
    return out;
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
    inFlight.max = inFlight.now;
    const result = await api.runBench(job.backend, job.config, job.seconds, job.measure, job.seeds, job.overrides);
    const gpu = counting
      ? {
          submits: gpuCounts.submits - before.submits,
          dispatches: gpuCounts.dispatches - before.dispatches,
          mapAsync: gpuCounts.mapAsync - before.mapAsync,
          maxInFlight: inFlight.max,
        }
      : undefined;
    const threads = api.moduleInfo?.().threads ?? 1;
    scope.postMessage({ type: "result", id: job.id, result: { ...result, module, threads }, wallMs: performance.now() - started, gpu });
  } catch (e) {
    scope.postMessage({ type: "error", id: job.id, message: e instanceof Error ? e.message : String(e) });
  }
};
