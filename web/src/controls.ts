/**
 * The experiment controls, built from the `PROPS` table: one labelled input per config field
 * (selects for choices, number inputs, log sliders for λ and learning rates, an η slider for
 * the fixed-η estimator). Shows the worker's `FieldError`s inline next to each control
 * (aria-invalid + a message). Computes nothing: `onChange(draft)` hands the new draft config
 * to the app, which validates it through the worker.
 */
import type { FieldError, PlaygroundConfig } from "./protocol";
import {
  PROPS,
  type EstimatorKind,
  type Prop,
  joinEstimator,
  logToSlider,
  parseNumber,
  sliderToLog,
  splitEstimator,
} from "./state";

const GROUP_TITLES: Record<Prop["group"], string> = {
  task: "Task",
  agent: "Agent & estimator",
  flow: "Flow",
  training: "Training",
};

const OPTION_LABELS: Record<string, string> = {
  rl: "RL (control task)",
  sampler: "Sampler (known density)",
  multigoal: "Multigoal plane",
  pendulum: "Pendulum",
  "mountain-car": "Mountain car",
  gmm8: "8 Gaussians",
  "two-moons": "Two moons",
  rings: "Rings",
  gmm40: "40 Gaussians",
  rfm: "RFM",
  sac: "SAC (Gaussian)",
  noise: "Noise (η = 0)",
  grad: "Gradient (η = 1)",
  eta: "Fixed η…",
  flow: "Flow (velocity)",
  diffusion: "Diffusion (noise)",
  euler: "Euler",
  heun: "Heun",
};

interface Field {
  prop: Prop;
  wrap: HTMLElement;
  input: HTMLInputElement | HTMLSelectElement;
  slider?: HTMLInputElement;
  error: HTMLElement;
}

export class Controls {
  private fields = new Map<string, Field>();
  private draft: PlaygroundConfig | null = null;
  private eta!: HTMLInputElement;
  private etaOut!: HTMLOutputElement;
  private etaWrap!: HTMLElement;
  /** Errors not tied to a shown control. */
  private general: HTMLElement;
  onChange: (draft: PlaygroundConfig) => void = () => {};

  constructor(private readonly root: HTMLElement) {
    this.general = document.createElement("p");
    this.general.className = "field-error general";
    this.general.id = "config-errors";
    this.general.hidden = true;
    const groups = new Map<Prop["group"], HTMLFieldSetElement>();
    for (const p of PROPS) {
      let fs = groups.get(p.group);
      if (!fs) {
        fs = document.createElement("fieldset");
        fs.className = `group group-${p.group}`;
        const lg = document.createElement("legend");
        lg.textContent = GROUP_TITLES[p.group];
        fs.append(lg);
        groups.set(p.group, fs);
        root.append(fs);
      }
      fs.append(this.build(p));
      if (p.name === "estimator") fs.append(this.buildEta());
    }
    root.append(this.general);
  }

  private build(p: Prop): HTMLElement {
    const id = `cfg-${p.name}`;
    const wrap = document.createElement("div");
    wrap.className = `field field-${p.kind}`;
    wrap.dataset.field = p.name;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = p.label;
    const help = document.createElement("p");
    help.className = "help";
    help.id = `${id}-help`;
    help.textContent = p.help;
    const error = document.createElement("p");
    error.className = "field-error";
    error.id = `${id}-error`;
    error.hidden = true;
    let input: HTMLInputElement | HTMLSelectElement;
    let slider: HTMLInputElement | undefined;
    if (p.kind === "select") {
      const sel = document.createElement("select");
      for (const o of p.options ?? []) sel.append(new Option(OPTION_LABELS[o] ?? o, o));
      sel.addEventListener("change", () => this.commit(p, sel.value));
      input = sel;
    } else {
      const inp = document.createElement("input");
      inp.type = "text";
      inp.inputMode = p.kind === "int" ? "numeric" : "decimal";
      inp.autocomplete = "off";
      inp.spellcheck = false;
      inp.addEventListener("change", () => this.commit(p, inp.value));
      input = inp;
      if (p.kind === "log") {
        slider = document.createElement("input");
        slider.type = "range";
        slider.min = "0";
        slider.max = "1000";
        slider.step = "1";
        slider.className = "log-slider";
        slider.setAttribute("aria-label", `${p.label} (log scale)`);
        const s = slider;
        s.addEventListener("input", () => {
          inp.value = String(sliderToLog(Number(s.value), p.min!, p.max!));
        });
        s.addEventListener("change", () => this.commit(p, inp.value));
      }
    }
    input.id = id;
    input.setAttribute("aria-describedby", `${help.id} ${error.id}`);
    const row = document.createElement("div");
    row.className = "field-row";
    if (slider) row.append(slider);
    row.append(input);
    wrap.append(label, row, help, error);
    this.fields.set(p.name, { prop: p, wrap, input, slider, error });
    return wrap;
  }

  private buildEta(): HTMLElement {
    const wrap = document.createElement("div");
    wrap.className = "field field-eta";
    wrap.dataset.field = "eta";
    const label = document.createElement("label");
    label.htmlFor = "cfg-eta";
    label.textContent = "η (0 = noise, 1 = gradient)";
    const eta = document.createElement("input");
    eta.type = "range";
    eta.id = "cfg-eta";
    eta.min = "0";
    eta.max = "1";
    eta.step = "0.05";
    const out = document.createElement("output");
    out.htmlFor.add("cfg-eta");
    eta.addEventListener("input", () => (out.value = Number(eta.value).toFixed(2)));
    eta.addEventListener("change", () => this.commitEstimator());
    const row = document.createElement("div");
    row.className = "field-row";
    row.append(eta, out);
    wrap.append(label, row);
    this.eta = eta;
    this.etaOut = out;
    this.etaWrap = wrap;
    return wrap;
  }

  /** Show a config in the controls (after defaults, a preset, a share link, or a reply). */
  set(config: PlaygroundConfig): void {
    this.draft = { ...config };
    for (const f of this.fields.values()) {
      const v = config[f.prop.name];
      if (f.prop.name === "estimator") {
        const { kind, eta } = splitEstimator(config.estimator);
        f.input.value = kind;
        this.eta.value = String(eta);
        this.etaOut.value = eta.toFixed(2);
        continue;
      }
      // f32 values from the core (0.10000000149011612) are shown as typed (0.1).
      f.input.value = typeof v === "number" ? String(Number(v.toPrecision(7))) : String(v);
      if (f.slider) f.slider.value = String(logToSlider(Number(v), f.prop.min!, f.prop.max!));
    }
    this.applyVisibility();
  }

  /** The config the controls show now (null before the first `set`). */
  current(): PlaygroundConfig | null {
    return this.draft ? { ...this.draft } : null;
  }

  private applyVisibility(): void {
    const mode = this.draft?.mode ?? "rl";
    const agent = this.draft?.agent ?? "rfm";
    for (const f of this.fields.values()) {
      let hidden = f.prop.onlyIn !== undefined && f.prop.onlyIn !== mode;
      // SAC has no flow: hide the flow-only knobs in RL with SAC.
      if (mode === "rl" && agent === "sac" && ["estimator", "k", "param", "solver", "odeSteps", "candidates"].includes(f.prop.name)) {
        hidden = true;
      }
      f.wrap.hidden = hidden;
    }
    const est = this.fields.get("estimator");
    this.etaWrap.hidden = !!est?.wrap.hidden || (this.draft ? splitEstimator(this.draft.estimator).kind !== "eta" : true);
  }

  private commit(p: Prop, raw: string): void {
    if (!this.draft) return;
    const f = this.fields.get(p.name)!;
    this.clearField(f);
    if (p.name === "estimator") return this.commitEstimator();
    if (p.kind === "select") {
      (this.draft as unknown as Record<string, unknown>)[p.name] = raw;
    } else {
      const v = parseNumber(raw);
      if (Number.isNaN(v)) {
        this.showField(f, `“${raw}” is not a number.`);
        return;
      }
      if (p.kind === "int" && !(Number.isInteger(v) && v >= 0)) {
        this.showField(f, `${p.label} must be a whole number (0, 1, 2, …), not ${raw}.`);
        return;
      }
      (this.draft as unknown as Record<string, unknown>)[p.name] = v;
      if (f.slider) f.slider.value = String(logToSlider(v, p.min!, p.max!));
    }
    this.applyVisibility();
    this.onChange({ ...this.draft });
  }

  private commitEstimator(): void {
    if (!this.draft) return;
    const f = this.fields.get("estimator")!;
    this.draft.estimator = joinEstimator(f.input.value as EstimatorKind, Number(this.eta.value));
    this.applyVisibility();
    this.onChange({ ...this.draft });
  }

  private clearField(f: Field): void {
    f.input.removeAttribute("aria-invalid");
    f.wrap.classList.remove("invalid");
    f.error.hidden = true;
    f.error.textContent = "";
  }

  private showField(f: Field, message: string): void {
    f.input.setAttribute("aria-invalid", "true");
    f.wrap.classList.add("invalid");
    f.error.hidden = false;
    f.error.textContent = message;
  }

  /** Whether any control shows a problem (e.g. "not a number"). */
  hasErrors(): boolean {
    return [...this.fields.values()].some((f) => f.input.getAttribute("aria-invalid") === "true");
  }

  clearErrors(): void {
    for (const f of this.fields.values()) this.clearField(f);
    this.general.hidden = true;
    this.general.textContent = "";
  }

  /** Show the worker's field errors next to their controls (others in a general line). */
  showErrors(errors: readonly FieldError[]): void {
    this.clearErrors();
    const rest: string[] = [];
    for (const e of errors) {
      const f = this.fields.get(e.field) ?? (e.field === "eta" ? this.fields.get("estimator") : undefined);
      const text = e.range && !e.message.includes(e.range) ? `${e.message} (allowed: ${e.range})` : e.message;
      if (f && !f.wrap.hidden) this.showField(f, text);
      else rest.push(`${e.field}: ${text}`);
    }
    if (rest.length) {
      this.general.hidden = false;
      this.general.textContent = rest.join(" · ");
    }
  }

  /** Disable every control (e.g. while the worker loads). */
  setDisabled(disabled: boolean): void {
    for (const f of this.fields.values()) {
      f.input.disabled = disabled;
      if (f.slider) f.slider.disabled = disabled;
    }
    this.eta.disabled = disabled;
  }

  /** The root element (for focus handling). */
  get element(): HTMLElement {
    return this.root;
  }
}
