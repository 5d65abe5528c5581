/**
 * The flow itself: sample paths from noise (t = 0) to action (t = 1). 2-D actions: paths in
 * the action plane, coloured by t; 1-D actions: action against t. `update(paths)`, `reset()`.
 */
import type { FlowPaths } from "../protocol";
import { viridis } from "../colormap";
import { Frame, drawLegend, drawNotApplicable, extent, fitCanvas, themeColour, plotFont } from "./plot";

export class FlowPathsView {
  private data: FlowPaths | null = null;
  private dirty = true;
  /** Why this panel does not apply (null: it does). */
  na: string | null = null;

  constructor(readonly canvas: HTMLCanvasElement) {}

  update(p: FlowPaths): void {
    for (const path of p.paths) {
      if (path.length !== p.t.length) throw new Error(`paths: ${path.length} points for ${p.t.length} times`);
    }
    this.data = p;
    this.dirty = true;
  }

  reset(): void {
    this.data = null;
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
    const p = this.data;
    const d = p?.paths[0]?.[0]?.length ?? 2;
    if (!p || p.paths.length === 0) {
      new Frame(ctx, w, h, [0, 1], [-1, 1], { xLabel: "t" }).drawAxes();
      ctx.fillStyle = themeColour("--muted", "#5b5b66");
      ctx.font = plotFont(12);
      ctx.fillText("waiting for data…", w / 2 - 40, h / 2);
      return;
    }
    const rgb = (t: number) => {
      const [r, g, b] = viridis(t);
      return `rgb(${r},${g},${b})`;
    };
    if (d === 1) {
      const yr = extent(p.paths.flatMap((path) => path.map((q) => q[0]))) ?? [-1, 1];
      const f = new Frame(ctx, w, h, [p.t[0], p.t[p.t.length - 1]], yr, { xLabel: "t (0 = noise, 1 = action)", margin: [24, 12, 30, 48] });
      f.drawAxes();
      ctx.globalAlpha = 0.55;
      for (const path of p.paths) f.line(p.t, path.map((q) => q[0]), themeColour("--policy", "#1f6feb"), 1.2);
      ctx.globalAlpha = 1;
      drawLegend(ctx, [{ label: "one line per sample", colour: themeColour("--policy", "#1f6feb") }], 54, 12);
      return;
    }
    const xr = extent(p.paths.flatMap((path) => path.map((q) => q[0]))) ?? [-1, 1];
    const yr = extent(p.paths.flatMap((path) => path.map((q) => q[1]))) ?? [-1, 1];
    // Same scale on both axes so shapes are not distorted.
    const span = Math.max(xr[1] - xr[0], yr[1] - yr[0]) * 1.05;
    const cx = (xr[0] + xr[1]) / 2;
    const cy = (yr[0] + yr[1]) / 2;
    const side = Math.min(w - 60, h - 54);
    const ml = (w - side) / 2;
    const f = new Frame(ctx, w, h, [cx - span / 2, cx + span / 2], [cy - span / 2, cy + span / 2], {
      margin: [24, w - ml - side, h - 24 - side, ml],
    });
    f.drawAxes();
    ctx.save();
    ctx.globalAlpha = 0.5;
    ctx.lineWidth = 1;
    for (const path of p.paths) {
      for (let j = 1; j < path.length; j++) {
        ctx.strokeStyle = rgb(p.t[j]);
        ctx.beginPath();
        ctx.moveTo(f.x(path[j - 1][0]), f.y(path[j - 1][1]));
        ctx.lineTo(f.x(path[j][0]), f.y(path[j][1]));
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 0.9;
    for (const path of p.paths) {
      const end = path[path.length - 1];
      ctx.fillStyle = rgb(1);
      ctx.beginPath();
      ctx.arc(f.x(end[0]), f.y(end[1]), 2, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.restore();
    drawLegend(ctx, [
      { label: "t = 0 (noise)", colour: rgb(0) },
      { label: "t = 1 (action)", colour: rgb(1) },
    ], 8, 12);
  }
}
