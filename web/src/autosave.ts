/**
 * Autosave: the current experiment (config, step count, learning-curve points and the weights
 * file the worker writes for "Save weights") kept in IndexedDB, so a reload or a crashed tab
 * resumes where it was. Every record carries a CRC-32 over its content; a record that fails
 * the check (or is not a record at all) is reported as damaged, and the page discards it.
 *
 * The pure parts (`crc32`, `seal`, `verify`) are tested in web/test/autosave.test.ts; the
 * IndexedDB store fails soft (no storage, e.g. a private window, just means no autosave).
 */
import type { MetricPoint, PlaygroundConfig } from "./protocol";

/** How often (ms) the page autosaves while training. */
export const AUTOSAVE_MS = 10_000;
/** Curve points kept in a save (the newest). */
export const MAX_SAVED_POINTS = 20_000;
export const AUTOSAVE_VERSION = 1;

export interface SavedExperiment {
  version: number;
  /** `Date.now()` when it was written. */
  savedAt: number;
  config: PlaygroundConfig;
  step: number;
  metrics: MetricPoint[];
  /** The worker's weights file (JSON bytes, `saveWeights`). */
  weights: ArrayBuffer;
  /** CRC-32 of everything above (`checksumOf`). */
  checksum: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE, as zlib) of the byte chunks, in order. */
export function crc32(...chunks: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const bytes of chunks) for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The checksum of a save's content (its metadata as JSON, then the weight bytes). */
export function checksumOf(s: Omit<SavedExperiment, "checksum">): number {
  const head = JSON.stringify([s.version, s.savedAt, s.config, s.step, s.metrics]);
  return crc32(new TextEncoder().encode(head), new Uint8Array(s.weights));
}

/** A save record for this content (the newest MAX_SAVED_POINTS curve points). */
export function seal(content: Omit<SavedExperiment, "checksum" | "version">): SavedExperiment {
  const body = { version: AUTOSAVE_VERSION, ...content, metrics: content.metrics.slice(-MAX_SAVED_POINTS) };
  return { ...body, checksum: checksumOf(body) };
}

/** A stored value checked: the save, or why it cannot be used. */
export function verify(raw: unknown): { ok: SavedExperiment } | { damaged: string } {
  const r = raw as Partial<SavedExperiment> | null;
  if (typeof r !== "object" || r === null) return { damaged: "it is not a saved experiment" };
  if (r.version !== AUTOSAVE_VERSION) return { damaged: `unknown save version ${String(r.version)}` };
  if (
    typeof r.savedAt !== "number" ||
    typeof r.step !== "number" ||
    typeof r.config !== "object" ||
    r.config === null ||
    !Array.isArray(r.metrics) ||
    !(r.weights instanceof ArrayBuffer) ||
    typeof r.checksum !== "number"
  ) {
    return { damaged: "parts of it are missing" };
  }
  const s = r as SavedExperiment;
  if (checksumOf(s) !== s.checksum) return { damaged: "its checksum does not match its content" };
  return { ok: s };
}

const DB = "rfm-playground";
const STORE = "autosave";
const KEY = "current";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === "undefined") return reject(new Error("this browser has no IndexedDB"));
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB could not be opened"));
  });
}

async function run<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = f(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  } finally {
    db.close();
  }
}

/** The stored experiment as found (unchecked), or null when there is none. */
export async function readSaved(): Promise<unknown> {
  return (await run("readonly", (s) => s.get(KEY))) ?? null;
}

export async function writeSaved(s: SavedExperiment): Promise<void> {
  await run("readwrite", (st) => st.put(s, KEY));
}

export async function clearSaved(): Promise<void> {
  await run("readwrite", (st) => st.delete(KEY));
}

/** Another small record in the same store (e.g. the backend calibration), or null. */
export async function readRecord(key: string): Promise<unknown> {
  return (await run("readonly", (s) => s.get(key))) ?? null;
}

export async function writeRecord(key: string, value: unknown): Promise<void> {
  await run("readwrite", (st) => st.put(value, key));
}
