/**
 * The density panel: the policy's density next to the normalised target exp(Q/λ) on the
 * worker's grid, and the KL between them. 2-D actions: two heat maps with one colour scale;
 * 1-D actions: two overlaid curves. `update(view)`, `reset()`.
 *
 * The KL element carries the number in `data-kl` (and the first value after a reset in
 * `data-kl-initial`) so tests and screen readers can read it; the uniform-policy yardstick
 * (KL of uniform actions against the same target) is in `data-kl-uniform` on its own element.
 * An experiment with several seeds gets a picker: one seed, or all of them pooled (the mean of
 * their histograms beside the mean of their targets, with each seed's own KL).
 */
import type { DensityView } from "../protocol";
import { maxOf } from "../colormap";
import { fmtKl } from "../format";
import { HeatMap } from "./heatmap";
import { Frame, drawLegend, drawNotApplicable, fitCanvas, themeColour } from "./plot";

export interface DensityElements {
  maps: HTMLElement;
  policyCanvas: HTMLCanvasElement;
  targetCanvas: HTMLCanvasElement;
  curveCanvas: HTMLCanvasElement;
  kl: HTMLElement;
  klUniform: HTMLElement;
  where: HTMLElement;
  /** Which seed to show, when the experiment trains several (hidden otherwise). */
  seedPicker: HTMLSelectElement;
  /** Each seed's KL, when every seed is pooled. */
  klBySeed: HTMLElement;
}

/** The density query's seed fields for a picker value (`all` or a seed index). */
export function seedQuery(value: string): { seed?: number; allSeeds?: boolean } {
  if (value === "all") return { allSeeds: true };
  const i = Number(value);
  return Number.isInteger(i) && i > 0 ? { seed: i } : {};
}

/** Cell centres of a 1-D grid axis. */
export function cellCentres(ax: { min: number; max: number; n: number }): number[] {
  const dx = (ax.max - ax.min) / ax.n;
  return Array.from({ length: ax.n }, (_, i) => ax.min + (i + 0.5) * dx);
}

export class DensityPanel {
  private policy: HeatMap;
  private target: HeatMap;
  private view: DensityView | null = null;
  private initialKl: number | null = null;
  private dirty = true;
  /** Why this panel does not apply (null: it does). */
  na: string | null = null;

  /** The user picked another seed (the app refreshes the view). */
  onSeedPick: () => void = () => {};

  constructor(private readonly el: DensityElements) {
    this.policy = new HeatMap(el.policyCanvas, "Policy");
    this.target = new HeatMap(el.targetCanvas, "Target exp(Q/λ)");
    el.seedPicker.addEventListener("change", () => this.onSeedPick());
  }

  /**
   * The experiment trains `count` seeds, `first`, `first + 1`, …: offer each and all of them
   * pooled (hidden for one seed). The pick is kept when it still exists.
   */
  setSeeds(count: number, first: number): void {
    const pick = this.el.seedPicker;
    const was = pick.value;
    pick.replaceChildren();
    if (count > 1) {
      for (let i = 0; i < count; i++) pick.append(new Option(`seed ${first + i}`, String(i)));
      pick.append(new Option(`all ${count} seeds (pooled)`, "all"));
    }
    pick.value = [...pick.options].some((o) => o.value === was) ? was : "0";
    pick.hidden = count <= 1;
    (pick.labels ?? []).forEach((l) => (l.hidden = count <= 1));
  }

  /** The density query's seed fields for the current pick. */
  seedQuery(): { seed?: number; allSeeds?: boolean } {
    return this.el.seedPicker.hidden ? {} : seedQuery(this.el.seedPicker.value);
  }

  /** Canvases currently shown (for PNG export). */
  canvases(): HTMLCanvasElement[] {
    return this.view?.grid.dims === 1 ? [this.el.curveCanvas] : [this.el.policyCanvas, this.el.targetCanvas];
  }

  update(view: DensityView): void {
    const cells = view.grid.x.n * (view.grid.dims === 2 ? (view.grid.y?.n ?? 0) : 1);
    if (view.policy.length !== cells || view.target.length !== cells) {
      throw new Error(`density: ${view.policy.length}/${view.target.length} masses for ${cells} cells`);
    }
    this.view = view;
    const two = view.grid.dims === 2;
    this.el.maps.dataset.dims = String(view.grid.dims);
    this.el.policyCanvas.hidden = !two;
    this.el.targetCanvas.hidden = !two;
    this.el.curveCanvas.hidden = two;
    if (this.initialKl === null && Number.isFinite(view.kl)) {
      this.initialKl = view.kl;
      this.el.kl.dataset.klInitial = String(view.kl);
    }
    this.el.kl.dataset.kl = String(view.kl);
    this.el.kl.textContent = fmtKl(view.kl);
    this.el.klUniform.dataset.klUniform = String(view.klUniform);
    this.el.klUniform.textContent = Number.isFinite(view.klUniform) ? `(uniform actions: ${fmtKl(view.klUniform)})` : "";
    this.el.where.textContent = view.state
      ? `at state [${view.state.map((v) => v.toFixed(2)).join(", ")}]`
      : "over the target's box";
    const bySeed = view.klBySeed;
    this.el.klBySeed.dataset.klBySeed = JSON.stringify(bySeed);
    this.el.klBySeed.textContent = bySeed.length
      ? `pooled over ${bySeed.length} seeds; each seed's own KL ${fmtKl(Math.min(...bySeed))} – ${fmtKl(Math.max(...bySeed))}`
      : "";
    this.el.maps.dataset.seed = view.seedIndex === null ? "all" : String(view.seedIndex);
    this.dirty = true;
  }

  reset(): void {
    this.view = null;
    this.initialKl = null;
    delete this.el.kl.dataset.kl;
    delete this.el.kl.dataset.klInitial;
    this.el.kl.textContent = "—";
    delete this.el.klUniform.dataset.klUniform;
    this.el.klUniform.textContent = "";
    this.el.where.textContent = "";
    delete this.el.klBySeed.dataset.klBySeed;
    this.el.klBySeed.textContent = "";
    this.na = null;
    this.el.policyCanvas.hidden = false;
    this.el.targetCanvas.hidden = false;
    this.el.curveCanvas.hidden = true;
    this.policy.reset();
    this.target.reset();
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
    if (this.na !== null) {
      this.el.policyCanvas.hidden = true;
      this.el.targetCanvas.hidden = true;
      this.el.curveCanvas.hidden = false;
      const { ctx, w, h } = fitCanvas(this.el.curveCanvas);
      return drawNotApplicable(ctx, w, h, this.na);
    }
    const v = this.view;
    if (!v) {
      this.policy.draw();
      this.target.draw();
      return;
    }
    if (v.grid.dims === 2) {
      const vmax = maxOf(v.policy, v.target);
      this.policy.update(v.grid, v.policy, vmax);
      this.target.update(v.grid, v.target, vmax);
      return;
    }
    const { ctx, w, h } = fitCanvas(this.el.curveCanvas);
    const xs = cellCentres(v.grid.x);
    const vmax = maxOf(v.policy, v.target);
    const f = new Frame(ctx, w, h, [v.grid.x.min, v.grid.x.max], [0, vmax * 1.08 || 1], {
      xLabel: "action",
      margin: [26, 12, 30, 48],
    });
    f.drawAxes();
    const pol = themeColour("--policy", "#1f6feb");
    const tgt = themeColour("--target", "#e8590c");
    f.line(xs, v.target, tgt, 2.5, [6, 4]);
    f.line(xs, v.policy, pol, 2.5);
    drawLegend(ctx, [
      { label: "policy", colour: pol },
      { label: "target exp(Q/λ)", colour: tgt, dash: [6, 4] },
    ], 54, 12);
  }
}
