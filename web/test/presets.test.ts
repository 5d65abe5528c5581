import { test } from "node:test";
import assert from "node:assert/strict";
import { PRESETS, applyPreset, presetById } from "../src/presets.ts";
import { PROPS } from "../src/state.ts";
import { CONFIG } from "./state.test.ts";

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

test("preset patches only use config fields and listed choices", () => {
  const fields = new Map(PROPS.map((p) => [p.name, p]));
  for (const p of PRESETS) {
    for (const patch of [p.patch, ...p.variants.map((v) => v.patch)]) {
      for (const [k, v] of Object.entries(patch)) {
        const row = fields.get(k as keyof typeof CONFIG);
        assert.ok(row, `${p.id}: unknown field ${k}`);
        if (row.kind === "select" && k !== "estimator") assert.ok(row.options!.includes(String(v)), `${p.id}: ${k}=${v}`);
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
