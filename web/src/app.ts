/**
 * The training loop and its views. One request is in flight at a time (the client queues);
 * while playing, the loop asks for `speed` steps, then refreshes the density / paths /
 * variance views at a gentler pace. Drawing happens in requestAnimationFrame, never in a
 * message handler, so the page stays responsive.
 *
 * `init()` rebuilds the worker's session from the State (config + backend) and resets the
 * views — the TF-playground `reset()`.
 */
import { AUTOSAVE_MS, seal, writeSaved } from "./autosave";
import { StaleError, WorkerClient, WorkerDeadError, WorkerError } from "./client";
import type { DeviceInfo, FaultKind, MetricPoint, Panel, PanelStatus, PlaygroundConfig, StepReport } from "./protocol";
import type { State } from "./state";
import type { DensityPanel } from "./views/densityPanel";
import type { EnvView } from "./views/envView";
import type { FlowPathsView } from "./views/flowPaths";
import type { LineChart } from "./views/curves";
import type { VarianceChart } from "./views/varianceChart";

export interface Views {
  env: EnvView;
  density: DensityPanel;
  paths: FlowPathsView;
  variance: VarianceChart;
  curves: LineChart[];
}

/** What the app tells the page chrome (status line, backend badge, counters, buttons). */
export interface Chrome {
  status(text: string, state: "loading" | "ready" | "running" | "paused" | "invalid" | "error"): void;
  backend(d: DeviceInfo): void;
  progress(step: number, updatesPerSec: number): void;
  playing(on: boolean): void;
  /** Show (or with null hide) the alert line; `append` keeps a message already shown. */
  notice(message: string | null, append?: boolean): void;
  /** The backend in use changed by itself (a lost device moved training to the CPU). */
  backendChoice?(choice: "cpu"): void;
  /** Which panels apply to this experiment (the page marks the others' cards). */
  panels?(panels: PanelStatus[]): void;
}

/** An experiment to continue in the next `init`: weights file, step count and curve points. */
export interface Carry {
  weights: ArrayBuffer;
  step: number;
  metrics: MetricPoint[];
  /** What to tell the user once it is resumed. */
  notice: string;
}

/** How often (ms) the slower views refresh while playing. */
export const REFRESH_MS = { density: 600, paths: 1500, variance: 4000 } as const;
/** A view is refreshed at most every COST_FACTOR × its last duration (the density matters most). */
export const COST_FACTOR = { density: 2, paths: 4, variance: 4 } as const;
/** Paths to sample for the flow view. */
export const PATH_COUNT = 64;
/** Curve points kept for the CSV export and the autosave (the newest; memory stays bounded). */
export const MAX_METRICS = 100_000;

export class App {
  /** The metric points since the last init, newest MAX_METRICS (the CSV export). */
  metrics: MetricPoint[] = [];
  step = 0;
  /** Training steps per second seen by the page (NaN until measured). */
  rate = Number.NaN;
  private playingNow = false;
  /** The user's intent (kept across re-inits): train whenever a session is ready. */
  private wantPlay = false;
  private looping = false;
  private generation = 0;
  private initialized = false;
  private last = { density: 0, paths: 0, variance: 0 };
  /** How long each view request took last time (ms): a slow view is refreshed less often. */
  private cost = { density: 0, paths: 0, variance: 0 };
  private probesQueued = false;
  /** The next animation frame's draw, while one is scheduled (resolves once it has drawn). */
  private frame: Promise<void> | null = null;
  private firstFrame = false;
  /** The last init failed and said so in the notice (cleared by the next good init). */
  private startFailed = false;
  /** Panels that do not apply to this experiment (from the worker's `init` reply), with why. */
  private notApplicable = new Map<Panel, string>();
  /** Continued by the next `init` (a reload's autosave, or the last good weights after a fault). */
  carry: Carry | null = null;
  /** Training paused itself on a fault (cleared by play or a new experiment). */
  faulted = false;
  /** Autosave on (off only when the storage failed). */
  autosave = true;
  private lastSaveAt = 0;
  private savedStep = -1;

  constructor(
    private client: WorkerClient,
    readonly state: State,
    private readonly views: Views,
    private readonly chrome: Chrome,
  ) {}

  /**
   * The worker died and the page made a new one: talk to it from now on. Training stops until
   * the next `init` (which the page calls with the autosave as `carry`).
   */
  replaceClient(client: WorkerClient): void {
    this.client = client;
    this.generation++;
    this.initialized = false;
    this.setPlaying(false);
  }

  /** Whether training runs, or will run as soon as the session (re)initialises. */
  get playing(): boolean {
    return this.wantPlay;
  }

  get ready(): boolean {
    return this.initialized;
  }

  /** Start afresh: forget the carried experiment, then `init`. */
  reset(autoplay: boolean): Promise<boolean> {
    this.carry = null;
    return this.init(autoplay);
  }

  /**
   * (Re)build the session from the state and reset every view; a `carry` (autosave, or the
   * last good weights after a fault) is continued when its networks fit. Resolves when
   * initialised.
   */
  async init(autoplay: boolean): Promise<boolean> {
    const gen = ++this.generation;
    const carry = this.carry;
    this.carry = null;
    this.faulted = false;
    this.savedStep = -1;
    this.lastSaveAt = 0;
    delete document.body.dataset.fault;
    delete document.body.dataset.finished;
    delete document.body.dataset.fallback;
    delete document.body.dataset.autosavedStep;
    this.resetViews();
    this.chrome.status("building the networks…", "loading");
    try {
      const r = await this.client.request({ type: "init", config: this.state.config, backend: this.state.backend });
      startupMark("sessionReady");
      if (gen !== this.generation) return false;
      this.chrome.backend(r.device);
      this.applyPanels(r.panels ?? []);
      if (this.startFailed) this.chrome.notice(null);
      this.startFailed = false;
      if (carry) await this.continueFrom(carry, gen);
      if (gen !== this.generation) return false;
      this.initialized = true;
      document.body.dataset.run = String(gen);
      this.chrome.status("ready", "paused");
      // The first density gives the KL's starting value; the other views follow while training.
      await this.refreshProbes(true, ["density"]);
      startupMark("firstDensity");
      if (gen !== this.generation) return false;
      this.last.paths = 0;
      this.last.variance = 0;
      if (autoplay || this.wantPlay) this.play();
      else await this.refreshProbes(true);
      return true;
    } catch (e) {
      if (e instanceof StaleError) return false;
      this.fail(e);
      return false;
    }
  }

  /** Load the carried weights at their step count and put their curve points back. */
  private async continueFrom(carry: Carry, gen: number): Promise<void> {
    try {
      const r = await this.client.request({ type: "resume", bytes: carry.weights.slice(0) });
      if (gen !== this.generation) return;
      this.step = r.step;
      this.metrics = carry.metrics.filter((p) => p.step <= r.step);
      this.views.curves.forEach((c) => c.update(this.metrics));
      this.chrome.progress(r.step, Number.NaN);
      this.chrome.notice(carry.notice);
    } catch (e) {
      if (e instanceof StaleError) throw e;
      const why = e instanceof Error ? e.message : String(e);
      this.chrome.notice(`The previous weights could not be carried over (${why}); this experiment starts afresh.`);
    }
  }

  /** Mark the panels that do not apply (their views say why) and stop asking for their data. */
  private applyPanels(panels: PanelStatus[]): void {
    this.notApplicable.clear();
    for (const p of panels) {
      if (p.available) continue;
      const reason = p.reason ?? "Not used by this experiment";
      this.notApplicable.set(p.panel, reason);
      if (p.panel === "density") this.views.density.notApplicable(reason);
      else if (p.panel === "paths") this.views.paths.notApplicable(reason);
      else if (p.panel === "variance") this.views.variance.notApplicable(reason);
      else if (p.panel === "env") this.views.env.notApplicable(reason);
      else if (p.panel === "ess") this.views.curves.find((c) => c.series.some((s) => s.key === "ess"))?.notApplicable(reason);
    }
    this.chrome.panels?.(panels);
    this.requestDraw();
  }

  /** Test hook: the worker's next step meets `kind`. */
  async injectFault(kind: FaultKind): Promise<void> {
    await this.client.request({ type: "injectFault", kind });
  }

  play(): void {
    this.wantPlay = true;
    this.faulted = false;
    this.carry = null;
    if (!this.initialized || this.playingNow) return;
    this.setPlaying(true);
    this.chrome.status("training…", "running");
    if (!this.looping) void this.loop(this.generation);
  }

  pause(): void {
    this.wantPlay = false;
    if (!this.playingNow) return;
    this.setPlaying(false);
    if (this.initialized) this.chrome.status("paused", "paused");
  }

  toggle(): void {
    if (this.wantPlay) this.pause();
    else this.play();
  }

  /** Exactly one training step (RL: one env step; sampler: one update), then refresh every view. */
  async stepOnce(): Promise<void> {
    return this.trainExactly(1);
  }

  /**
   * `steps` training steps in one request, then every view refreshed (paused only). Resolves
   * when the views are up to date; `body[data-refreshed-step]` then holds the step count (tests
   * wait on it: it makes "paused after N steps" a well-defined frame).
   */
  async trainExactly(steps: number): Promise<void> {
    if (!this.initialized || this.playingNow) return;
    const gen = this.generation;
    try {
      await this.trainBatch(gen, steps);
      if (gen !== this.generation) return;
      await this.refreshProbes(true);
      // Set once the refreshed views are on screen (drawing waits for an animation frame), so
      // a test reading pixels after it sees this step's frame, not the one before.
      await this.requestDraw();
      if (gen === this.generation) document.body.dataset.refreshedStep = String(this.step);
    } catch (e) {
      if (!(e instanceof StaleError)) this.fail(e);
    }
  }

  /** Ask for fresh density/paths/variance (e.g. the user moved the probe state). */
  probeChanged(): void {
    this.views.env.setProbe(this.state.queryState());
    this.last = { density: 0, paths: 0, variance: 0 };
    this.cost = { density: 0, paths: 0, variance: 0 };
    this.requestDraw();
    if (!this.playingNow && this.initialized && !this.probesQueued) {
      this.probesQueued = true;
      void this.refreshProbes(true).finally(() => (this.probesQueued = false));
    }
  }

  /** The worker's weights as a file's bytes. */
  async saveWeights(): Promise<ArrayBuffer> {
    const r = await this.client.request({ type: "saveWeights" });
    return r.bytes;
  }

  /**
   * Open a checkpoint file (a page's "Save weights" or `rfm train --save`): the worker runs its
   * experiment — its settings, weights and step count — and the curves start afresh at that
   * step, so two runs never share a chart. Resolves with the file's settings for the controls.
   */
  async loadWeights(bytes: ArrayBuffer): Promise<PlaygroundConfig> {
    const gen = ++this.generation;
    this.carry = null;
    this.faulted = false;
    this.resetViews();
    this.chrome.status("opening the checkpoint…", "loading");
    const r = await this.client.request({ type: "open", bytes, backend: this.state.backend }, [bytes]);
    if (gen !== this.generation) return r.config;
    this.state.config = r.config;
    this.views.density.setSeeds(r.config.seeds, r.config.seed);
    this.views.variance.current = r.config.estimator;
    this.step = r.step;
    this.chrome.backend(r.device);
    this.applyPanels(r.panels);
    this.chrome.progress(r.step, Number.NaN);
    this.initialized = true;
    document.body.dataset.run = String(gen);
    this.chrome.status("ready", "paused");
    await this.refreshProbes(true);
    return r.config;
  }

  /** Forget the running experiment's numbers and blank every view. */
  private resetViews(): void {
    this.client.invalidate();
    this.initialized = false;
    this.setPlaying(false);
    this.metrics = [];
    this.step = 0;
    this.rate = Number.NaN;
    this.firstFrame = false;
    this.views.env.reset();
    this.views.density.reset();
    this.views.density.setSeeds(this.state.config.seeds, this.state.config.seed);
    this.views.paths.reset();
    this.views.variance.reset();
    this.views.variance.current = this.state.config.estimator;
    this.views.curves.forEach((c) => c.reset());
    this.notApplicable.clear();
    this.chrome.panels?.([]);
    this.views.env.setProbe(this.state.queryState());
    this.chrome.progress(0, Number.NaN);
    this.requestDraw();
  }

  private setPlaying(on: boolean): void {
    this.playingNow = on;
    this.chrome.playing(on);
  }

  private async loop(gen: number): Promise<void> {
    this.looping = true;
    try {
      while (this.playingNow && gen === this.generation) {
        await this.trainBatch(gen);
        if (gen !== this.generation || !this.playingNow) break;
        await this.refreshProbes(false);
        if (performance.now() - this.lastSaveAt > AUTOSAVE_MS) await this.autosaveNow(gen);
      }
    } catch (e) {
      if (!(e instanceof StaleError) && gen === this.generation) this.fail(e);
    } finally {
      this.looping = false;
    }
  }

  private async trainBatch(gen: number, steps = this.state.speed): Promise<void> {
    const t0 = performance.now();
    const r = await this.client.request({ type: "step", steps });
    if (gen !== this.generation) return;
    this.take(r.report, (performance.now() - t0) / 1000);
  }

  private take(report: StepReport, seconds: number): void {
    // Throughput as the page sees it (round trip included), smoothed over a few batches.
    const done = report.step - this.step;
    if (done > 0 && seconds > 0) {
      const r = done / seconds;
      this.rate = Number.isFinite(this.rate) ? 0.7 * this.rate + 0.3 * r : r;
    }
    this.step = report.step;
    this.metrics.push(...report.points);
    if (this.metrics.length > MAX_METRICS) this.metrics.splice(0, this.metrics.length - MAX_METRICS);
    this.views.curves.forEach((c) => c.update(report.points));
    if (report.env) this.views.env.update(report.env);
    if (report.fallback) {
      // The device was lost: the worker went on on the CPU from its last good snapshot.
      const { device, step } = report.fallback;
      this.step = step;
      if (this.metrics.some((p) => p.step > step)) {
        this.metrics = this.metrics.filter((p) => p.step <= step);
        this.views.curves.forEach((c) => {
          c.reset();
          c.update(this.metrics);
        });
      }
      this.state.backend = "cpu";
      this.chrome.backendChoice?.("cpu");
      this.chrome.backend(device);
      this.chrome.notice(`${capitalise(report.fault ?? "the device was lost")}. Training goes on on the CPU from step ${step.toLocaleString("en")}.`);
      document.body.dataset.fallback = String(step);
    } else if (report.fault) {
      this.wantPlay = false;
      this.faulted = true;
      this.setPlaying(false);
      document.body.dataset.fault = report.faultKind ?? "fault";
      this.chrome.status("paused: training stopped itself (see the message above)", "paused");
      this.chrome.notice(`Training paused itself: ${report.fault}.`);
      void this.keepLastGood(this.generation);
    } else if (report.finished && this.playingNow) {
      // The spec's step budget ("Steps to run") is used up: stop instead of asking for more.
      this.wantPlay = false;
      this.setPlaying(false);
      document.body.dataset.finished = String(this.step);
      this.chrome.status(`finished: the experiment's ${this.step.toLocaleString("en")} steps are done`, "paused");
    }
    this.chrome.progress(this.step, this.rate);
    this.requestDraw();
  }

  /** After a fault: keep the restored weights so a changed setting goes on from them, and autosave them. */
  private async keepLastGood(gen: number): Promise<void> {
    try {
      const r = await this.client.request({ type: "saveWeights" });
      if (gen !== this.generation || !this.faulted) return;
      this.carry = {
        weights: r.bytes,
        step: this.step,
        metrics: [...this.metrics],
        notice: `Going on from the last good weights (step ${this.step.toLocaleString("en")}) with the new setting.`,
      };
      await this.store(r.bytes);
    } catch (e) {
      if (!(e instanceof StaleError)) console.warn(`keeping the last good weights: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Save the experiment to browser storage now (training waits for the weights, not for the disk). */
  private async autosaveNow(gen: number): Promise<void> {
    this.lastSaveAt = performance.now();
    if (!this.autosave || this.step === this.savedStep) return;
    const r = await this.client.request({ type: "saveWeights" });
    if (gen !== this.generation) return;
    await this.store(r.bytes);
  }

  private async store(weights: ArrayBuffer): Promise<void> {
    const step = this.step;
    try {
      await writeSaved(seal({ savedAt: Date.now(), config: this.state.config, step, metrics: this.metrics, weights }));
      this.savedStep = step;
      document.body.dataset.autosavedStep = String(step);
    } catch (e) {
      this.autosave = false;
      this.chrome.notice(`Autosave is off: this browser refused to store the experiment (${e instanceof Error ? e.message : String(e)}).`, true);
    }
  }

  /**
   * Refresh the slower views that are due (or all of `which` when `force`). A view is due
   * after REFRESH_MS, or after 4× its own last cost if that is longer, so views never take
   * more than about a fifth of the worker's time from training.
   */
  private async refreshProbes(force: boolean, which: (keyof typeof REFRESH_MS)[] = ["density", "paths", "variance"]): Promise<void> {
    const gen = this.generation;
    const state = this.state.queryState() ?? undefined;
    const due = (k: keyof typeof REFRESH_MS) =>
      !this.notApplicable.has(k) &&
      (force || performance.now() - this.last[k] > Math.max(REFRESH_MS[k], COST_FACTOR[k] * this.cost[k]));
    const timed = async <T>(k: keyof typeof REFRESH_MS, f: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try {
        return await f();
      } finally {
        this.last[k] = performance.now();
        this.cost[k] = this.last[k] - t0;
        // For profiling and tests: each view's last request time, ms.
        document.body.dataset.viewMs = JSON.stringify(this.cost, (_, v: unknown) => (typeof v === "number" ? Math.round(v) : v));
      }
    };
    try {
      if (which.includes("density") && due("density")) {
        const r = await timed("density", () => this.client.request({ type: "density", query: { state, ...this.views.density.seedQuery() } }));
        if (gen !== this.generation) return;
        this.views.density.update(r.density);
        this.requestDraw();
      }
      if (which.includes("paths") && due("paths")) {
        const r = await timed("paths", () => this.client.request({ type: "paths", count: PATH_COUNT, state }));
        if (gen !== this.generation) return;
        this.views.paths.update(r.paths);
        this.requestDraw();
      }
      if (which.includes("variance") && due("variance")) {
        const r = await timed("variance", () => this.client.request({ type: "variance", state }));
        if (gen !== this.generation) return;
        this.views.variance.update(r.curve);
        this.requestDraw();
      }
    } catch (e) {
      if (e instanceof StaleError) return;
      // A view that cannot be computed (e.g. SAC has no flow paths) is not fatal to training.
      if (e instanceof WorkerError) {
        console.warn(`view refresh: ${e.message}`);
        return;
      }
      throw e;
    }
  }

  private fail(e: unknown): void {
    // A dead worker is the page's to handle (main.ts restarts it); the play intent is kept.
    if (e instanceof WorkerDeadError) {
      this.initialized = false;
      this.setPlaying(false);
      return;
    }
    this.wantPlay = false;
    this.setPlaying(false);
    const msg = e instanceof Error ? e.message : String(e);
    this.chrome.status(`error: ${msg}`, "error");
    if (!this.initialized) {
      this.startFailed = true;
      this.chrome.notice(`This experiment could not start: ${msg}. Change a setting or pick a lesson to try again.`, true);
    }
  }

  /** Schedule one redraw of every view on the next animation frame; resolves once it has drawn. */
  requestDraw(): Promise<void> {
    if (this.frame) return this.frame;
    this.frame = new Promise<void>((resolve) =>
      requestAnimationFrame(() => {
        this.frame = null;
        try {
          this.views.env.draw();
          this.views.density.draw();
          this.views.paths.draw();
          this.views.variance.draw();
          this.views.curves.forEach((c) => c.draw());
          if (!this.firstFrame && this.step > 0) {
            this.firstFrame = true;
            const ms = Math.round(performance.now());
            if (!document.body.dataset.firstFrameMs) document.body.dataset.firstFrameMs = String(ms);
            startupMark("firstFrame", ms);
          }
        } finally {
          resolve();
        }
      }),
    );
    return this.frame;
  }

  /** Redraw everything now (after a resize or a theme change). */
  redrawAll(): void {
    this.views.env.draw(true);
    this.views.density.draw(true);
    this.views.paths.draw(true);
    this.views.variance.draw(true);
    this.views.curves.forEach((c) => c.draw(true));
  }
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Start-up milestones of the page's first experiment, ms since navigation, in
 * `body[data-startup]` as JSON (`wasmReady`, `sessionReady`, `firstDensity`, `firstFrame`):
 * where the time to the first frame goes. Only the first occurrence of each is kept.
 */
export function startupMark(name: string, ms = Math.round(performance.now())): void {
  const marks = JSON.parse(document.body.dataset.startup ?? "{}") as Record<string, number>;
  if (name in marks) return;
  marks[name] = ms;
  document.body.dataset.startup = JSON.stringify(marks);
}
