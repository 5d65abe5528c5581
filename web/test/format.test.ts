import { test } from "node:test";
import assert from "node:assert/strict";
import { describeBackend, describeLoss, fmt } from "../src/format.ts";

test("describeBackend names the CPU fallback reason", () => {
  assert.equal(
    describeBackend({ kind: "cpu", adapter: "flex", fallbackReason: "no navigator.gpu" }),
    "CPU (flex) — no navigator.gpu",
  );
  assert.equal(describeBackend({ kind: "cpu", adapter: "flex", fallbackReason: null }), "CPU (flex)");
  assert.equal(describeBackend({ kind: "webgpu", adapter: "WebGPU: x", fallbackReason: null }), "WebGPU: x");
});

test("fmt uses fixed or exponent form by magnitude", () => {
  assert.equal(fmt(0.5), "0.5000");
  assert.equal(fmt(0.0001234), "1.23e-4");
  assert.equal(fmt(123456), "1.23e+5");
  assert.equal(fmt(0), "0.0000");
  assert.equal(fmt(Number.NaN), "NaN");
  assert.equal(describeLoss(0.5, 0.01, 50), "0.5000 → 0.0100 in 50 steps");
});
