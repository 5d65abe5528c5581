/**
 * Learning curves: one small line chart per group of metrics, fed with the `MetricPoint`s of
 * each `StepReport`. `update(points)` appends, `draw()` paints (call from rAF), `reset()` clears.
 * An experiment with several seeds draws the spec's own seed bold and every other seed as a
 * faint line of the same colour: the spread is what luck alone does to the curve.
 */
import type { MetricPoint } from "../protocol";
import { Frame, LEGEND_ROW, drawLegend, drawNotApplicable, extent, fitCanvas, themeColour, plotFont } from "./plot";

export interface SeriesSpec {
  key: Exclude<keyof MetricPoint, "step">;
  label: string;
  colour: string;
  dash?: number[];
  /** Shown in the legend while the series has no point yet (e.g. "no evaluation yet"). */
  pending?: string;
}

/** Keep at most this many points per series (every other point is dropped past it). */
export const MAX_POINTS = 1500;

/** Append (x, y) and thin the series by 2 when it passes `max` points. */
export function appendThinned(xs: number[], ys: number[], x: number, y: number, max = MAX_POINTS): void {
  xs.push(x);
  ys.push(y);
  if (xs.length > max) {
    let j = 0;
    for (let i = 0; i < xs.length; i += 2, j++) {
      xs[j] = xs[i];
      ys[j] = ys[i];
    }
    xs.length = j;
    ys.length = j;
  }
}

/** One seed's points of every series. */
interface SeedLines {
  xs: number[][];
  ys: number[][];
}

export class LineChart {
  private xs: number[][];
  private ys: number[][];
  /** The other seeds' lines (seed index ≥ 1). */
  private others = new Map<number, SeedLines>();
  private dirty = true;
  /** Why this chart does not apply (null: it does). */
  na: string | null = null;

  constructor(
    readonly canvas: HTMLCanvasElement,
    readonly title: string,
    readonly series: SeriesSpec[],
    readonly opts: { logYIfPositive?: boolean; xLabel?: string } = {},
  ) {
    this.xs = series.map(() => []);
    this.ys = series.map(() => []);
  }

  update(points: readonly MetricPoint[]): void {
    for (const p of points) {
      const seed = p.seedIndex ?? 0;
      let lines: SeedLines = { xs: this.xs, ys: this.ys };
      if (seed > 0) {
        let o = this.others.get(seed);
        if (!o) this.others.set(seed, (o = { xs: this.series.map(() => []), ys: this.series.map(() => []) }));
        lines = o;
      }
      this.series.forEach((s, i) => {
        const v = p[s.key];
        if (typeof v === "number") appendThinned(lines.xs[i], lines.ys[i], p.step, v);
      });
    }
    if (points.length) this.dirty = true;
  }

  reset(): void {
    this.xs = this.series.map(() => []);
    this.ys = this.series.map(() => []);
    this.others.clear();
    this.na = null;
    this.dirty = true;
  }

  /** This experiment has no such panel: show why instead of data (cleared by `reset`). */
  notApplicable(reason: string): void {
    this.na = reason;
    this.dirty = true;
  }

  /** Latest value of series `key`, if any. */
  last(key: SeriesSpec["key"]): number | undefined {
    const i = this.series.findIndex((s) => s.key === key);
    const ys = this.ys[i];
    return ys && ys.length ? ys[ys.length - 1] : undefined;
  }

  draw(force = false): void {
    if (!this.dirty && !force) return;
    this.dirty = false;
    const { ctx, w, h } = fitCanvas(this.canvas);
    if (this.na !== null) {
      ctx.fillStyle = themeColour("--fg", "#1d1d1f");
      ctx.font = plotFont(12, 600);
      ctx.textBaseline = "top";
      ctx.fillText(this.title, 8, 6);
      return drawNotApplicable(ctx, w, h, this.na);
    }
    const others = [...this.others.values()];
    const allX = this.xs.flat().concat(...others.map((o) => o.xs.flat()));
    const allY = this.ys.flat().concat(...others.map((o) => o.ys.flat()));
    ctx.fillStyle = themeColour("--fg", "#1d1d1f");
    ctx.font = plotFont(12, 600);
    ctx.textBaseline = "top";
    ctx.fillText(this.title, 8, 6);
    // How many points each series has (for tests and screen readers; the legend says the same).
    this.canvas.dataset.points = JSON.stringify(Object.fromEntries(this.series.map((s, i) => [s.key, this.ys[i].length])));
    const drawn = others.filter((o) => o.ys.some((y) => y.length > 0)).length;
    this.canvas.dataset.seedLines = String(drawn);
    const present = this.series.filter((s, i) => this.ys[i].length > 0 || s.pending);
    const legend = (present.length ? present : this.series).map((s) => ({ label: s.label, colour: s.colour, dash: s.dash }));
    if (drawn > 0) legend.push({ label: `faint: ${drawn} other seed${drawn > 1 ? "s" : ""}`, colour: themeColour("--muted", "#5b5b66"), dash: undefined });
    // A narrow chart wraps its legend under the title rather than clip it; the plot moves down.
    const rows = drawLegend(ctx, legend, 8 + ctx.measureText(this.title).width + 14, 13, w - 8, 8);
    this.canvas.dataset.legendRows = String(rows);
    // Series still waiting for their first point say so, in the plot's top right corner.
    const pending = this.series.filter((s, i) => this.ys[i].length === 0 && s.pending).map((s) => `${s.label}: ${s.pending}`);
    const xr = extent(allX) ?? [0, 1];
    let yr = extent(allY) ?? [0, 1];
    const logY = !!this.opts.logYIfPositive && allY.length > 0 && allY.every((v) => v > 0 || !Number.isFinite(v));
    if (logY) yr = [Math.min(...allY.filter((v) => v > 0)), Math.max(...allY.filter(Number.isFinite))];
    if (logY && yr[0] === yr[1]) yr = [yr[0] / 2, yr[1] * 2];
    const f = new Frame(ctx, w, h, xr, yr, { logY, xLabel: this.opts.xLabel ?? "step", margin: [26 + (rows - 1) * LEGEND_ROW, 12, 30, 48] });
    f.drawAxes();
    if (allX.length === 0) {
      ctx.fillStyle = themeColour("--muted", "#5b5b66");
      ctx.font = plotFont(12);
      ctx.textAlign = "center";
      ctx.fillText("waiting for data…", (f.left + f.right) / 2, (f.top + f.bottom) / 2);
      ctx.textAlign = "left";
      return;
    }
    ctx.save();
    ctx.globalAlpha = 0.3;
    for (const o of others) this.series.forEach((s, i) => f.line(o.xs[i], o.ys[i], s.colour, 1, s.dash));
    ctx.restore();
    this.series.forEach((s, i) => f.line(this.xs[i], this.ys[i], s.colour, 1.8, s.dash));
    if (pending.length) {
      ctx.fillStyle = themeColour("--muted", "#5b5b66");
      ctx.font = plotFont(11);
      ctx.textAlign = "right";
      ctx.textBaseline = "top";
      pending.forEach((t, i) => {
        const y = f.top + 3 + i * 14;
        const tw = ctx.measureText(t).width;
        // On a plate of the plot's background, so a curve under it does not garble it.
        ctx.fillStyle = themeColour("--plot-bg", "#f9f9fc");
        ctx.fillRect(f.right - 8 - tw, y - 1, tw + 8, 14);
        ctx.fillStyle = themeColour("--muted", "#5b5b66");
        ctx.fillText(t, f.right - 4, y);
      });
      ctx.textAlign = "left";
    }
  }
}
