/**
 * Loading the core's wasm modules in a worker (the training worker and the bench worker):
 * `modules.json`, feature detection, instantiation, and the threaded module's pool. What to
 * load is decided by modules.ts (pure).
 */
import { relaxedSimd, threads } from "wasm-feature-detect";
import { cpuEntry, parseManifest, pickCpuModule, type CpuModuleKind, type CpuSupport, type Manifest, type ModuleEntry } from "./modules";

/** The exports every module has for loading (crate/src/wasm.rs). */
export interface CoreModule {
  default: (input?: unknown) => Promise<unknown>;
  /** Only in the threaded module. */
  initThreadPool?: (n: number) => Promise<unknown>;
}

/** The site's list of modules (`modules.json`, next to the bundles; read afresh each time). */
export async function fetchManifest(): Promise<Manifest> {
  const r = await fetch(new URL("./modules.json", import.meta.url), { cache: "no-store" }).catch(() => null);
  return parseManifest(r && r.ok ? await r.text() : null);
}

/**
 * Firefox (153 ESR, headless, here): the threaded module now and then never finishes loading —
 * a page stays at "loading the trainer" with the worker's thread blocked, which no timeout in
 * the worker can end (seen in about one of 8–16 page loads under load; not in Chromium). Until
 * that is understood, Firefox gets the relaxed-SIMD module unless `?module=threads` asks.
 */
export function threadsUnreliableHere(userAgent: string): boolean {
  return /\bFirefox\//.test(userAgent);
}

/** What this browser and page can run (`force`: the `?module=` asked for). */
export async function cpuSupport(force?: string | null): Promise<CpuSupport> {
  const isolated = (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const [relaxed, thr] = await Promise.all([relaxedSimd().catch(() => false), isolated ? threads().catch(() => false) : false]);
  const trusted = force === "threads" || !threadsUnreliableHere(navigator.userAgent);
  return { relaxedSimd: relaxed, threads: isolated && thr && trusted };
}

/** Threads for the threaded module's pool: one per core the browser reports, at most 8. */
export function poolSize(): number {
  return Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
}

/**
 * How long the threaded module's pool may take to start (well under a second normally): a pool
 * whose start never finishes (one pool worker never reports ready, seen in Firefox) gives way to
 * the relaxed-SIMD module after this.
 */
export const POOL_START_MS = 8000;

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/** Modules instantiated in this worker, by glue file (a module is one instance per worker). */
const instances = new Map<string, Promise<CoreModule>>();

/**
 * Import a module's glue by URL (emitted next to the bundles) and instantiate it, once per
 * worker; `pool` threads start the threaded module's pool (global to the module, so once too).
 */
export function loadModule<T extends CoreModule>(entry: ModuleEntry, pool = 0): Promise<T> {
  let p = instances.get(entry.js);
  if (!p) {
    p = (async () => {
      const api = (await import(/* @vite-ignore */ new URL(`./${entry.js}`, import.meta.url).href)) as T;
      await api.default();
      if (pool > 0) await withTimeout(api.initThreadPool!(pool), POOL_START_MS, "the thread pool did not start");
      return api;
    })();
    p.catch(() => instances.delete(entry.js));
    instances.set(entry.js, p);
  }
  return p as Promise<T>;
}

/**
 * The CPU module for this browser (or `force`, `?module=`), instantiated; the threaded one with
 * its pool started (if the pool cannot start, the relaxed module instead).
 */
export async function loadCpuModule<T extends CoreModule>(force?: string | null): Promise<{ api: T; kind: CpuModuleKind }> {
  const manifest = await fetchManifest();
  const kind = pickCpuModule(manifest, await cpuSupport(force), force);
  try {
    return { api: await loadModule<T>(cpuEntry(manifest, kind), kind === "threads" ? poolSize() : 0), kind };
  } catch (e) {
    if (kind !== "threads") throw e;
    console.warn(`the threaded module's pool did not start (${String(e)}); using the relaxed-SIMD module`);
    const fallback = pickCpuModule({ ...manifest, threads: null }, await cpuSupport(force));
    return { api: await loadModule<T>(cpuEntry(manifest, fallback)), kind: fallback };
  }
}
