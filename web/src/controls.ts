/**
 * The Experiment card's controls, built from the crate's description of every field
 * (`describeSpec()` → `FieldInfo[]`): a select per choice field, a text input per number (with
 * a log slider when the field is log-spaced), an η slider for the fixed-η estimator. Fields
 * that do not apply to the current mode (and, in RL, agent) are hidden. Shows the worker's
 * `FieldError`s inline (aria-invalid + a message). Computes nothing: `onChange(draft)` hands the
 * new draft to the app, which validates it through the worker; a mode switch goes to
 * `onModeSwitch(mode)` instead (the page loads that mode's defaults).
 */
import type { FieldError, FieldInfo, Mode, PlaygroundConfig } from "./protocol";
import { type EstimatorKind, fieldApplies, joinEstimator, logToSlider, parseNumber, sliderToLog, splitEstimator } from "./state";

interface Field {
  info: FieldInfo;
  wrap: HTMLElement;
  input: HTMLInputElement | HTMLSelectElement;
  slider?: HTMLInputElement;
  error: HTMLElement;
}

type Draft = Record<string, unknown>;

/** The estimator option that stands for "a fixed η" (its value is "eta" or starts with "eta:"). */
const isEtaOption = (v: string) => v === "eta" || v.startsWith("eta:");

export class Controls {
  private fields = new Map<string, Field>();
  private draft: PlaygroundConfig | null = null;
  private eta: HTMLInputElement | null = null;
  private etaOut: HTMLOutputElement | null = null;
  private etaWrap: HTMLElement | null = null;
  private disabled = false;
  /** Errors not tied to a shown control. */
  private general: HTMLElement;
  onChange: (draft: PlaygroundConfig) => void = () => {};
  onModeSwitch: (mode: Mode) => void = () => {};

  constructor(private readonly root: HTMLElement) {
    this.general = document.createElement("p");
    this.general.className = "field-error general";
    this.general.id = "config-errors";
    this.general.hidden = true;
    root.append(this.general);
  }

  /** Build one control per field, in the crate's order (replaces any built before). */
  build(fields: readonly FieldInfo[]): void {
    this.fields.clear();
    this.eta = this.etaOut = this.etaWrap = null;
    const els: HTMLElement[] = [];
    // Fields the crate marks advanced (warm-up, replay, proposal, evaluation, budget) fold
    // away under one summary, closed by default, so the card shows the knobs of the method.
    const advanced = document.createElement("details");
    advanced.className = "advanced";
    advanced.id = "advanced-settings";
    const summary = document.createElement("summary");
    summary.textContent = "Advanced settings";
    advanced.append(summary);
    for (const f of fields) {
      (f.advanced ? advanced : { append: (e: HTMLElement) => els.push(e) }).append(this.buildField(f));
      if (f.key === "estimator") els.push(this.buildEta());
    }
    if (advanced.children.length > 1) els.push(advanced);
    this.root.replaceChildren(...els, this.general);
    this.setDisabled(this.disabled);
    if (this.draft) this.set(this.draft);
  }

  /** The control of a field (tests and focus handling). */
  has(key: string): boolean {
    return this.fields.has(key);
  }

  private buildField(info: FieldInfo): HTMLElement {
    const id = `cfg-${info.key}`;
    const wrap = document.createElement("div");
    wrap.className = `field field-${info.control}${info.log ? " field-log" : ""}`;
    wrap.dataset.field = info.key;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = info.label;
    const help = document.createElement("p");
    help.className = "help";
    help.id = `${id}-help`;
    help.textContent = info.help;
    const error = document.createElement("p");
    error.className = "field-error";
    error.id = `${id}-error`;
    error.hidden = true;
    let input: HTMLInputElement | HTMLSelectElement;
    let slider: HTMLInputElement | undefined;
    if (info.control === "select") {
      const sel = document.createElement("select");
      for (const o of info.options) sel.append(new Option(o.label, o.value));
      sel.addEventListener("change", () => this.commit(info, sel.value));
      input = sel;
    } else {
      const inp = document.createElement("input");
      inp.type = "text";
      inp.inputMode = info.integer ? "numeric" : "decimal";
      inp.autocomplete = "off";
      inp.spellcheck = false;
      inp.addEventListener("change", () => this.commit(info, inp.value));
      input = inp;
      if (info.log && info.min !== null && info.max !== null && info.min > 0) {
        const [min, max] = [info.min, info.max];
        slider = document.createElement("input");
        slider.type = "range";
        slider.min = "0";
        slider.max = "1000";
        slider.step = "1";
        slider.className = "log-slider";
        slider.setAttribute("aria-label", `${info.label} (log scale)`);
        const s = slider;
        s.addEventListener("input", () => {
          inp.value = String(sliderToLog(Number(s.value), min, max));
        });
        s.addEventListener("change", () => this.commit(info, inp.value));
      }
    }
    input.id = id;
    input.setAttribute("aria-describedby", `${help.id} ${error.id}`);
    const row = document.createElement("div");
    row.className = "field-row";
    if (slider) row.append(slider);
    row.append(input);
    wrap.append(label, row, help, error);
    this.fields.set(info.key, { info, wrap, input, slider, error });
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
    const values = config as unknown as Draft;
    for (const f of this.fields.values()) {
      const v = values[f.info.key];
      if (f.info.key === "estimator") {
        const { kind, eta } = splitEstimator(config.estimator);
        const etaOption = f.info.options.find((o) => isEtaOption(o.value))?.value ?? "eta";
        f.input.value = kind === "eta" ? etaOption : kind;
        if (this.eta && this.etaOut) {
          this.eta.value = String(eta);
          this.etaOut.value = eta.toFixed(2);
        }
        continue;
      }
      // f32 values from the core (0.10000000149011612) are shown as typed (0.1).
      f.input.value = typeof v === "number" ? String(Number(v.toPrecision(7))) : String(v ?? "");
      if (f.slider) f.slider.value = String(logToSlider(Number(v), f.info.min!, f.info.max!));
    }
    this.applyVisibility();
  }

  /** The config the controls show now (null before the first `set`). */
  current(): PlaygroundConfig | null {
    return this.draft ? { ...this.draft } : null;
  }

  private applyVisibility(): void {
    const c = this.draft ?? ({ mode: "rl", agent: "rfm" } as PlaygroundConfig);
    for (const f of this.fields.values()) f.wrap.hidden = !fieldApplies(f.info, c);
    const est = this.fields.get("estimator");
    if (this.etaWrap) this.etaWrap.hidden = !est || est.wrap.hidden || splitEstimator(c.estimator ?? "rfm").kind !== "eta";
  }

  private commit(info: FieldInfo, raw: string): void {
    if (!this.draft) return;
    const f = this.fields.get(info.key)!;
    this.clearField(f);
    if (info.key === "estimator") return this.commitEstimator();
    if (info.key === "mode") {
      this.onModeSwitch(raw as Mode);
      return;
    }
    const draft = this.draft as unknown as Draft;
    if (info.control === "select") {
      draft[info.key] = raw;
    } else {
      const v = parseNumber(raw);
      if (Number.isNaN(v)) {
        this.showField(f, `“${raw}” is not a number.`);
        return;
      }
      if (info.integer && !(Number.isInteger(v) && v >= 0)) {
        this.showField(f, `${info.label} must be a whole number (0, 1, 2, …), not ${raw}.`);
        return;
      }
      draft[info.key] = v;
      if (f.slider) f.slider.value = String(logToSlider(v, info.min!, info.max!));
    }
    this.applyVisibility();
    this.onChange({ ...this.draft });
  }

  private commitEstimator(): void {
    if (!this.draft) return;
    const f = this.fields.get("estimator")!;
    const kind: EstimatorKind = isEtaOption(f.input.value) ? "eta" : (f.input.value as EstimatorKind);
    this.draft.estimator = joinEstimator(kind, Number(this.eta?.value ?? 0.5));
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
    this.disabled = disabled;
    for (const f of this.fields.values()) {
      f.input.disabled = disabled;
      if (f.slider) f.slider.disabled = disabled;
    }
    if (this.eta) this.eta.disabled = disabled;
  }

  /** The root element (for focus handling). */
  get element(): HTMLElement {
    return this.root;
  }
}
