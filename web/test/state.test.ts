import { test } from "node:test";
import assert from "node:assert/strict";
import {
  PROPS,
  State,
  STATE_AXES,
  changedFields,
  fragmentFromHash,
  joinEstimator,
  logToSlider,
  parseNumber,
  prop,
  sliderToLog,
  splitEstimator,
} from "../src/state.ts";
import type { PlaygroundConfig } from "../src/protocol.ts";

export const CONFIG: PlaygroundConfig = {
  mode: "rl",
  env: "multigoal",
  target: "gmm8",
  agent: "rfm",
  estimator: "rfm",
  param: "flow",
  solver: "euler",
  lambda: 0.1,
  k: 16,
  candidates: 8,
  odeSteps: 10,
  hidden: 64,
  actorLr: 1e-3,
  criticLr: 1e-3,
  batch: 128,
  embWidth: 32,
  warmup: 200,
  replay: 50000,
  proposal: "mixture",
  evalEvery: 1000,
  evalEpisodes: 3,
  steps: 0,
  seed: 0,
};

test("PROPS has exactly one row per config field", () => {
  const names = PROPS.map((p) => p.name).sort();
  assert.deepEqual(names, Object.keys(CONFIG).sort());
  assert.equal(new Set(names).size, names.length);
  for (const p of PROPS) {
    if (p.kind === "select") assert.ok(p.options && p.options.length >= 2, `${p.name} needs choices`);
    else assert.ok(p.min !== undefined && p.max !== undefined && p.min < p.max, `${p.name} needs a slider range`);
    if (p.kind === "log") assert.ok(p.min! > 0, `${p.name}: log range must be positive`);
  }
  assert.throws(() => prop("nope" as keyof PlaygroundConfig), /no PROPS row/);
});

test("select choices match the protocol's names", () => {
  assert.deepEqual([...prop("mode").options!].sort(), ["rl", "sampler"]);
  assert.deepEqual([...prop("env").options!].sort(), ["mountain-car", "multigoal", "pendulum"]);
  assert.deepEqual([...prop("target").options!].sort(), ["gmm40", "gmm8", "rings", "two-moons"]);
  assert.deepEqual([...prop("solver").options!].sort(), ["euler", "heun"]);
});

test("estimator names split and join", () => {
  assert.deepEqual(splitEstimator("eta:0.25"), { kind: "eta", eta: 0.25 });
  assert.equal(splitEstimator("noise").kind, "noise");
  assert.equal(splitEstimator("noise").eta, 0);
  assert.equal(splitEstimator("grad").eta, 1);
  assert.equal(joinEstimator("eta", 0.25), "eta:0.25");
  assert.equal(joinEstimator("eta", 1 / 3), "eta:0.333");
  assert.equal(joinEstimator("rfm", 0.7), "rfm");
  for (const e of ["rfm", "noise", "grad", "eta:0", "eta:0.5", "eta:1"] as const) {
    const { kind, eta } = splitEstimator(e);
    assert.equal(joinEstimator(kind, eta), e);
  }
});

test("parseNumber accepts plain numbers only", () => {
  assert.equal(parseNumber("3"), 3);
  assert.equal(parseNumber(" 1e-3 "), 0.001);
  assert.equal(parseNumber("-2.5"), -2.5);
  assert.equal(parseNumber(".5"), 0.5);
  for (const bad of ["", "abc", "1,5", "0x10", "Infinity", "1e", "--1"]) assert.ok(Number.isNaN(parseNumber(bad)), bad);
});

test("log sliders round-trip within 3 significant digits", () => {
  assert.equal(logToSlider(1e-3, 1e-5, 1e-1), 500);
  assert.equal(sliderToLog(500, 1e-5, 1e-1), 0.001);
  assert.equal(logToSlider(1e-9, 1e-5, 1e-1), 0);
  assert.equal(logToSlider(5, 1e-5, 1e-1), 1000);
  assert.equal(logToSlider(-1, 1e-5, 1e-1), 0);
  for (const v of [0.1, 0.02, 3]) {
    const back = sliderToLog(logToSlider(v, 1e-3, 10), 1e-3, 10);
    assert.ok(Math.abs(back - v) / v < 0.01, `${v} → ${back}`);
  }
});

test("State answers the query state per mode and env", () => {
  const s = new State(CONFIG);
  assert.deepEqual(s.queryState(), [0, 0]);
  s.config.env = "pendulum";
  assert.deepEqual(s.queryState(), [Math.PI, 0]);
  s.probeState.pendulum[1] = 2;
  assert.deepEqual(s.queryState(), [Math.PI, 2]);
  s.config.mode = "sampler";
  assert.equal(s.queryState(), null);
  assert.equal(s.visible(prop("target")), true);
  assert.equal(s.visible(prop("env")), false);
  // The config is copied, not shared.
  assert.equal(CONFIG.mode, "rl");
});

test("probe ranges contain the default probe states", () => {
  const s = new State(CONFIG);
  for (const env of ["pendulum", "mountain-car", "multigoal"] as const) {
    STATE_AXES[env].forEach((ax, i) => {
      const v = s.probeState[env][i];
      assert.ok(v >= ax.min - 1e-9 && v <= ax.max + 1e-9, `${env}[${i}] = ${v}`);
    });
  }
});

test("fragments and changed fields", () => {
  assert.equal(fragmentFromHash(""), null);
  assert.equal(fragmentFromHash("#"), null);
  assert.equal(fragmentFromHash("#v1.abc"), "v1.abc");
  assert.equal(fragmentFromHash("#v1%2Eabc"), "v1.abc");
  assert.equal(fragmentFromHash("#%%%bad"), "%%%bad");
  assert.deepEqual(changedFields(CONFIG, { ...CONFIG, k: 4, seed: 2 }), ["k", "seed"]);
});
