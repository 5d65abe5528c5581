import { test } from "node:test";
import assert from "node:assert/strict";
import {
  State,
  STATE_AXES,
  changedFields,
  fieldApplies,
  fragmentFromHash,
  joinEstimator,
  logToSlider,
  parseNumber,
  sliderToLog,
  splitEstimator,
  switchMode,
} from "../src/state.ts";
import { CONFIG } from "./fixtures.ts";


test("a field applies to its modes and, in RL, to its agents", () => {
  const flowOnly = { modes: ["rl", "sampler"] as const, agents: ["rfm"] as const };
  const rlOnly = { modes: ["rl"] as const, agents: ["rfm", "sac"] as const };
  const f = (x: { modes: readonly string[]; agents: readonly string[] }) => x as Parameters<typeof fieldApplies>[0];
  assert.equal(fieldApplies(f(flowOnly), { mode: "rl", agent: "rfm" }), true);
  assert.equal(fieldApplies(f(flowOnly), { mode: "rl", agent: "sac" }), false);
  // Agents only matter in RL: sampler mode has no agent choice.
  assert.equal(fieldApplies(f(flowOnly), { mode: "sampler", agent: "sac" }), true);
  assert.equal(fieldApplies(f(rlOnly), { mode: "sampler", agent: "rfm" }), false);
  assert.equal(fieldApplies(f(rlOnly), { mode: "rl", agent: "sac" }), true);
});

test("a mode switch takes that mode's defaults for every field but the seed", () => {
  const samplerDefaults = { ...CONFIG, mode: "sampler" as const, lambda: 1, k: 64, seed: 0 };
  const current = { ...CONFIG, lambda: 0.1, k: 16, hidden: 32, seed: 42 };
  const { config, changed } = switchMode(current, samplerDefaults);
  assert.deepEqual(config, { ...samplerDefaults, seed: 42 });
  assert.deepEqual(changed.sort(), ["hidden", "k", "lambda"]);
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
