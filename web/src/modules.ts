/**
 * The wasm modules of the core and which one to load (docs/architecture.md, "Four wasm
 * modules"). The site ships `modules.json` (written by web/build.mjs):
 * - `cpu`: CPU only, plain SIMD128 — for browsers without relaxed SIMD;
 * - `relaxed`: the same with fused multiply-add kernels (relaxed SIMD), where the browser has it;
 * - `threads`: `relaxed` with a rayon pool of Web Workers (wasm threads), where the page is
 *   cross-origin isolated (COOP/COEP headers, or the service-worker fallback) and the browser
 *   has wasm threads;
 * - `webgpu`: burn's WebGPU runtime too (about 3.5× the download), loaded only when WebGPU is
 *   chosen, or when `auto` finds a hardware adapter.
 * Pure (no fetch, no DOM): the workers load what this picks.
 */

export type ModuleKind = "cpu" | "relaxed" | "threads" | "webgpu";
export type CpuModuleKind = "cpu" | "relaxed" | "threads";

/** What the browser can run, from feature detection (wasm-feature-detect, `crossOriginIsolated`). */
export interface CpuSupport {
  relaxedSimd: boolean;
  /** Wasm threads and a cross-origin isolated page (SharedArrayBuffer). */
  threads: boolean;
}

export interface ModuleEntry {
  js: string;
  wasm: string;
  bytes: number;
  gzipBytes: number;
}

export type WebgpuEntry = ({ status: "ready" } & ModuleEntry) | { status: "building" } | { status: "failed"; message: string };

export interface Manifest {
  build: string;
  cpu: ModuleEntry;
  relaxed: ModuleEntry | null;
  threads: ModuleEntry | null;
  webgpu: WebgpuEntry | null;
}

/** What a site without `modules.json` has (a build from before the split, or a dev build). */
export const FALLBACK_MANIFEST: Manifest = {
  build: "unknown",
  cpu: { js: "rfm-playground.js", wasm: "rfm-playground_bg.wasm", bytes: 0, gzipBytes: 0 },
  relaxed: null,
  threads: null,
  webgpu: null,
};

/** Read `modules.json`'s text; anything malformed falls back to the CPU module alone. */
export function parseManifest(text: string | null): Manifest {
  if (!text) return FALLBACK_MANIFEST;
  try {
    const m = JSON.parse(text) as Partial<Manifest>;
    if (!m || typeof m !== "object" || typeof m.cpu?.js !== "string") return FALLBACK_MANIFEST;
    return { build: String(m.build ?? "unknown"), cpu: m.cpu, relaxed: m.relaxed ?? null, threads: m.threads ?? null, webgpu: m.webgpu ?? null };
  } catch {
    return FALLBACK_MANIFEST;
  }
}

/**
 * The CPU module to load: the most capable one the browser and the site both have — `threads`
 * (needs relaxed SIMD, wasm threads and cross-origin isolation), then `relaxed`, then `cpu`.
 * `force` (`?module=` on the page) picks one by name when the site has it and the browser can
 * run it.
 */
export function pickCpuModule(m: Manifest, can: CpuSupport, force?: string | null): CpuModuleKind {
  const runs = {
    threads: !!m.threads && can.threads && can.relaxedSimd,
    relaxed: !!m.relaxed && can.relaxedSimd,
    cpu: true,
  };
  if ((force === "cpu" || force === "relaxed" || force === "threads") && runs[force]) return force;
  return runs.threads ? "threads" : runs.relaxed ? "relaxed" : "cpu";
}

/** The manifest entry of a CPU module kind. */
export function cpuEntry(m: Manifest, kind: CpuModuleKind): ModuleEntry {
  return (kind === "threads" ? m.threads : kind === "relaxed" ? m.relaxed : null) ?? m.cpu;
}

export const WEBGPU_BUILDING = "The WebGPU module is still building";

/** The WebGPU module's entry, or why it cannot be loaded (in words for the page). */
export function webgpuModule(m: Manifest): { entry: ModuleEntry } | { unavailable: string } {
  const w = m.webgpu;
  if (!w) return { unavailable: "This site was built without the WebGPU module" };
  if (w.status === "building") return { unavailable: WEBGPU_BUILDING };
  if (w.status === "failed") return { unavailable: `The WebGPU module failed to build (${w.message})` };
  return { entry: w };
}
