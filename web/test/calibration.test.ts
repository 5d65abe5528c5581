import { test } from "node:test";
import assert from "node:assert/strict";
import { calibrationKey, decide, parseCalibration } from "../src/calibration.ts";
import { backendBadge } from "../src/backend.ts";
import { CONFIG } from "./fixtures.ts";

test("auto takes the faster backend and says both figures", () => {
  assert.deepEqual(decide({ webgpu: 41.2, cpu: 28.4, at: 1 }, false), { backend: "webgpu", text: "WebGPU 41 upd/s · CPU 28 upd/s → WebGPU" });
  assert.deepEqual(decide({ webgpu: 0.146, cpu: 97.5, at: 1 }, false), { backend: "cpu", text: "WebGPU 0.15 upd/s · CPU 98 upd/s → CPU" });
  assert.equal(decide({ webgpu: 5, cpu: 5, at: 1 }, false).backend, "cpu", "a tie keeps the CPU");
  assert.match(decide({ webgpu: 3.25, cpu: 1, at: 1 }, true).text, /^WebGPU 3\.3 upd\/s · CPU 1\.0 upd\/s → WebGPU \(measured earlier in this browser\)$/);
});

test("the figures are remembered per adapter and size class; a 2× bigger experiment is measured again", () => {
  const base = CONFIG;
  const same = calibrationKey("nvidia ampere", { ...base, seed: 7, lambda: 0.3 });
  assert.equal(calibrationKey("nvidia ampere", base), same);
  assert.notEqual(calibrationKey("nvidia ampere", { ...base, batch: base.batch * 2 }), same);
  assert.notEqual(calibrationKey("nvidia ampere", { ...base, hidden: base.hidden * 2 }), same);
  assert.notEqual(calibrationKey("amd rdna3", base), same);
  assert.notEqual(calibrationKey("nvidia ampere", { ...base, mode: "sampler" }), same);
  // Seeds at once are measured together: eight of them are another size class.
  assert.notEqual(calibrationKey("nvidia ampere", { ...base, seeds: 8 }), same);
});

test("a damaged calibration record reads as not measured", () => {
  assert.equal(parseCalibration(null), null);
  assert.equal(parseCalibration({ webgpu: "fast", cpu: 1, at: 1 }), null);
  assert.equal(parseCalibration({ webgpu: NaN, cpu: 1, at: 1 }), null);
  assert.deepEqual(parseCalibration({ webgpu: 2, cpu: 1, at: 3 }), { webgpu: 2, cpu: 1, at: 3 });
});

test("on WebGPU the badge shows auto's figures, the adapter in the tooltip", () => {
  const b = backendBadge({ kind: "webgpu", adapter: "WebGPU: nvidia ampere", fallbackReason: "WebGPU 41 upd/s · CPU 28 upd/s → WebGPU" });
  assert.deepEqual(b, { text: "WebGPU 41 upd/s · CPU 28 upd/s → WebGPU", detail: "WebGPU: nvidia ampere" });
});
