/**
 * Estimator variance vs t: one line per estimator on a log axis, from the worker's
 * `VarianceCurve`. `update(curve)`, `draw()`, `reset()`.
 */
import type { VarianceCurve } from "../protocol";
import { seriesColour } from "../colormap";
import { Frame, drawLegend, drawNotApplicable, extent, fitCanvas, themeColour, plotFont } from "./plot";

/** Stable colour per estimator name so the legend does not reshuffle. */
const ORDER = ["noise", "grad", "rfm"];

export function estimatorColour(name: string): string {
  const i = ORDER.indexOf(name);
  return seriesColour(i >= 0 ? i : ORDER.length + (name.length % 5));
}

export class VarianceChart {
  private curve: VarianceCurve | null = null;
  private dirty = true;
  /** Why this panel does not apply (null: it does). */
  na: string | null = null;
  /** The estimator in use (drawn thicker). */
  current = "";

  constructor(readonly canvas: HTMLCanvasElement) {}

  update(curve: VarianceCurve): void {
    for (const [name, v] of Object.entries(curve.byEstimator)) {
      if (v.length !== curve.t.length) throw new Error(`variance: ${name} has ${v.length} values for ${curve.t.length} times`);
    }
    this.curve = curve;
    this.dirty = true;
  }

  reset(): void {
    this.curve = null;
    this.na = null;
    this.dirty = true;
  }

  /** This experiment has no such panel: show why instead of data (cleared by `reset`). */
  notApplicable(reason: string): void {
    this.na = reason;
    this.dirty = true;
  }

  draw(force = false): void {
    if (!this.dirty && !force) return;
    this.dirty = false;
    const { ctx, w, h } = fitCanvas(this.canvas);
    if (this.na !== null) return drawNotApplicable(ctx, w, h, this.na);
    const names = this.curve ? Object.keys(this.curve.byEstimator) : [];
    drawLegend(ctx, names.map((n) => ({ label: n === this.current ? `${n} (in use)` : n, colour: estimatorColour(n) })), 8, 12);
    const ys = names.flatMap((n) => this.curve!.byEstimator[n]).filter((v) => v > 0);
    const yr = extent(ys) ?? [1e-3, 1];
    const f = new Frame(ctx, w, h, [0, 1], yr[0] === yr[1] ? [yr[0] / 2, yr[1] * 2] : yr, {
      logY: true,
      xLabel: "t (0 = noise, 1 = action)",
      yLabel: "",
      margin: [24, 12, 30, 48],
    });
    f.drawAxes();
    if (!this.curve) {
      ctx.fillStyle = themeColour("--muted", "#5b5b66");
      ctx.font = plotFont(12);
      ctx.textAlign = "center";
      ctx.fillText("waiting for data…", (f.left + f.right) / 2, (f.top + f.bottom) / 2);
      return;
    }
    for (const n of names) f.line(this.curve.t, this.curve.byEstimator[n], estimatorColour(n), n === this.current ? 3 : 1.6);
  }
}
