/** Messages between the `?bench` page (bench.ts) and its worker (benchWorker.ts). */
export interface BenchJob {
  id: number;
  /** `cpu` (flex in wasm) or `webgpu`. */
  backend: string;
  /** The module to run in: `auto` / `cpu` / `relaxed` (CPU backend), `webgpu`. */
  module: string;
  /** `playground` or `released`. */
  config: string;
  /** Seconds per figure (each runs at least one iteration). */
  seconds: number;
  /** Comma-separated subset of `updates,actions,estimator`. */
  measure: string;
  /** Agents stepped together for `updates` (per-agent figure). */
  seeds: number;
  /** Spec fields patched onto the config (a JSON object, as `rfm bench --overrides`), or none. */
  overrides: string | null;
}

export type BenchReply =
  | { type: "ready"; loadMs: number }
  | { type: "result"; id: number; result: Record<string, unknown>; wallMs: number; gpu?: GpuCounts }
  | { type: "error"; id: number; message: string };

/** WebGPU calls made during one job (see benchWorker.ts). */
export interface GpuCounts {
  submits: number;
  dispatches: number;
  mapAsync: number;
  /** The most readbacks (`mapAsync`) in flight at once during the job. */
  maxInFlight: number;
}
