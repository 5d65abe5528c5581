import { test } from "node:test";
import assert from "node:assert/strict";
import { FALLBACK_MANIFEST, WEBGPU_BUILDING, cpuEntry, parseManifest, pickCpuModule, webgpuModule, type Manifest } from "../src/modules.ts";

const entry = (js: string) => ({ js, wasm: js.replace(".js", "_bg.wasm"), bytes: 1, gzipBytes: 1 });
const full: Manifest = {
  build: "1",
  cpu: entry("rfm-playground.js"),
  relaxed: entry("rfm-playground-relaxed.js"),
  threads: entry("rfm-playground-threads.js"),
  webgpu: { status: "ready", ...entry("rfm-playground-webgpu.js") },
};

test("the CPU module: threads where isolated with wasm threads and relaxed SIMD, else relaxed, else plain", () => {
  const all = { relaxedSimd: true, threads: true };
  const relaxedOnly = { relaxedSimd: true, threads: false };
  const neither = { relaxedSimd: false, threads: false };
  assert.equal(pickCpuModule(full, all), "threads");
  assert.equal(pickCpuModule(full, relaxedOnly), "relaxed");
  assert.equal(pickCpuModule(full, neither), "cpu");
  // The threaded module is relaxed SIMD too: threads without relaxed SIMD (Safari) get the plain one.
  assert.equal(pickCpuModule(full, { relaxedSimd: false, threads: true }), "cpu");
  assert.equal(pickCpuModule({ ...full, threads: null }, all), "relaxed");
  assert.equal(pickCpuModule({ ...full, threads: null, relaxed: null }, all), "cpu");
  // Forced by `?module=`, only where it can run.
  assert.equal(pickCpuModule(full, all, "cpu"), "cpu");
  assert.equal(pickCpuModule(full, all, "relaxed"), "relaxed");
  assert.equal(pickCpuModule(full, relaxedOnly, "threads"), "relaxed");
  assert.equal(pickCpuModule(full, neither, "relaxed"), "cpu");
  assert.equal(cpuEntry(full, "threads").js, "rfm-playground-threads.js");
  assert.equal(cpuEntry({ ...full, threads: null }, "threads").js, "rfm-playground.js");
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

test("a thread pool that never starts gives up after the timeout (the loader then uses the relaxed module)", async () => {
  const { withTimeout } = await import("../src/moduleLoader.ts");
  await assert.rejects(withTimeout(new Promise(() => {}), 20, "the thread pool did not start"), /did not start within 0.02 s/);
  assert.equal(await withTimeout(Promise.resolve(7), 20, "x"), 7);
});

test("Firefox is given the relaxed module, not the threaded one (its pool start can hang there)", async () => {
  const { threadsUnreliableHere } = await import("../src/moduleLoader.ts");
  assert.equal(threadsUnreliableHere("Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"), true);
  assert.equal(threadsUnreliableHere("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"), false);
});
