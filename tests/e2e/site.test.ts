/**
 * The shipped site's weight (issue: ≤ 3 MB gzip for the wasm). Deterministic for a given
 * build, so it can be a test: a dependency or profile change that grows the download past the
 * budget fails here, with the numbers (docs/benchmarks.md, "Site weight").
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { distDir } from "./harness.ts";

/** 3 MB (decimal), the budget for the gzip-compressed wasm. */
const GZIP_BUDGET = 3_000_000;

test("the wasm core is at most 3 MB gzip-compressed and has no name section", () => {
  const file = path.join(distDir, "rfm-playground_bg.wasm");
  const wasm = readFileSync(file);
  const gzip = gzipSync(wasm, { level: 9 }).length;
  console.log(`wasm: ${(wasm.length / 1e6).toFixed(2)} MB raw, ${(gzip / 1e6).toFixed(2)} MB gzip -9`);
  assert.ok(gzip <= GZIP_BUDGET, `${file}: ${gzip} bytes gzip-compressed, over the ${GZIP_BUDGET}-byte budget`);
  // The post-build hook strips the function names (most of the unstripped file's 65 MB); a
  // build that skipped it would ship them.
  assert.equal(wasm.includes(Buffer.from("\u0004name")), false, "the wasm still has its name section (was the post-build hook skipped?)");
});
