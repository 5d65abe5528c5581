/**
 * The environment, drawn from the worker's `EnvSnapshot`: pendulum rod, mountain-car track
 * with car and goal flag, multigoal plane with goals and recent trajectories. Also marks the
 * state the density panel looks at. `update(snapshot)`, `setProbe(state)`, `reset()`; on the
 * multigoal plane, `onPick(x, y)` fires when the user clicks a point.
 */
import type { EnvSnapshot } from "../protocol";
import { fmtAction } from "../format";
import { drawNotApplicable, fitCanvas, themeColour, plotFont } from "./plot";

type Multigoal = Extract<EnvSnapshot, { env: "multigoal" }>;

/** Past multigoal episodes kept for drawing. */
export const KEEP_TRAJECTORIES = 8;

export class EnvView {
  private snap: EnvSnapshot | null = null;
  private probe: number[] | null = null;
  private history: [number, number][][] = [];
  private dirty = true;
  /** Why this panel does not apply (null: it does). */
  na: string | null = null;
  /** Plane transform of the last multigoal draw (for clicks). */
  private plane: { x0: number; y0: number; s: number; snap: Multigoal } | null = null;
  onPick: (x: number, y: number) => void = () => {};

  constructor(readonly canvas: HTMLCanvasElement) {
    canvas.addEventListener("click", (ev) => {
      const pt = this.toWorld(ev.offsetX, ev.offsetY);
      if (pt) this.onPick(pt[0], pt[1]);
    });
  }

  /** CSS-pixel point on the canvas → multigoal plane coordinates (null off-plane/other envs). */
  toWorld(px: number, py: number): [number, number] | null {
    const p = this.plane;
    if (!p || this.snap?.env !== "multigoal") return null;
    const x = p.snap.xlim[0] + (px - p.x0) / p.s;
    const y = p.snap.ylim[1] - (py - p.y0) / p.s;
    if (x < p.snap.xlim[0] || x > p.snap.xlim[1] || y < p.snap.ylim[0] || y > p.snap.ylim[1]) return null;
    return [x, y];
  }

  update(s: EnvSnapshot): void {
    const prev = this.snap;
    if (prev?.env === "multigoal" && s.env === "multigoal" && s.trajectory.length < prev.trajectory.length && prev.trajectory.length > 1) {
      this.history.push(prev.trajectory);
      if (this.history.length > KEEP_TRAJECTORIES) this.history.shift();
    }
    this.snap = s;
    this.dirty = true;
  }

  setProbe(state: number[] | null): void {
    this.probe = state;
    this.dirty = true;
  }

  reset(): void {
    this.snap = null;
    this.history = [];
    this.plane = null;
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
    ctx.fillStyle = themeColour("--plot-bg", "#f7f7fb");
    ctx.fillRect(0, 0, w, h);
    if (this.na !== null) return drawNotApplicable(ctx, w, h, this.na);
    const s = this.snap;
    if (!s) {
      ctx.fillStyle = themeColour("--muted", "#5b5b66");
      ctx.font = plotFont(13);
      ctx.textAlign = "center";
      ctx.fillText("the environment appears when training starts", w / 2, h / 2);
      ctx.textAlign = "left";
      return;
    }
    if (s.env === "pendulum") this.drawPendulum(ctx, w, h, s);
    else if (s.env === "mountain-car") this.drawCar(ctx, w, h, s);
    else this.drawMultigoal(ctx, w, h, s);
    ctx.fillStyle = themeColour("--muted", "#5b5b66");
    ctx.font = plotFont(11);
    ctx.fillText(`episode step ${s.step}`, 8, h - 8);
  }

  private drawPendulum(ctx: CanvasRenderingContext2D, w: number, h: number, s: Extract<EnvSnapshot, { env: "pendulum" }>): void {
    const cx = w / 2;
    const cy = h / 2;
    const r = Math.min(w, h) * 0.36;
    const tip = (th: number): [number, number] => [cx - r * Math.sin(th), cy - r * Math.cos(th)];
    ctx.strokeStyle = themeColour("--grid", "#ececf1");
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, Math.PI * 2);
    ctx.stroke();
    if (this.probe) {
      const [px, py] = tip(this.probe[0]);
      ctx.strokeStyle = themeColour("--target", "#e8590c");
      ctx.setLineDash([5, 4]);
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.lineTo(px, py);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    const [tx, ty] = tip(s.theta);
    ctx.strokeStyle = themeColour("--fg", "#1d1d1f");
    ctx.lineCap = "round";
    ctx.lineWidth = Math.max(6, r * 0.12);
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(tx, ty);
    ctx.stroke();
    ctx.lineCap = "butt";
    ctx.fillStyle = themeColour("--fg", "#1d1d1f");
    ctx.beginPath();
    ctx.arc(cx, cy, 5, 0, Math.PI * 2);
    ctx.fill();
    // Torque: an arc whose length is proportional to |u| / maxTorque (positive = counter-clockwise).
    // No torque yet after a reset (lastU null): no arc.
    const frac = s.lastU === null ? 0 : Math.max(-1, Math.min(1, s.lastU / (s.maxTorque || 1)));
    if (Math.abs(frac) > 0.01) {
      const rr = r * 0.35;
      const a0 = -Math.PI / 2;
      const a1 = a0 - frac * Math.PI * 0.9;
      ctx.strokeStyle = themeColour("--policy", "#1f6feb");
      ctx.lineWidth = 4;
      ctx.beginPath();
      ctx.arc(cx, cy, rr, Math.min(a0, a1), Math.max(a0, a1));
      ctx.stroke();
      const ex = cx + rr * Math.cos(a1);
      const ey = cy + rr * Math.sin(a1);
      ctx.fillStyle = themeColour("--policy", "#1f6feb");
      ctx.beginPath();
      ctx.arc(ex, ey, 5, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.fillStyle = themeColour("--muted", "#5b5b66");
    ctx.font = plotFont(11);
    ctx.fillText(`θ ${s.theta.toFixed(2)}  θ̇ ${s.thetaDot.toFixed(2)}  torque ${fmtAction(s.lastU)}`, 8, 16);
  }

  private drawCar(ctx: CanvasRenderingContext2D, w: number, h: number, s: Extract<EnvSnapshot, { env: "mountain-car" }>): void {
    const hs = s.track.map((p) => p[1]);
    const ylo = Math.min(...hs);
    const yhi = Math.max(...hs, s.goalHeight);
    const m = 24;
    const sx = (w - 2 * m) / (s.maxPosition - s.minPosition);
    const sy = (h - 2 * m - 30) / (yhi - ylo || 1);
    const px = (x: number) => m + (x - s.minPosition) * sx;
    const py = (y: number) => h - m - (y - ylo) * sy;
    ctx.strokeStyle = themeColour("--fg", "#1d1d1f");
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    s.track.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
    // Goal flag.
    const gx = px(s.goalPosition);
    const gy = py(s.goalHeight);
    ctx.strokeStyle = themeColour("--fg", "#1d1d1f");
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(gx, gy);
    ctx.lineTo(gx, gy - 34);
    ctx.stroke();
    ctx.fillStyle = themeColour("--good", "#2f9e44");
    ctx.beginPath();
    ctx.moveTo(gx, gy - 34);
    ctx.lineTo(gx + 20, gy - 28);
    ctx.lineTo(gx, gy - 22);
    ctx.fill();
    if (this.probe) {
      const k = this.nearestHeight(s, this.probe[0]);
      ctx.strokeStyle = themeColour("--target", "#e8590c");
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 2;
      ctx.strokeRect(px(this.probe[0]) - 11, py(k) - 16, 22, 12);
      ctx.setLineDash([]);
    }
    // Car: a body tilted along the track slope.
    const x = s.position;
    const dx = 0.01;
    const slope = (this.nearestHeight(s, x + dx) - this.nearestHeight(s, x - dx)) / (2 * dx);
    const ang = Math.atan2(slope * sy, sx);
    ctx.save();
    ctx.translate(px(x), py(s.height));
    ctx.rotate(-ang);
    ctx.fillStyle = themeColour("--policy", "#1f6feb");
    ctx.fillRect(-16, -18, 32, 13);
    ctx.fillStyle = themeColour("--fg", "#1d1d1f");
    for (const wx of [-9, 9]) {
      ctx.beginPath();
      ctx.arc(wx, -4, 4, 0, Math.PI * 2);
      ctx.fill();
    }
    // Force arrow.
    // No force yet after a reset (lastForce null): no arrow.
    const f = s.lastForce === null ? 0 : Math.max(-1, Math.min(1, s.lastForce));
    if (Math.abs(f) > 0.01) {
      ctx.strokeStyle = themeColour("--target", "#e8590c");
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(0, -26);
      ctx.lineTo(f * 30, -26);
      ctx.stroke();
    }
    ctx.restore();
    ctx.fillStyle = themeColour("--muted", "#5b5b66");
    ctx.font = plotFont(11);
    ctx.fillText(`position ${s.position.toFixed(2)}  velocity ${s.velocity.toFixed(3)}  force ${fmtAction(s.lastForce)}`, 8, 16);
  }

  /** Track height at x, read off the snapshot's polyline (drawing only). */
  private nearestHeight(s: Extract<EnvSnapshot, { env: "mountain-car" }>, x: number): number {
    const t = s.track;
    for (let i = 1; i < t.length; i++) {
      if (t[i][0] >= x) {
        const [x0, y0] = t[i - 1];
        const [x1, y1] = t[i];
        return y0 + ((x - x0) / (x1 - x0 || 1)) * (y1 - y0);
      }
    }
    return t.length ? t[t.length - 1][1] : 0;
  }

  private drawMultigoal(ctx: CanvasRenderingContext2D, w: number, h: number, s: Multigoal): void {
    const m = 14;
    const s_ = Math.min((w - 2 * m) / (s.xlim[1] - s.xlim[0]), (h - 2 * m) / (s.ylim[1] - s.ylim[0]));
    const x0 = (w - s_ * (s.xlim[1] - s.xlim[0])) / 2;
    const y0 = (h - s_ * (s.ylim[1] - s.ylim[0])) / 2;
    this.plane = { x0, y0, s: s_, snap: s };
    const px = (x: number) => x0 + (x - s.xlim[0]) * s_;
    const py = (y: number) => y0 + (s.ylim[1] - y) * s_;
    ctx.fillStyle = themeColour("--card", "#ffffff");
    ctx.fillRect(x0, y0, s_ * (s.xlim[1] - s.xlim[0]), s_ * (s.ylim[1] - s.ylim[0]));
    ctx.strokeStyle = themeColour("--border", "#d9d9e0");
    ctx.strokeRect(x0 + 0.5, y0 + 0.5, s_ * (s.xlim[1] - s.xlim[0]), s_ * (s.ylim[1] - s.ylim[0]));
    ctx.strokeStyle = themeColour("--grid", "#ececf1");
    ctx.beginPath();
    ctx.moveTo(px(0), y0);
    ctx.lineTo(px(0), py(s.ylim[0]));
    ctx.moveTo(x0, py(0));
    ctx.lineTo(px(s.xlim[1]), py(0));
    ctx.stroke();
    for (const [gx, gy] of s.goals) {
      ctx.fillStyle = themeColour("--good-soft", "rgba(47,158,68,0.25)");
      ctx.beginPath();
      ctx.arc(px(gx), py(gy), Math.max(4, s.goalRadius * s_), 0, Math.PI * 2);
      ctx.fill();
      ctx.fillStyle = themeColour("--good", "#2f9e44");
      ctx.beginPath();
      ctx.arc(px(gx), py(gy), 4, 0, Math.PI * 2);
      ctx.fill();
    }
    const path = (pts: [number, number][]) => {
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
      ctx.stroke();
    };
    ctx.lineWidth = 1.5;
    this.history.forEach((tr, i) => {
      ctx.strokeStyle = themeColour("--policy", "#1f6feb");
      ctx.globalAlpha = 0.15 + (0.35 * (i + 1)) / this.history.length;
      path(tr);
    });
    ctx.globalAlpha = 1;
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = themeColour("--policy", "#1f6feb");
    path(s.trajectory);
    ctx.fillStyle = themeColour("--fg", "#1d1d1f");
    ctx.beginPath();
    ctx.arc(px(s.position[0]), py(s.position[1]), 5, 0, Math.PI * 2);
    ctx.fill();
    if (this.probe) {
      const cx = px(this.probe[0]);
      const cy = py(this.probe[1]);
      ctx.strokeStyle = themeColour("--target", "#e8590c");
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.moveTo(cx - 9, cy);
      ctx.lineTo(cx + 9, cy);
      ctx.moveTo(cx, cy - 9);
      ctx.lineTo(cx, cy + 9);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(cx, cy, 6, 0, Math.PI * 2);
      ctx.stroke();
    }
  }
}
