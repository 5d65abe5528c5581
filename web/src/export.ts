/**
 * Exports: PNG of a panel, CSV of the learning curves, JSON of the config, weights files.
 * `metricsToCsv` and `configToJson` are pure; the rest touch the DOM only when called.
 */
import type { MetricPoint, PlaygroundConfig } from "./protocol";

/** Columns of the metrics CSV, in order. */
export const CSV_COLUMNS: readonly (keyof MetricPoint)[] = [
  "step",
  "episodeReturn",
  "evalReturn",
  "criticLoss",
  "actorLoss",
  "ess",
  "seedIndex",
];

/**
 * One header line and one line per point; unmeasured values are empty cells. `seedIndex` is
 * which of the experiment's seeds a point is of (0, the spec's own seed, when it has one).
 */
export function metricsToCsv(points: readonly MetricPoint[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const p of points) {
    const row = { ...p, seedIndex: p.seedIndex ?? 0 };
    lines.push(CSV_COLUMNS.map((c) => (row[c] === undefined || row[c] === null ? "" : String(row[c]))).join(","));
  }
  return lines.join("\n") + "\n";
}

/** Pretty JSON of the config, as shared links carry it. */
export function configToJson(config: PlaygroundConfig): string {
  return JSON.stringify(config, null, 2) + "\n";
}

/** A file name stem from the config, e.g. `rfm-rl-multigoal-seed0`. */
export function fileStem(config: PlaygroundConfig): string {
  const task = config.mode === "rl" ? `${config.env}-${config.agent}` : config.target;
  return `rfm-${config.mode}-${task}-${config.estimator.replace(":", "")}-seed${config.seed}`;
}

/** Offer a blob as a download. */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * All canvases of a panel side by side on one white canvas with the panel's title on top
 * (so a PNG of the density panel holds both maps).
 */
export function composePanel(title: string, canvases: HTMLCanvasElement[]): HTMLCanvasElement {
  const visible = canvases.filter((c) => c.width > 0 && c.height > 0 && c.offsetParent !== null);
  const list = visible.length > 0 ? visible : canvases;
  const pad = 16;
  const titleH = 36;
  const w = list.reduce((s, c) => s + c.width, 0) + pad * (list.length + 1);
  const h = Math.max(1, ...list.map((c) => c.height)) + titleH + pad;
  const out = document.createElement("canvas");
  out.width = w;
  out.height = h;
  const ctx = out.getContext("2d")!;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#1d1d1f";
  ctx.font = "600 18px system-ui, sans-serif";
  ctx.fillText(title, pad, 24);
  let x = pad;
  for (const c of list) {
    ctx.drawImage(c, x, titleH);
    x += c.width + pad;
  }
  return out;
}

/** PNG download of a panel's canvases. */
export function exportPng(title: string, canvases: HTMLCanvasElement[], name: string): void {
  composePanel(title, canvases).toBlob((blob) => {
    if (blob) download(blob, name);
  }, "image/png");
}
