import { test } from "node:test";
import assert from "node:assert/strict";
import { benchPlan } from "../src/bench.ts";

test("benchPlan's defaults: both backends only with WebGPU, the playground, 3 s, one seed, no overrides", () => {
  const p = benchPlan("?bench", false);
  assert.deepEqual(p, {
    backends: ["cpu"],
    configs: ["playground"],
    modules: ["auto"],
    seconds: 3,
    measure: "updates,actions,estimator",
    seeds: [1],
    overrides: null,
  });
  assert.deepEqual(benchPlan("?bench", true).backends, ["cpu", "webgpu"]);
});

test("benchPlan reads seeds, seconds and the spec overrides, passed on unparsed for the core to check", () => {
  const q = new URLSearchParams({ bench: "webgpu", seconds: "0", seeds: "1,8,x,0,32", overrides: ' {"batch":1024} ' });
  const p = benchPlan(`?${q}`, true);
  assert.deepEqual(p.backends, ["webgpu"]);
  assert.equal(p.seconds, 0);
  assert.deepEqual(p.seeds, [1, 8, 32]);
  assert.equal(p.overrides, '{"batch":1024}');
  assert.equal(benchPlan("?bench&overrides=", false).overrides, null);
  assert.equal(benchPlan("?bench&seconds=-1", false).seconds, 3);
});
