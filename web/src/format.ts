/** Small, pure formatting helpers for the views (no DOM). */
import type { DeviceInfo } from "./protocol";

/** One line naming the backend that ran, e.g. `"WebGPU: … "` or `"CPU (flex …) — reason"`. */
export function describeBackend(d: DeviceInfo): string {
  if (d.kind === "webgpu") return d.adapter;
  return `CPU (${d.adapter})${d.fallbackReason ? ` — ${d.fallbackReason}` : ""}`;
}

/** A loss curve summary: `"0.5012 → 0.0123 in 50 steps"`. */
export function describeLoss(initial: number, final: number, steps: number): string {
  return `${fmt(initial)} → ${fmt(final)} in ${steps} steps`;
}

/** 4 significant decimals for ordinary magnitudes, exponent form for tiny/huge or non-finite shown as-is. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return x.toFixed(4);
}
