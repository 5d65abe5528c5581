import { test } from "node:test";
import assert from "node:assert/strict";
import { NO_WEBGPU, backendBadge, looksTechnical, resolveBackend, softwareAdapter, type AdapterFacts } from "../src/backend.ts";

const hw: AdapterFacts = { isFallbackAdapter: false, vendor: "nvidia", architecture: "ampere", description: "" };
const swiftshader: AdapterFacts = { isFallbackAdapter: false, vendor: "google", architecture: "swiftshader", description: "" };

test("software adapters are told apart from hardware ones", () => {
  assert.equal(softwareAdapter(hw), null);
  assert.equal(softwareAdapter(swiftshader), "SwiftShader");
  assert.equal(softwareAdapter({ ...hw, vendor: "mesa", description: "llvmpipe (LLVM 15.0.6, 256 bits)" }), "llvmpipe");
  assert.equal(softwareAdapter({ ...hw, architecture: "Lavapipe" }), "lavapipe");
  assert.equal(softwareAdapter({ ...hw, isFallbackAdapter: true }), "a fallback adapter");
});

test("auto trains on the CPU with a software adapter or no WebGPU, and says why", () => {
  assert.deepEqual(resolveBackend("auto", hw), { backend: "auto", reason: null });
  assert.deepEqual(resolveBackend("auto", swiftshader), {
    backend: "cpu",
    reason: "Software WebGPU adapter (SwiftShader) found: training on the CPU, which is faster",
  });
  assert.deepEqual(resolveBackend("auto", null), { backend: "cpu", reason: NO_WEBGPU });
  // A forced choice is passed on as it is, software adapter or not.
  assert.deepEqual(resolveBackend("webgpu", swiftshader), { backend: "webgpu", reason: null });
  assert.deepEqual(resolveBackend("cpu", hw), { backend: "cpu", reason: null });
});

test("the badge uses plain words; raw errors go to its tooltip", () => {
  const raw = "No adapter available for WgpuDevice { kind: DefaultDevice }";
  assert.equal(looksTechnical(raw), true);
  assert.equal(looksTechnical(NO_WEBGPU), false);
  const b = backendBadge({ kind: "cpu", adapter: "flex (pure-Rust CPU)", fallbackReason: raw });
  assert.equal(b.text, "CPU — WebGPU could not be used here; training on the CPU");
  assert.ok(!b.text.includes("Wgpu"));
  assert.equal(b.detail, `flex (pure-Rust CPU): ${raw}`);
  assert.equal(backendBadge({ kind: "cpu", adapter: "flex", fallbackReason: NO_WEBGPU }).text, `CPU — ${NO_WEBGPU}`);
  assert.equal(backendBadge({ kind: "cpu", adapter: "flex", fallbackReason: null }).text, "CPU");
  assert.equal(backendBadge({ kind: "webgpu", adapter: "WebGPU: google swiftshader", fallbackReason: null }).text, "WebGPU: google swiftshader");
});
