/**
 * The shipped site's weight: each CPU module (one of which the page loads first) ≤ 1 MB gzip
 * (the CPU-path issue), the WebGPU module ≤ 3 MB gzip. Deterministic for a given build, so it can be a test:
 * a dependency or profile change that grows a download past its budget fails here, with the
 * numbers (docs/benchmarks.md, "Site weight"). `modules.json` must list what is on disk.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { distDir } from "./harness.ts";

/** Budgets (decimal MB) for the gzip-compressed wasm of each module. */
const BUDGET: Record<string, number> = { cpu: 1_000_000, relaxed: 1_000_000, threads: 1_000_000, webgpu: 3_000_000 };

interface Entry {
  js: string;
  wasm: string;
  gzipBytes: number;
  status?: string;
}

const manifest = JSON.parse(readFileSync(path.join(distDir, "modules.json"), "utf8")) as Record<string, Entry | null>;

for (const kind of ["cpu", "relaxed", "threads", "webgpu"]) {
  test(`the ${kind} module is within ${BUDGET[kind] / 1e6} MB gzip-compressed and has no name section`, () => {
    const entry = manifest[kind];
    assert.ok(entry, `modules.json lists no ${kind} module`);
    if (kind === "webgpu") assert.equal(entry.status, "ready", "the WebGPU module is not built (make build builds all three)");
    const file = path.join(distDir, entry.wasm);
    const wasm = readFileSync(file);
    const gzip = gzipSync(wasm, { level: 9 }).length;
    console.log(`${kind} module: ${(wasm.length / 1e6).toFixed(2)} MB raw, ${(gzip / 1e6).toFixed(2)} MB gzip -9`);
    assert.equal(entry.gzipBytes, gzip, "modules.json's size is not the file's");
    assert.ok(gzip <= BUDGET[kind], `${file}: ${gzip} bytes gzip-compressed, over the ${BUDGET[kind]}-byte budget`);
    // The post-build hook strips the function names; a build that skipped it would ship them.
    assert.equal(wasm.includes(Buffer.from("\u0004name")), false, "the wasm still has its name section (was the post-build hook skipped?)");
    readFileSync(path.join(distDir, entry.js)); // the glue is there too
  });
}

test("the plain CPU module validates without relaxed SIMD; the relaxed one needs it", () => {
  // V8's switch for relaxed SIMD, in a child process each way (Node 20 ships it off).
  const validates = (kind: string, relaxed: boolean) => {
    const file = path.join(distDir, manifest[kind]!.wasm);
    const flag = relaxed ? "--experimental-wasm-relaxed-simd" : "--no-experimental-wasm-relaxed-simd";
    const code = "process.stdout.write(String(WebAssembly.validate(require('fs').readFileSync(process.argv[1]))))";
    const r = spawnSync(process.execPath, [flag, "-e", code, file], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout === "true";
  };
  assert.equal(validates("cpu", false), true, "the plain module needs relaxed SIMD");
  assert.equal(validates("relaxed", false), false, "the relaxed module has no relaxed-SIMD instruction");
  assert.equal(validates("relaxed", true), true, "the relaxed module does not validate even with relaxed SIMD");
});
