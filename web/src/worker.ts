/**
 * The training worker: loads the wasm core and answers the page's requests (see protocol.ts),
 * so the page never blocks on training. It holds at most one `Session`. Every failure becomes
 * an `{type: "error"}` reply carrying the request id; nothing here computes algorithm numbers —
 * it times the steps (updates/s) and forwards what the core returns.
 */
import { resolveBackend, type AdapterFacts } from "./backend";
import { FALLBACK_FIELDS, fallbackDefaults } from "./specFallback";
import type {
  BackendChoice,
  DeviceInfo,
  DensityView,
  FieldError,
  FieldInfo,
  FlowPaths,
  Mode,
  PanelStatus,
  PlaygroundConfig,
  ProbeReport,
  Reply,
  Request,
  StepReport,
  VarianceCurve,
} from "./protocol";

/** The wasm-bindgen `Session` class (crate/src/wasm.rs). */
interface WasmSession {
  device(): DeviceInfo;
  config(): PlaygroundConfig;
  step(n: number): Promise<Omit<StepReport, "updatesPerSec" | "fallback">>;
  density(samples: number | undefined, state: Float64Array | undefined): Promise<DensityView>;
  paths(count: number, state: Float64Array | undefined): Promise<FlowPaths>;
  variance(state: Float64Array | undefined): Promise<VarianceCurve>;
  saveWeights(): Promise<Uint8Array>;
  loadWeights(bytes: Uint8Array): void;
  resumeFrom(bytes: Uint8Array): number;
  fallBackToCpu(): number;
  injectFault(kind: string): void;
  /** Which panels apply to this experiment (absent in cores built before it existed). */
  panels?(): PanelStatus[];
  free(): void;
}

interface Wasm {
  default: (input?: unknown) => Promise<unknown>;
  runProbe(backend: string, config: unknown): Promise<ProbeReport>;
  defaultConfig(): PlaygroundConfig;
  /** The full default config of a mode (absent in cores built before it existed). */
  defaultSpec?(mode: Mode): PlaygroundConfig;
  /** Every control of the Experiment card (absent in cores built before it existed). */
  describeSpec?(): FieldInfo[];
  validateConfig(config: unknown): FieldError[];
  encodeShare(config: unknown): string;
  decodeShare(fragment: string): PlaygroundConfig;
  Session: { create(config: unknown, backend: string): Promise<WasmSession> };
}

const scope = self as unknown as {
  postMessage(msg: Reply, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<Request>) => void) | null;
};

const post = (msg: Reply, transfer?: Transferable[]) => scope.postMessage(msg, transfer ?? []);

async function loadWasm(): Promise<Wasm> {
  // The glue is emitted by Trunk next to this bundle; load it at run time by URL.
  const url = new URL("./rfm-playground.js", import.meta.url).href;
  const api = (await import(/* @vite-ignore */ url)) as Wasm;
  await api.default();
  return api;
}

const ready = loadWasm();
// A heartbeat for the page's watchdog: it stops when this worker dies or is terminated.
setInterval(() => scope.postMessage({ type: "heartbeat" }), 1000);

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
ready.then(
  () => post({ type: "ready" }),
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

async function handle(api: Wasm, req: Request): Promise<void> {
  switch (req.type) {
    case "init": {
      const problems = api.validateConfig(req.config);
      if (problems.length) {
        post({ type: "error", id: req.id, message: problems.map((p) => p.message).join("; "), fields: problems });
        return;
      }
      // `auto` on a software adapter (SwiftShader, llvmpipe, lavapipe) trains on the CPU: it
      // is faster there. The wasm core is told the resolved backend.
      const choice = resolveBackend(req.backend satisfies BackendChoice, req.backend === "auto" ? await adapterFacts().catch(() => null) : null);
      const next = await api.Session.create(req.config, choice.backend);
      session?.free();
      session = next;
      lastStep = 0;
      const device = next.device();
      if (choice.reason && device.kind === "cpu") device.fallbackReason = choice.reason;
      post({ type: "initialized", id: req.id, device, config: next.config(), panels: next.panels?.() ?? [] });
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
      post({ type: "stepped", id: req.id, report });
      return;
    }
    case "resume": {
      const step = requireSession().resumeFrom(new Uint8Array(req.bytes));
      lastStep = step;
      post({ type: "resumed", id: req.id, step });
      return;
    }
    case "injectFault":
      requireSession().injectFault(req.kind);
      post({ type: "faultInjected", id: req.id });
      return;
    case "density":
      post({ type: "density", id: req.id, density: await requireSession().density(req.query.samples, f64(req.query.state)) });
      return;
    case "paths":
      post({ type: "paths", id: req.id, paths: await requireSession().paths(req.count, f64(req.state)) });
      return;
    case "variance":
      post({ type: "variance", id: req.id, curve: await requireSession().variance(f64(req.state)) });
      return;
    case "validate":
      post({ type: "validated", id: req.id, errors: api.validateConfig(req.config) });
      return;
    case "encodeShare":
      post({ type: "shared", id: req.id, fragment: api.encodeShare(req.config) });
      return;
    case "decodeShare":
      post({ type: "decoded", id: req.id, config: api.decodeShare(req.fragment) });
      return;
    case "defaults":
      post({ type: "defaults", id: req.id, config: api.defaultSpec ? api.defaultSpec(req.mode) : fallbackDefaults(api.defaultConfig(), req.mode) });
      return;
    case "describe":
      post({ type: "described", id: req.id, fields: api.describeSpec ? api.describeSpec() : FALLBACK_FIELDS });
      return;
    case "saveWeights": {
      const bytes = await requireSession().saveWeights();
      const buf = bytes.slice().buffer as ArrayBuffer;
      post({ type: "weights", id: req.id, bytes: buf }, [buf]);
      return;
    }
    case "loadWeights":
      requireSession().loadWeights(new Uint8Array(req.bytes));
      // The session goes on from step 0 with these weights.
      lastStep = 0;
      post({ type: "weightsLoaded", id: req.id });
      return;
    case "probe": {
      const t0 = performance.now();
      const report = await api.runProbe(req.backend, req.config ?? null);
      post({ type: "probeResult", id: req.id, report, millis: performance.now() - t0 });
      return;
    }
  }
}

scope.onmessage = async (ev) => {
  const req = ev.data;
  try {
    await handle(await ready, req);
  } catch (e) {
    post({ type: "error", id: req.id, message: e instanceof Error ? e.message : String(e) });
  }
};
