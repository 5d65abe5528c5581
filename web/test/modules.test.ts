import { test } from "node:test";
import assert from "node:assert/strict";
import { FALLBACK_MANIFEST, WEBGPU_BUILDING, parseManifest, pickCpuModule, webgpuModule, type Manifest } from "../src/modules.ts";

const entry = (js: string) => ({ js, wasm: js.replace(".js", "_bg.wasm"), bytes: 1, gzipBytes: 1 });
const full: Manifest = {
  build: "1",
  cpu: entry("rfm-playground.js"),
  relaxed: entry("rfm-playground-relaxed.js"),
  webgpu: { status: "ready", ...entry("rfm-playground-webgpu.js") },
};

test("the relaxed-SIMD module is picked only where the browser has relaxed SIMD and the site ships it", () => {
  assert.equal(pickCpuModule(full, true), "relaxed");
  assert.equal(pickCpuModule(full, false), "cpu");
  assert.equal(pickCpuModule({ ...full, relaxed: null }, true), "cpu");
  assert.equal(pickCpuModule(full, true, "cpu"), "cpu");
  assert.equal(pickCpuModule(full, false, "relaxed"), "relaxed");
  assert.equal(pickCpuModule({ ...full, relaxed: null }, true, "relaxed"), "cpu");
});

test("the WebGPU module: ready, still building, failed, or absent — each in words", () => {
  assert.deepEqual(webgpuModule(full), { entry: full.webgpu });
  assert.deepEqual(webgpuModule({ ...full, webgpu: { status: "building" } }), { unavailable: WEBGPU_BUILDING });
  const failed = webgpuModule({ ...full, webgpu: { status: "failed", message: "cargo exited 101" } });
  assert.ok("unavailable" in failed && failed.unavailable.includes("cargo exited 101"));
  const none = webgpuModule({ ...full, webgpu: null });
  assert.ok("unavailable" in none && /without the WebGPU module/.test(none.unavailable));
});

test("a missing or malformed modules.json falls back to the CPU module alone", () => {
  assert.deepEqual(parseManifest(null), FALLBACK_MANIFEST);
  assert.deepEqual(parseManifest("{not json"), FALLBACK_MANIFEST);
  assert.deepEqual(parseManifest(JSON.stringify({ cpu: 3 })), FALLBACK_MANIFEST);
  assert.deepEqual(parseManifest(JSON.stringify(full)), full);
});
