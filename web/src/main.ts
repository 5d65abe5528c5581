/**
 * Page entry: finds the elements, builds the views, the controls and the app, and wires the
 * buttons, keyboard shortcuts, presets, share links and exports. No algorithm code lives here:
 * every number shown comes from the worker.
 */
import { App, startupMark, type Chrome } from "./app";
import { clearSaved, readSaved, verify } from "./autosave";
import { runBenchPage } from "./bench";
import { backendBadge } from "./backend";
import { DEAD_AFTER_MS, WorkerClient, WorkerError } from "./client";
import { Controls } from "./controls";
import { configToJson, download, exportPng, fileStem, metricsToCsv } from "./export";
import { fmtRate } from "./format";
import { PRESETS, applyPreset, type Preset } from "./presets";
import type { BackendChoice, FaultKind, Mode, Panel, PanelStatus, PlaygroundConfig } from "./protocol";
import { startConfig, syncFragment } from "./share";
import { SPEEDS, STATE_AXES, State, fragmentFromHash, switchMode } from "./state";
import { seriesColour } from "./colormap";
import { LineChart } from "./views/curves";
import { DensityPanel } from "./views/densityPanel";
import { EnvView } from "./views/envView";
import { FlowPathsView } from "./views/flowPaths";
import { VarianceChart } from "./views/varianceChart";
import { RestartPolicy } from "./restarts";

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id} in index.html`);
  return e as T;
}

const body = document.body;
const query = new URLSearchParams(location.search);
/** `?watchdog=ms` (tests): how long a silent worker with a request in flight may take. */
const deadAfterMs = Number(query.get("watchdog")) > 0 ? Number(query.get("watchdog")) : DEAD_AFTER_MS;
let worker: Worker;
let client: WorkerClient;

/** Start a training worker and its client; a worker that dies is reported to `workerDied`. */
function spawnWorker(): WorkerClient {
  // `?module=cpu|relaxed` reaches the worker, which picks the CPU module (web/src/modules.ts).
  const url = new URL("./worker.js", import.meta.url);
  const query = new URLSearchParams(location.search);
  const module = query.get("module");
  if (module) url.searchParams.set("module", module);
  if (query.has("calibrate")) url.searchParams.set("calibrate", ""); // tests: calibrate on a software adapter too
  if (query.has("debug") && query.has("hangInit")) url.searchParams.set("hangInit", ""); // tests: a worker that never starts
  worker = new Worker(url, { type: "module" });
  const c = new WorkerClient(worker, deadAfterMs);
  worker.addEventListener("error", (ev) => {
    ev.preventDefault();
    c.fail(`the training worker crashed (${ev.message || "no message"})`);
  });
  worker.addEventListener("messageerror", () => c.fail("the training worker sent a message the page could not read"));
  c.onDead = (why) => void workerDied(why);
  c.onFatal = (message) => chrome.status(`error: ${message}`, "error");
  return c;
}
client = spawnWorker();

// ---- views -------------------------------------------------------------------------------
const views = {
  env: new EnvView(el<HTMLCanvasElement>("env-canvas")),
  density: new DensityPanel({
    maps: el("density-maps"),
    policyCanvas: el<HTMLCanvasElement>("density-policy"),
    targetCanvas: el<HTMLCanvasElement>("density-target"),
    curveCanvas: el<HTMLCanvasElement>("density-curve"),
    kl: el("kl"),
    klUniform: el("kl-uniform"),
    where: el("density-where"),
    seedPicker: el<HTMLSelectElement>("density-seed"),
    klBySeed: el("kl-by-seed"),
  }),
  paths: new FlowPathsView(el<HTMLCanvasElement>("paths-canvas")),
  variance: new VarianceChart(el<HTMLCanvasElement>("variance-canvas")),
  curves: [
    new LineChart(el<HTMLCanvasElement>("curve-returns"), "Return", [
      { key: "episodeReturn", label: "episode", colour: seriesColour(0) },
      { key: "evalReturn", label: "greedy eval", colour: seriesColour(1), dash: [5, 3], pending: "no evaluation yet" },
    ]),
    new LineChart(el<HTMLCanvasElement>("curve-losses"), "Loss", [
      { key: "actorLoss", label: "actor", colour: seriesColour(2) },
      { key: "criticLoss", label: "critic", colour: seriesColour(3) },
    ], { logYIfPositive: true }),
    new LineChart(el<HTMLCanvasElement>("curve-ess"), "Effective sample size", [
      { key: "ess", label: "ESS of the K samples", colour: seriesColour(4) },
    ]),
  ],
};

// ---- page chrome ---------------------------------------------------------------------------
const statusEl = el("status");
const backendEl = el("backend");
const stepEl = el("step-count");
const rateEl = el("rate");
const playBtn = el<HTMLButtonElement>("play");
const stepBtn = el<HTMLButtonElement>("step");
const resetBtn = el<HTMLButtonElement>("reset");
const saveWeightsBtn = el<HTMLButtonElement>("save-weights");
const noticeEl = el("notice");

const chrome: Chrome = {
  status(text, state) {
    statusEl.textContent = text;
    body.dataset.state = state;
    const usable = state !== "loading" && state !== "invalid";
    playBtn.disabled = !usable || state === "error";
    stepBtn.disabled = !usable || state === "running" || state === "error";
    resetBtn.disabled = state === "loading";
    saveWeightsBtn.disabled = !usable || state === "error";
  },
  backend(d) {
    const { text, detail } = backendBadge(d);
    backendEl.textContent = text;
    backendEl.dataset.kind = d.kind;
    backendEl.title = detail;
    console.info(`backend: ${detail}`);
  },
  progress(step, perSec) {
    stepEl.textContent = step.toLocaleString("en");
    stepEl.dataset.step = String(step);
    // Several seeds: each step steps every one of them.
    const seeds = state.config.seeds;
    rateEl.textContent = fmtRate(perSec) + (seeds > 1 && Number.isFinite(perSec) ? ` × ${seeds} seeds` : "");
    if (Number.isFinite(perSec)) rateEl.dataset.rate = String(perSec);
  },
  playing(on) {
    playBtn.setAttribute("aria-pressed", String(on));
    playBtn.setAttribute("aria-label", on ? "Pause" : "Play");
    stepBtn.disabled = on || !app?.ready;
  },
  notice(message, append = false) {
    const text = el("notice-text");
    const keep = append && !noticeEl.hidden && text.textContent && text.textContent !== message ? `${text.textContent} ` : "";
    text.textContent = message === null ? "" : keep + message;
    noticeEl.hidden = message === null;
  },
  backendChoice(choice) {
    el<HTMLSelectElement>("backend-choice").value = choice;
  },
  panels(panels) {
    showPanels(panels);
  },
};

/** Where each panel lives on the page (the ESS chart is one canvas of the curves card). */
const PANEL_HOME: Record<Panel, () => HTMLElement> = {
  density: () => el("density-card"),
  paths: () => el("paths-card"),
  variance: () => el("variance-card"),
  env: () => el("env-card"),
  ess: () => el("curve-ess"),
};

/**
 * Mark the panels that do not apply: `data-not-applicable` (the reason) on the card or
 * canvas, and the reason as text after it for screen readers (the canvas draws it too).
 */
function showPanels(panels: PanelStatus[]): void {
  for (const [panel, home] of Object.entries(PANEL_HOME) as [Panel, () => HTMLElement][]) {
    const target = home();
    const status = panels.find((p) => p.panel === panel);
    const noteId = `na-${panel}`;
    let note = document.getElementById(noteId);
    if (status && !status.available) {
      const reason = status.reason ?? "Not used by this experiment";
      target.dataset.notApplicable = reason;
      if (!note) {
        note = document.createElement("p");
        note.id = noteId;
        note.className = "visually-hidden na-note";
        target.tagName === "CANVAS" ? target.after(note) : target.append(note);
      }
      note.textContent = reason;
    } else {
      delete target.dataset.notApplicable;
      note?.remove();
    }
  }
}
el("notice-close").addEventListener("click", () => chrome.notice(null));

// ---- state, controls, app ------------------------------------------------------------------
let state: State;
let app: App;
/** Each mode's full default config (`defaultSpec(mode)` in the crate). */
const defaultsOf: Partial<Record<Mode, PlaygroundConfig>> = {};
const controls = new Controls(el("controls"));
controls.setDisabled(true);
const modeNote = el("mode-note");

/** The defaults of a mode, asked of the worker once. */
async function modeDefaults(mode: Mode): Promise<PlaygroundConfig> {
  defaultsOf[mode] ??= (await client.request({ type: "defaults", mode })).config;
  return defaultsOf[mode]!;
}

/** Show the mode-dependent parts (env card and probe sliders only in RL). */
function applyModeLayout(): void {
  const c = state.config;
  body.classList.toggle("mode-sampler", c.mode === "sampler");
  body.classList.toggle("mode-rl", c.mode === "rl");
  const axes = STATE_AXES[c.env];
  const values = state.probeState[c.env];
  axes.forEach((ax, i) => {
    const input = el<HTMLInputElement>(`probe-${i}`);
    input.min = String(ax.min);
    input.max = String(ax.max);
    input.step = String(ax.step);
    input.value = String(values[i]);
    el(`probe-${i}-label`).textContent = ax.label;
    el<HTMLOutputElement>(`probe-${i}-out`).value = values[i].toFixed(ax.step < 0.01 ? 3 : 2);
  });
}

/** Validate a draft with the worker; if it is fine, adopt it, update the link and re-init. */
async function applyConfig(draft: PlaygroundConfig, autoplay: boolean): Promise<boolean> {
  try {
    const { errors } = await client.request({ type: "validate", config: draft });
    if (errors.length > 0) {
      controls.showErrors(errors);
      app.pause();
      chrome.status("fix the highlighted setting to train", "invalid");
      return false;
    }
    controls.clearErrors();
    // The mode-switch note stays for the switch that showed it, and goes with the next change.
    if (modeNote.dataset.pending) delete modeNote.dataset.pending;
    else modeNote.hidden = true;
    state.config = { ...draft };
    controls.set(state.config);
    applyModeLayout();
    await syncFragment(client, state.config);
    return await app.init(autoplay);
  } catch (e) {
    if (e instanceof WorkerError && e.fields.length > 0) {
      controls.showErrors(e.fields);
      chrome.status("fix the highlighted setting to train", "invalid");
      return false;
    }
    if (e instanceof WorkerError) chrome.status(`error: ${e.message}`, "error");
    return false;
  }
}

/**
 * Config changes are applied one after another (each re-inits the session, which drops the
 * worker requests still queued); while one is applied, only the newest waiting draft is kept.
 */
let applying: Promise<unknown> = Promise.resolve();
let waiting: { draft: PlaygroundConfig; autoplay: boolean } | null = null;
function requestApply(draft: PlaygroundConfig, autoplay: boolean): void {
  const first = waiting === null;
  waiting = { draft, autoplay: autoplay || (waiting?.autoplay ?? false) };
  if (!first) return;
  applying = applying.then(async () => {
    const w = waiting!;
    waiting = null;
    await applyConfig(w.draft, w.autoplay);
  });
}

/** A mode switch brings that mode's defaults (the seed is kept), and says so. */
controls.onModeSwitch = (mode) => {
  void (async () => {
    try {
      const { config, changed } = switchMode(controls.current() ?? state.config, await modeDefaults(mode));
      const label = mode === "rl" ? "RL" : "sampler";
      modeNote.textContent = changed.length
        ? `Switched to ${label} mode: its defaults are loaded for every setting but the seed (${changed.length} changed).`
        : `Switched to ${label} mode: its defaults are loaded for every setting but the seed.`;
      modeNote.hidden = false;
      modeNote.dataset.pending = "1";
      requestApply(config, app.playing || body.dataset.state === "invalid" || body.dataset.state === "error");
    } catch (e) {
      chrome.status(`error: ${e instanceof Error ? e.message : String(e)}`, "error");
    }
  })();
};

controls.onChange = (draft) => {
  if (controls.hasErrors()) {
    app.pause();
    chrome.status("fix the highlighted setting to train", "invalid");
    return;
  }
  // After a refused or failed config, or a fault, the user's next fix starts training again.
  requestApply(draft, app.playing || app.faulted || body.dataset.state === "invalid" || body.dataset.state === "error");
};

// ---- presets -------------------------------------------------------------------------------
/** A lesson's settings are laid on the defaults of its own mode. */
const presetMode = (p: Preset): Mode => p.patch.mode ?? "rl";

function showPreset(p: Preset): void {
  el("preset-detail").hidden = false;
  el("preset-text").textContent = p.text;
  const box = el("preset-variants");
  box.replaceChildren(
    ...p.variants.map((v) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = v.label;
      b.dataset.variant = v.label;
      b.addEventListener("click", () => {
        box.querySelectorAll("button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
        void modeDefaults(presetMode(p)).then((d) => requestApply(applyPreset(d, p, v), true));
      });
      return b;
    }),
  );
  document.querySelectorAll<HTMLButtonElement>("#preset-buttons button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.preset === p.id)));
}

el("preset-buttons").replaceChildren(
  ...PRESETS.map((p) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "preset";
    b.dataset.preset = p.id;
    b.setAttribute("aria-pressed", "false");
    b.textContent = p.title;
    b.addEventListener("click", () => {
      if (!app) return;
      showPreset(p);
      if (p.probeState && p.patch.env) state.probeState[p.patch.env] = [...p.probeState];
      const first = p.variants[0];
      el("preset-variants").querySelector("button")?.setAttribute("aria-pressed", "true");
      void modeDefaults(presetMode(p)).then((d) => requestApply(applyPreset(d, p, first), true));
    });
    return b;
  }),
);

// ---- probe state (where the density is looked at) -----------------------------------------
for (const i of [0, 1]) {
  const input = el<HTMLInputElement>(`probe-${i}`);
  input.addEventListener("input", () => {
    const env = state.config.env;
    state.probeState[env][i] = Number(input.value);
    el<HTMLOutputElement>(`probe-${i}-out`).value = Number(input.value).toFixed(STATE_AXES[env][i].step < 0.01 ? 3 : 2);
    app.probeChanged();
  });
}
views.density.onSeedPick = () => app.probeChanged();
views.env.onPick = (x, y) => {
  if (state.config.env !== "multigoal") return;
  state.probeState.multigoal = [x, y];
  applyModeLayout();
  app.probeChanged();
};

// ---- transport, speed, backend, presenter ----------------------------------------------------
const speedSel = el<HTMLSelectElement>("speed");
for (const s of SPEEDS) speedSel.append(new Option(String(s), String(s)));
speedSel.addEventListener("change", () => (state.speed = Number(speedSel.value)));
playBtn.addEventListener("click", () => app.toggle());
stepBtn.addEventListener("click", () => void app.stepOnce());
resetBtn.addEventListener("click", () => void app.reset(app.playing));
el<HTMLSelectElement>("backend-choice").addEventListener("change", (ev) => {
  state.backend = (ev.target as HTMLSelectElement).value as BackendChoice;
  void app.init(app.playing);
});
const presenterBtn = el<HTMLButtonElement>("presenter");
function togglePresenter(): void {
  state.presenter = !state.presenter;
  body.classList.toggle("presenter", state.presenter);
  presenterBtn.setAttribute("aria-pressed", String(state.presenter));
  requestAnimationFrame(() => app?.redrawAll());
}
presenterBtn.addEventListener("click", togglePresenter);

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !app) return;
  const t = ev.target as HTMLElement;
  const typing = t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA";
  if (typing) return;
  if (ev.key === " " && t.tagName !== "BUTTON") {
    ev.preventDefault();
    if (!playBtn.disabled) app.toggle();
  } else if (ev.key === "s" || ev.key === "S") {
    if (!stepBtn.disabled) void app.stepOnce();
  } else if (ev.key === "r" || ev.key === "R") {
    if (!resetBtn.disabled) void app.reset(app.playing);
  } else if (ev.key === "p" || ev.key === "P") {
    togglePresenter();
  }
});

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => app?.redrawAll(), 120);
});

// ---- exports ----------------------------------------------------------------------------------
const PANELS: Record<string, { title: string; canvases: () => HTMLCanvasElement[] }> = {
  env: { title: "Environment", canvases: () => [el<HTMLCanvasElement>("env-canvas")] },
  density: { title: "Policy vs target", canvases: () => views.density.canvases() },
  paths: { title: "The flow: noise → action", canvases: () => [el<HTMLCanvasElement>("paths-canvas")] },
  curves: { title: "Learning curves", canvases: () => views.curves.map((c) => c.canvas) },
  variance: { title: "Estimator variance vs t", canvases: () => [el<HTMLCanvasElement>("variance-canvas")] },
};
document.querySelectorAll<HTMLButtonElement>("button[data-export]").forEach((b) => {
  b.addEventListener("click", () => {
    const panel = PANELS[b.dataset.export!];
    exportPng(panel.title, panel.canvases(), `${fileStem(state.config)}-${b.dataset.export}.png`);
  });
});
el("export-csv").addEventListener("click", () =>
  download(new Blob([metricsToCsv(app.metrics)], { type: "text/csv" }), `${fileStem(state.config)}-metrics.csv`),
);
el("export-json").addEventListener("click", () =>
  download(new Blob([configToJson(state.config)], { type: "application/json" }), `${fileStem(state.config)}.json`),
);
el("copy-link").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(location.href);
    statusEl.textContent = "share link copied";
  } catch {
    statusEl.textContent = "copy the link from the address bar";
  }
});
saveWeightsBtn.addEventListener("click", async () => {
  try {
    const bytes = await app.saveWeights();
    download(new Blob([bytes], { type: "application/octet-stream" }), `${fileStem(state.config)}-step${app.step}.rfmw`);
  } catch (e) {
    chrome.notice(`Could not save the weights: ${e instanceof Error ? e.message : String(e)}`);
  }
});
el<HTMLInputElement>("load-weights").addEventListener("change", async (ev) => {
  const input = ev.target as HTMLInputElement;
  const file = input.files?.[0];
  input.value = "";
  if (!file) return;
  try {
    const config = await app.loadWeights(await file.arrayBuffer());
    controls.set(config);
    await syncFragment(client, config);
    chrome.notice(null);
    statusEl.textContent = `opened ${file.name} at step ${app.step}`;
  } catch (e) {
    chrome.notice(`Could not load ${file.name}: ${e instanceof Error ? e.message : String(e)}`);
  }
});

// ---- start ------------------------------------------------------------------------------------

/**
 * A reload or a crashed tab: continue the autosaved experiment when the address has no link or
 * the link is that experiment's; a damaged save is discarded with a message.
 */
async function resumeAutosave(noLink: boolean): Promise<void> {
  let raw: unknown;
  try {
    raw = await readSaved();
  } catch (e) {
    app.autosave = false;
    console.warn(`autosave unavailable: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  if (raw === null) return;
  const checked = verify(raw);
  const discard = async (why: string) => {
    await clearSaved().catch(() => undefined);
    chrome.notice(`Your autosaved experiment was damaged (${why}) and has been discarded; starting from ${noLink ? "the default settings" : "the link"}.`, true);
  };
  if ("damaged" in checked) return discard(checked.damaged);
  const saved = checked.ok;
  const { errors } = await client.request({ type: "validate", config: saved.config });
  if (errors.length > 0) return discard(`its settings are not allowed: ${errors.map((e) => e.message).join("; ")}`);
  if (!noLink) {
    const { fragment } = await client.request({ type: "encodeShare", config: saved.config });
    if (`#${fragment}` !== location.hash) return; // a different experiment's link wins; the save stays until overwritten
  }
  state.config = saved.config;
  app.carry = {
    weights: saved.weights,
    step: saved.step,
    metrics: saved.metrics,
    notice: `Resumed your autosaved experiment at step ${saved.step.toLocaleString("en")} (saved ${new Date(saved.savedAt).toLocaleTimeString()}).`,
  };
}

/**
 * The training worker died (crashed, or stopped answering): say so, start a new one and go on
 * from the last autosave (or, without one, start the same experiment afresh).
 */
let restarts = 0;
const restartPolicy = new RestartPolicy();
const currentStep = () => Number(stepEl.dataset.step ?? 0);
async function workerDied(why: string): Promise<void> {
  console.warn(`training worker lost: ${why}`);
  const old = client;
  old.close();
  worker.terminate();
  if (!restartPolicy.died(currentStep())) {
    app?.pause();
    chrome.status("error: the training worker keeps stopping", "error");
    chrome.notice(
      `The training worker stopped ${restartPolicy.inARow} times in a row before it could train a step (last: ${why}). ` +
        "It is not restarted again: pick the CPU backend or smaller settings, or reload the page to try again.",
    );
    return;
  }
  restarts++;
  body.dataset.workerRestarts = String(restarts);
  const wasPlaying = app?.playing ?? true;
  chrome.status("the training worker stopped; restarting it…", "loading");
  client = spawnWorker();
  app?.replaceClient(client);
  try {
    await client.ready;
    let from = "the start (there was no autosave yet)";
    const raw = await readSaved().catch(() => null);
    const checked = raw === null ? null : verify(raw);
    // The autosave is this experiment's (same settings): go on from it.
    if (checked && "ok" in checked && JSON.stringify(checked.ok.config) === JSON.stringify(state.config)) {
      const saved = checked.ok;
      state.config = saved.config;
      controls.set(state.config);
      applyModeLayout();
      app.carry = { weights: saved.weights, step: saved.step, metrics: saved.metrics, notice: "" };
      from = `its last autosave (step ${saved.step.toLocaleString("en")})`;
    }
    const msg = `The training worker stopped (${why}). It was restarted and the experiment goes on from ${from}.`;
    if (app.carry) app.carry.notice = msg;
    else chrome.notice(msg);
    // (Before init: a worker that dies during init has not trained from this step either.)
    restartPolicy.restarted(app.carry?.step ?? 0);
    await app.init(wasPlaying);
  } catch (e) {
    chrome.notice(`The training worker stopped (${why}) and could not be restarted: ${e instanceof Error ? e.message : String(e)}. Reload the page to go on from the last autosave.`);
    chrome.status("error: the training worker stopped", "error");
  }
}

/**
 * `?debug`: hooks for the tests: inject a fault into the next training step, terminate the
 * worker (as a crashed tab process would), train exactly N steps while paused.
 */
if (query.has("debug")) {
  (window as unknown as { rfmDebug: unknown }).rfmDebug = {
    injectFault: (kind: FaultKind) => app.injectFault(kind),
    terminateWorker: () => worker.terminate(),
    train: (steps: number) => app.trainExactly(steps),
  };
}

async function start(): Promise<void> {
  chrome.status("loading the trainer…", "loading");
  await client.ready;
  startupMark("wasmReady");
  document.body.dataset.module = client.module;
  const [start, described] = await Promise.all([startConfig(client, location.hash), client.request({ type: "describe" })]);
  defaultsOf.rl = start.defaults;
  controls.build(described.fields);
  state = new State(start.config);
  const backend = query.get("backend");
  if (backend === "cpu" || backend === "webgpu" || backend === "auto") {
    state.backend = backend;
    el<HTMLSelectElement>("backend-choice").value = backend;
  }
  speedSel.value = String(state.speed);
  app = new App(client, state, views, chrome);
  chrome.notice(start.notice);
  await resumeAutosave(fragmentFromHash(location.hash) === null);
  controls.set(state.config);
  controls.setDisabled(false);
  // `?paused`: start paused (deterministic frames for the golden-image tests and screenshots).
  await applyConfig(state.config, !query.has("paused"));
}

// `?bench`: measure throughput instead of starting the playground (see bench.ts).
if (query.has("bench")) void runBenchPage();
else start().catch((e) => chrome.status(`error: ${e instanceof Error ? e.message : String(e)}`, "error"));
