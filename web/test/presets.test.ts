import { test } from "node:test";
import assert from "node:assert/strict";
import { PRESETS, applyPreset, presetById } from "../src/presets.ts";
import { CONFIG } from "./fixtures.ts";

test("the three class presets exist with an explanation and variants", () => {
  assert.deepEqual(PRESETS.map((p) => p.id), ["multimodal", "estimators", "temperature"]);
  for (const p of PRESETS) {
    assert.ok(p.text.length > 200, `${p.id}: one real paragraph`);
    assert.ok(!p.text.includes("\n"), `${p.id}: one paragraph`);
    assert.ok(p.variants.length >= 2, `${p.id}: something to compare`);
  }
  assert.equal(presetById("estimators")?.title, "Noise vs gradient estimator");
  assert.equal(presetById("nope"), undefined);
});

test("preset patches only use config fields, with values of the field's type", () => {
  // (Which values are allowed is the crate's to say: the e2e lesson tests run every preset.)
  for (const p of PRESETS) {
    for (const patch of [p.patch, ...p.variants.map((v) => v.patch)]) {
      for (const [k, v] of Object.entries(patch)) {
        assert.ok(k in CONFIG, `${p.id}: unknown field ${k}`);
        assert.equal(typeof v, typeof CONFIG[k as keyof typeof CONFIG], `${p.id}: ${k}=${v}`);
      }
    }
  }
});

test("applyPreset layers defaults < preset < variant", () => {
  const mm = presetById("multimodal")!;
  const c = applyPreset({ ...CONFIG, mode: "sampler", seed: 7 }, mm, mm.variants[1]);
  assert.equal(c.mode, "rl");
  assert.equal(c.env, "multigoal");
  assert.equal(c.agent, "sac");
  assert.equal(c.seed, 7);
  const est = presetById("estimators")!;
  assert.equal(applyPreset(CONFIG, est).estimator, "noise");
  assert.equal(applyPreset(CONFIG, est, est.variants[2]).estimator, "rfm");
  assert.equal(applyPreset(CONFIG, est).mode, "sampler");
});

test("the multigoal lesson claims only what its settings show", () => {
  // At λ = 0.1 the target exp(Q/λ) at the centre has one sharp peak: the lesson must not promise
  // mass on every goal at once (the e2e lesson test checks what it does claim: the flow follows
  // its target, KL well below uniform actions', sustained).
  const mm = presetById("multimodal")!;
  assert.doesNotMatch(mm.text, /every goal at once|all (four )?goals at once/);
  assert.match(mm.text, /λ = 0\.1/);
  assert.equal(applyPreset(CONFIG, mm).lambda, CONFIG.lambda, "the lesson runs at the defaults' λ that its text names");
});
