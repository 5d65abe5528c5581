/**
 * `auto` on a hardware WebGPU adapter: measure both backends on the current experiment
 * (`calibrate` in the core, a fraction of a second each, in the worker) and train on the faster,
 * saying both figures on the badge ("WebGPU 41 upd/s · CPU 28 upd/s → WebGPU"). The figures are
 * remembered per browser, adapter and experiment size (a size class per factor of 2 in work,
 * the seeds trained at once included),
 * so a reload does not measure again. Pure: the worker measures and stores.
 */
import type { ExperimentSpec } from "./protocol";

/** Seconds each backend is timed for (after one untimed update that builds its kernels). */
export const CALIBRATION_SECONDS = 0.5;

export interface Calibration {
  webgpu: number;
  cpu: number;
  /** `Date.now()` when measured. */
  at: number;
}

/** The record key: adapter and size class (mode, agent, log2 of the work of one update). */
export function calibrationKey(adapter: string, c: ExperimentSpec): string {
  const width = c.hidden * c.hidden;
  // Several seeds are measured stepped together, as they train (their readbacks overlap on WebGPU).
  const perUpdate = c.mode === "sampler" ? width * c.batch * c.k * c.odeSteps : width * c.batch * c.k * c.candidates * c.odeSteps;
  const work = perUpdate * Math.max(1, c.seeds ?? 1);
  return `calibration:${adapter}:${c.mode}:${c.agent}:${Math.round(Math.log2(Math.max(1, work)))}`;
}

/** A stored record, checked (anything else reads as "not measured"). */
export function parseCalibration(v: unknown): Calibration | null {
  const c = v as Partial<Calibration> | null;
  const ok = (x: unknown) => typeof x === "number" && Number.isFinite(x) && x >= 0;
  return c && ok(c.webgpu) && ok(c.cpu) && ok(c.at) ? { webgpu: c.webgpu!, cpu: c.cpu!, at: c.at! } : null;
}

const rate = (x: number) => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));

/** The faster backend (the CPU on a tie), and the badge's words for it. */
export function decide(c: Calibration, remembered: boolean): { backend: "webgpu" | "cpu"; text: string } {
  const backend = c.webgpu > c.cpu ? "webgpu" : "cpu";
  const text = `WebGPU ${rate(c.webgpu)} upd/s · CPU ${rate(c.cpu)} upd/s → ${backend === "webgpu" ? "WebGPU" : "CPU"}`;
  return { backend, text: remembered ? `${text} (measured earlier in this browser)` : text };
}
