/**
 * The training worker: loads the wasm core and answers the page's requests (see protocol.ts),
 * so the page never blocks on training. It holds at most one `Session`. Every failure becomes
 * an `{type: "error"}` reply carrying the request id; nothing here computes algorithm numbers —
 * it times the steps (updates/s) and forwards what the core returns.
 */
import { resolveBackend, type AdapterFacts } from "./backend";
import { fetchManifest, loadCpuModule, loadModule } from "./moduleLoader";
import { webgpuModule, type CpuModuleKind } from "./modules";
import { readRecord, writeRecord } from "./autosave";
import { CALIBRATION_SECONDS, calibrationKey, decide, parseCalibration } from "./calibration";
import type {
  BackendChoice,
  DensityView,
  DeviceInfo,
  ExperimentSpec,
  FieldError,
  FieldInfo,
  FlowPaths,
  PanelStatus,
  ProbeReport,
  Reply,
  Request,
  StepBatch,
  StepReport,
  VarianceCurve,
} from "./protocol";

/** The wasm-bindgen `Session` class (crate/src/wasm.rs). */
interface WasmSession {
  device(): DeviceInfo;
  spec(): ExperimentSpec;
  steps(): number;
  panels(): PanelStatus[];
  step(n: number): Promise<StepBatch>;
  density(samples: number | undefined, state: Float64Array | undefined, seed: number | undefined, allSeeds: boolean | undefined): Promise<DensityView>;
  paths(count: number, state: Float64Array | undefined): Promise<FlowPaths>;
  variance(state: Float64Array | undefined): Promise<VarianceCurve>;
  saveWeights(): Promise<Uint8Array>;
  resumeFrom(bytes: Uint8Array): number;
  fallBackToCpu(): number;
  injectFault(kind: string): void;
  free(): void;
}

/** The wasm module's exports (crate/src/wasm.rs). */
interface Wasm {
  default: (input?: unknown) => Promise<unknown>;
  moduleInfo(): { webgpu: boolean; relaxedSimd: boolean; threads: number };
  calibrate(config: unknown, backend: string, seconds: number): Promise<{ perS: number; items: number; seconds: number }>;
  runProbe(backend: string, config: unknown): Promise<ProbeReport>;
  defaultSpec(mode: string): ExperimentSpec;
  describeSpec(): FieldInfo[];
  validateSpec(config: unknown): FieldError[];
  encodeShare(config: unknown): string;
  decodeShare(fragment: string): ExperimentSpec;
  Session: {
    create(config: unknown, backend: string): Promise<WasmSession>;
    open(bytes: Uint8Array, backend: string): Promise<WasmSession>;
  };
}

const scope = self as unknown as {
  postMessage(msg: Reply, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<Request>) => void) | null;
};

const post = (msg: Reply, transfer?: Transferable[]) => scope.postMessage(msg, transfer ?? []);

/** The worker's own query, set by the page (`spawnWorker` in main.ts). */
const params = new URL(self.location.href).searchParams;
/** `?module=cpu|relaxed|threads` on the page picks the CPU module by hand (benchmarks, tests). */
const forcedModule = params.get("module");
/** `?calibrate` (tests): calibrate `auto` on a software adapter too, as on a hardware one. */
const calibrateAlways = params.has("calibrate");
/** `?debug&hangInit` on the page (tests): block the thread in "init" for good, as a stuck wasm call would. */
const hangInit = params.has("hangInit");

/** The CPU module (threaded / relaxed SIMD where the browser has it): loaded first, the spec's home. */
const ready: Promise<{ api: Wasm; kind: CpuModuleKind }> = loadCpuModule<Wasm>(forcedModule);
// A heartbeat for the page's watchdog: it stops when this worker dies or is terminated.
setInterval(() => scope.postMessage({ type: "heartbeat" }), 1000);

let webgpu: Promise<Wasm> | null = null;
/** The WebGPU module, loaded on first use; `unavailable` says why it cannot be (still building…). */
async function webgpuCore(): Promise<{ api: Wasm } | { unavailable: string }> {
  if (!webgpu) {
    const m = webgpuModule(await fetchManifest());
    if ("unavailable" in m) return m;
    webgpu = loadModule<Wasm>(m.entry);
    webgpu.catch(() => (webgpu = null));
  }
  try {
    return { api: await webgpu };
  } catch (e) {
    return { unavailable: `The WebGPU module could not be loaded (${String(e)})` };
  }
}

/** What `navigator.gpu` says about the adapter this browser would give (null: no WebGPU). */
async function adapterFacts(): Promise<AdapterFacts | null> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu;
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter();
  if (!adapter) return null;
  const info = adapter.info ?? {};
  return {
    isFallbackAdapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false,
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    description: info.description ?? "",
  };
}

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { isFallbackAdapter?: boolean; vendor?: string; architecture?: string; description?: string };
}

/**
 * The module and backend a session runs on. `auto` on a software adapter (SwiftShader,
 * llvmpipe, lavapipe) or without WebGPU trains on the CPU module, which is faster there, and
 * so does any choice while the WebGPU module is still building (or failed to load): the page
 * trains on the CPU and `reason` says why, so nothing waits on the build. `auto` on a hardware
 * adapter measures both backends on the experiment `spec()` gives (asked only then) or reads
 * what it measured before, and takes the faster (calibration.ts).
 */
async function chooseCore(cpu: Wasm, choice: BackendChoice, spec: () => Promise<ExperimentSpec>): Promise<{ api: Wasm; backend: BackendChoice; reason: string | null }> {
  const facts = choice === "auto" ? await adapterFacts().catch(() => null) : null;
  const picked = resolveBackend(choice, calibrateAlways && facts ? { ...facts, isFallbackAdapter: false, vendor: "test", architecture: "", description: "" } : facts);
  if (picked.backend === "cpu") return { api: cpu, ...picked };
  const gpu = await webgpuCore();
  if (!("api" in gpu)) return { api: cpu, backend: "cpu", reason: `${gpu.unavailable}: training on the CPU` };
  if (choice !== "auto" || !facts) return { api: gpu.api, ...picked };
  const experiment = await spec();
  const key = calibrationKey(`${facts.vendor} ${facts.architecture} ${facts.description}`.trim(), experiment);
  let c = parseCalibration(await readRecord(key).catch(() => null));
  const remembered = c !== null;
  if (!c) {
    const cpuRate = await cpu.calibrate(experiment, "cpu", CALIBRATION_SECONDS);
    const gpuRate = await gpu.api.calibrate(experiment, "webgpu", CALIBRATION_SECONDS).catch(() => ({ perS: 0 }));
    c = { cpu: cpuRate.perS, webgpu: gpuRate.perS, at: Date.now() };
    await writeRecord(key, c).catch(() => {});
  }
  const d = decide(c, remembered);
  return d.backend === "webgpu" ? { api: gpu.api, backend: "webgpu", reason: d.text } : { api: cpu, backend: "cpu", reason: d.text };
}
ready.then(
  ({ kind }) => post({ type: "ready", module: kind }),
  (e) => post({ type: "error", id: null, message: `could not load the wasm core: ${String(e)}` }),
);

let session: WasmSession | null = null;
/** Steps the session had done after the last `step` reply (for the updates/s figure). */
let lastStep = 0;

function requireSession(): WasmSession {
  if (!session) throw new Error("no experiment is running: send init first");
  return session;
}

const f64 = (state?: number[]) => (state ? Float64Array.from(state) : undefined);

/** Make `next` the running session and describe it (with why `auto` chose the CPU). */
function adopt(next: WasmSession, reason: string | null) {
  session?.free();
  session = next;
  lastStep = next.steps();
  const device = next.device();
  // Why this backend: the CPU's fallback reason, or auto's calibration figures.
  if (reason) device.fallbackReason = reason;
  return { device, config: next.spec(), panels: next.panels() };
}

async function handle(api: Wasm, req: Request): Promise<void> {
  switch (req.type) {
    case "init": {
      const problems = api.validateSpec(req.config);
      if (problems.length) {
        post({ type: "error", id: req.id, message: problems.map((p) => p.message).join("; "), fields: problems });
        return;
      }
      const choice = await chooseCore(api, req.backend, async () => req.config);
      const next = await choice.api.Session.create(req.config, choice.backend);
      post({ type: "init", id: req.id, ...adopt(next, choice.reason) });
      return;
    }
    case "open": {
      // The checkpoint's own spec (read on the CPU, only if `auto` calibrates) is what it measures.
      const checkpointSpec = async () => {
        const peek = await api.Session.open(new Uint8Array(req.bytes), "cpu");
        const spec = peek.spec();
        peek.free();
        return spec;
      };
      const choice = await chooseCore(api, req.backend, checkpointSpec);
      const next = await choice.api.Session.open(new Uint8Array(req.bytes), choice.backend);
      post({ type: "open", id: req.id, ...adopt(next, choice.reason), step: next.steps() });
      return;
    }
    case "step": {
      const s = requireSession();
      const before = lastStep;
      const t0 = performance.now();
      const r = await s.step(req.steps);
      const secs = (performance.now() - t0) / 1000;
      const done = Math.max(0, r.step - before);
      lastStep = r.step;
      const report: StepReport = { ...r, updatesPerSec: secs > 0 ? done / secs : 0 };
      if (r.deviceLost) {
        // The device is gone: go on on the CPU from the session's last good snapshot.
        const step = s.fallBackToCpu();
        lastStep = step;
        report.fallback = { device: s.device(), step };
      }
      post({ type: "step", id: req.id, report });
      return;
    }
    case "resume": {
      const step = requireSession().resumeFrom(new Uint8Array(req.bytes));
      lastStep = step;
      post({ type: "resume", id: req.id, step });
      return;
    }
    case "injectFault":
      requireSession().injectFault(req.kind);
      post({ type: "injectFault", id: req.id });
      return;
    case "density":
      post({ type: "density", id: req.id, density: await requireSession().density(req.query.samples, f64(req.query.state), req.query.seed, req.query.allSeeds) });
      return;
    case "paths":
      post({ type: "paths", id: req.id, paths: await requireSession().paths(req.count, f64(req.state)) });
      return;
    case "variance":
      post({ type: "variance", id: req.id, curve: await requireSession().variance(f64(req.state)) });
      return;
    case "validate":
      post({ type: "validate", id: req.id, errors: api.validateSpec(req.config) });
      return;
    case "encodeShare":
      post({ type: "encodeShare", id: req.id, fragment: api.encodeShare(req.config) });
      return;
    case "decodeShare":
      post({ type: "decodeShare", id: req.id, config: api.decodeShare(req.fragment) });
      return;
    case "defaults":
      post({ type: "defaults", id: req.id, config: api.defaultSpec(req.mode) });
      return;
    case "describe":
      post({ type: "describe", id: req.id, fields: api.describeSpec() });
      return;
    case "saveWeights": {
      const bytes = await requireSession().saveWeights();
      const buf = bytes.slice().buffer as ArrayBuffer;
      post({ type: "saveWeights", id: req.id, bytes: buf }, [buf]);
      return;
    }
    case "probe": {
      const t0 = performance.now();
      const core = req.backend === "cpu" ? api : (await chooseCore(api, req.backend, async () => api.defaultSpec("rl"))).api;
      const report = await core.runProbe(req.backend, req.config ?? null);
      post({ type: "probe", id: req.id, report, millis: performance.now() - t0 });
      return;
    }
  }
}

scope.onmessage = async (ev) => {
  const req = ev.data;
  if (hangInit && req.type === "init") {
    // Busy, so the heartbeat stops too: only the page's watchdog can notice.
    while (performance.now() >= 0) {
      /* stuck */
    }
  }
  try {
    await handle((await ready).api, req);
  } catch (e) {
    post({ type: "error", id: req.id, message: e instanceof Error ? e.message : String(e) });
  }
};
