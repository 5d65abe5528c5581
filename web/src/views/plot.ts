/**
 * Small canvas plotting helpers shared by the views: sizing a canvas for the screen's pixel
 * ratio, "nice" axis ticks, and a `Frame` that maps data to pixels and draws the axes.
 */
import { fmtShort } from "../format";

/** Ticks at 1/2/5 × 10^k covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const first = Math.ceil(lo / step - 1e-9) * step;
  const out: number[] = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

/** [min, max] of the finite values (padded when flat); null if there are none. */
export function extent(values: Iterable<number>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return null;
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - d, hi + d];
  }
  return [lo, hi];
}

/** Resize the backing store to the CSS size × devicePixelRatio; returns a context in CSS px. */
export function fitCanvas(canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; w: number; h: number } {
  const dpr = Math.min(2, globalThis.devicePixelRatio || 1);
  const w = Math.max(1, Math.round(canvas.clientWidth || canvas.width));
  const h = Math.max(1, Math.round(canvas.clientHeight || canvas.height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d")!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

/** Colours read from CSS custom properties on <body> (so presenter mode restyles plots). */
export function themeColour(name: string, fallback: string): string {
  if (typeof document === "undefined") return fallback;
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

/** A canvas font scaled by the page's `--plot-scale` (presenter mode enlarges plot text). */
export function plotFont(px: number, weight = 400): string {
  const scale = Number(themeColour("--plot-scale", "1")) || 1;
  return `${weight} ${Math.round(px * scale)}px system-ui, sans-serif`;
}

export interface FrameOptions {
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  /** Margins in CSS px: [top, right, bottom, left]. */
  margin?: [number, number, number, number];
}

/** A plotting rectangle with data ranges: `x(v)`, `y(v)` map data to CSS pixels. */
export class Frame {
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
  private readonly ly: (v: number) => number;

  constructor(
    readonly ctx: CanvasRenderingContext2D,
    w: number,
    h: number,
    readonly xr: [number, number],
    readonly yr: [number, number],
    readonly opts: FrameOptions = {},
  ) {
    const [mt, mr, mb, ml] = opts.margin ?? [10, 12, 30, 46];
    this.left = ml;
    this.top = mt;
    this.right = w - mr;
    this.bottom = h - mb;
    this.ly = opts.logY ? (v) => Math.log10(Math.max(v, 1e-30)) : (v) => v;
  }

  x(v: number): number {
    const [a, b] = this.xr;
    return this.left + ((v - a) / (b - a || 1)) * (this.right - this.left);
  }

  y(v: number): number {
    const a = this.ly(this.yr[0]);
    const b = this.ly(this.yr[1]);
    return this.bottom - ((this.ly(v) - a) / (b - a || 1)) * (this.bottom - this.top);
  }

  /** Grid lines, tick labels and axis titles. */
  drawAxes(): void {
    const { ctx } = this;
    const fg = themeColour("--muted", "#5b5b66");
    const grid = themeColour("--grid", "#ececf1");
    ctx.save();
    ctx.font = plotFont(11);
    ctx.fillStyle = fg;
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of niceTicks(this.xr[0], this.xr[1], Math.max(2, Math.floor((this.right - this.left) / 70)))) {
      const px = Math.round(this.x(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(px, this.top);
      ctx.lineTo(px, this.bottom);
      ctx.stroke();
      ctx.fillText(fmtShort(t), px, this.bottom + 4);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const yt = this.opts.logY ? logTicks(this.yr[0], this.yr[1]) : niceTicks(this.yr[0], this.yr[1], Math.max(2, Math.floor((this.bottom - this.top) / 35)));
    for (const t of yt) {
      const py = Math.round(this.y(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(this.left, py);
      ctx.lineTo(this.right, py);
      ctx.stroke();
      ctx.fillText(fmtShort(t), this.left - 5, py);
    }
    ctx.strokeStyle = fg;
    ctx.beginPath();
    ctx.moveTo(this.left + 0.5, this.top);
    ctx.lineTo(this.left + 0.5, this.bottom + 0.5);
    ctx.lineTo(this.right, this.bottom + 0.5);
    ctx.stroke();
    if (this.opts.xLabel) {
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      ctx.fillText(this.opts.xLabel, this.right, this.bottom + 28);
    }
    if (this.opts.yLabel) {
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(this.opts.yLabel, this.left + 4, this.top);
    }
    ctx.restore();
  }

  /** A polyline through (xs[i], ys[i]), skipping non-finite points. */
  line(xs: ArrayLike<number>, ys: ArrayLike<number>, colour: string, width = 2, dash: number[] = []): void {
    const { ctx } = this;
    ctx.save();
    ctx.beginPath();
    ctx.rect(this.left, this.top - 2, this.right - this.left, this.bottom - this.top + 4);
    ctx.clip();
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.lineJoin = "round";
    ctx.setLineDash(dash);
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      const okY = Number.isFinite(ys[i]) && (!this.opts.logY || ys[i] > 0);
      if (!Number.isFinite(xs[i]) || !okY) {
        pen = false;
        continue;
      }
      const px = this.x(xs[i]);
      const py = this.y(ys[i]);
      if (pen) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
      pen = true;
    }
    ctx.stroke();
    ctx.restore();
  }
}

/** Powers of ten within [lo, hi] (at least the two ends' decades). */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi > 0)) return [];
  const a = Math.ceil(Math.log10(lo) - 1e-9);
  const b = Math.floor(Math.log10(hi) + 1e-9);
  const out: number[] = [];
  const stride = Math.max(1, Math.ceil((b - a + 1) / 6));
  for (let k = a; k <= b; k += stride) out.push(10 ** k);
  return out;
}

/**
 * A legend drawn on the canvas (so exported PNGs keep it). With `maxRight`, an item that would
 * run past it starts a new row at `wrapX` (default `x`) instead of being clipped by the canvas
 * edge. Returns how many rows it took, so a caller can move its plot down to make room.
 */
export function drawLegend(
  ctx: CanvasRenderingContext2D,
  items: { label: string; colour: string; dash?: number[] }[],
  x: number,
  y: number,
  maxRight = Infinity,
  wrapX = x,
): number {
  ctx.save();
  ctx.font = plotFont(11);
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  let cx = x;
  let cy = y;
  let rows = 1;
  for (const it of items) {
    const width = 20 + ctx.measureText(it.label).width;
    if (cx + width > maxRight && cx > wrapX) {
      cx = wrapX;
      cy += LEGEND_ROW;
      rows += 1;
    }
    ctx.strokeStyle = it.colour;
    ctx.lineWidth = 2.5;
    ctx.setLineDash(it.dash ?? []);
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(cx + 16, cy);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = themeColour("--fg", "#1d1d1f");
    ctx.fillText(it.label, cx + 20, cy);
    cx += width + 8;
  }
  ctx.restore();
  return rows;
}

/** The height of one legend row, in CSS pixels. */
export const LEGEND_ROW = 14;

/**
 * A panel that does not apply to this experiment: its reason, centred and wrapped to the
 * canvas (the canvas must be cleared first, e.g. by `fitCanvas`).
 */
export function drawNotApplicable(ctx: CanvasRenderingContext2D, w: number, h: number, reason: string): void {
  ctx.save();
  ctx.fillStyle = themeColour("--muted", "#5b5b66");
  ctx.font = plotFont(13);
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  const lines: string[] = [];
  let line = "";
  for (const word of reason.split(/\s+/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(next).width > w - 24) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  const lh = Math.round(13 * 1.35 * (Number(themeColour("--plot-scale", "1")) || 1));
  lines.forEach((l, i) => ctx.fillText(l, w / 2, h / 2 + (i - (lines.length - 1) / 2) * lh));
  ctx.restore();
}
