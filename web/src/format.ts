/** Small, pure formatting helpers for the views (no DOM). */

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

/** A KL in nats for the panel: `"0.123 nats"`, 3 significant digits. */
export function fmtKl(kl: number): string {
  if (!Number.isFinite(kl)) return "—";
  return `${kl.toPrecision(3)} nats`;
}

/** Compact number for axis ticks and readouts: 3 significant digits, k/M for large. */
export function fmtShort(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a === 0) return "0";
  if (a >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(x / 1e3).toPrecision(3)}k`;
  if (a < 1e-2) return x.toExponential(1);
  return String(Number(x.toPrecision(3)));
}

/** Throughput readout, e.g. `"123 steps/s"` (one decimal below 10). */
export function fmtRate(perSec: number): string {
  if (!Number.isFinite(perSec) || perSec < 0) return "—";
  return `${perSec < 10 ? perSec.toFixed(1) : Math.round(perSec)} steps/s`;
}

/** The env's last action for the readout: 2 decimals, "—" before the first action (null). */
export function fmtAction(u: number | null): string {
  return u === null || !Number.isFinite(u) ? "—" : u.toFixed(2);
}
