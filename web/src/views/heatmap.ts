/**
 * A heat map of masses on a 2-D grid (row-major, x fastest, row 0 = lowest y), drawn with
 * a shared colour scale so two maps can be compared. `update(grid, values, vmax)`, `reset()`.
 */
import type { GridSpec } from "../protocol";
import { massToRgba } from "../colormap";
import { fitCanvas, niceTicks, themeColour, plotFont } from "./plot";
import { fmtShort } from "../format";

export class HeatMap {
  private image: HTMLCanvasElement | null = null;
  private grid: GridSpec | null = null;

  constructor(readonly canvas: HTMLCanvasElement, readonly label: string) {}

  update(grid: GridSpec, values: ArrayLike<number>, vmax: number): void {
    if (grid.dims !== 2 || !grid.y) throw new Error(`heat map needs a 2-D grid, got dims=${grid.dims}`);
    const nx = grid.x.n;
    const ny = grid.y.n;
    const rgba = massToRgba(values, nx, ny, vmax);
    const img = this.image ?? document.createElement("canvas");
    img.width = nx;
    img.height = ny;
    img.getContext("2d")!.putImageData(new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, nx, ny), 0, 0);
    this.image = img;
    this.grid = grid;
    this.draw();

  }

  reset(): void {
    this.image = null;
    this.grid = null;
    this.draw();
  }

  draw(): void {
    const { ctx, w, h } = fitCanvas(this.canvas);
    const m = { t: 20, r: 6, b: 20, l: 30 };
    const side = Math.max(10, Math.min(w - m.l - m.r, h - m.t - m.b));
    const x0 = m.l;
    const y0 = m.t;
    ctx.fillStyle = themeColour("--fg", "#1d1d1f");
    ctx.font = plotFont(12, 600);
    ctx.textBaseline = "top";
    ctx.fillText(this.label, x0, 2);
    if (!this.image || !this.grid?.y) {
      ctx.strokeStyle = themeColour("--border", "#d9d9e0");
      ctx.strokeRect(x0 + 0.5, y0 + 0.5, side, side);
      return;
    }
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.image, x0, y0, side, side);
    ctx.font = plotFont(10);
    ctx.fillStyle = themeColour("--muted", "#5b5b66");
    const { x, y } = this.grid as Required<GridSpec>;
    ctx.textAlign = "center";
    for (const t of niceTicks(x.min, x.max, 4)) {
      const px = x0 + ((t - x.min) / (x.max - x.min)) * side;
      ctx.fillText(fmtShort(t), px, y0 + side + 4);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of niceTicks(y.min, y.max, 4)) {
      const py = y0 + side - ((t - y.min) / (y.max - y.min)) * side;
      ctx.fillText(fmtShort(t), x0 - 4, py);
    }
    ctx.textAlign = "left";
  }
}
