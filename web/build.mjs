// Site build steps run by Trunk (Trunk.toml hooks; cwd = the repo root):
//   node web/build.mjs              pre_build: bundle the TypeScript entry points (page, worker,
//                                   bench worker) with esbuild into OUT_DIR (Trunk's staging dir,
//                                   else ../dist)
//   node web/build.mjs --wasm-opt   post_build: shrink the staged *_bg.wasm with wasm-opt from the
//                                   npm `binaryen` package (Trunk's own wasm-opt would be
//                                   downloaded from GitHub, so it is off in www/index.html)
// RFM_WASM_OPT overrides the wasm-opt flags (e.g. "-O2 --strip-debug"); "0" skips the step.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, renameSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = process.env.TRUNK_STAGING_DIR ?? path.join(here, "..", "dist");
const release = process.env.TRUNK_PROFILE === "release";

/**
 * The release wasm carries a ~26 MB name section (function names for stack traces) and the
 * producers section: stripping both halves the file. Optimisation passes (-O…) on top are
 * left out by default: binaryen's JavaScript build runs them single-threaded, minutes on
 * this ~25 MB module (see docs/ui.md).
 */
const DEFAULT_WASM_OPT = "--strip-debug --strip-producers";

function wasmOpt() {
  const flags = (process.env.RFM_WASM_OPT ?? DEFAULT_WASM_OPT).trim();
  if (flags === "0" || !release) {
    console.log(`web: wasm-opt skipped (${flags === "0" ? "RFM_WASM_OPT=0" : "not a release build"})`);
    return;
  }
  const tool = path.join(here, "node_modules", "binaryen", "bin", "wasm-opt");
  if (!existsSync(tool)) throw new Error(`web: ${tool} is missing: run npm ci in web/`);
  const files = readdirSync(outdir).filter((f) => f.endsWith("_bg.wasm"));
  if (files.length === 0) throw new Error(`web: no *_bg.wasm in ${outdir}`);
  for (const f of files) {
    const file = path.join(outdir, f);
    const tmp = `${file}.opt`;
    const before = statSync(file).size;
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [tool, file, ...flags.split(/\s+/), "-o", tmp], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`web: wasm-opt ${flags} failed on ${f} (exit ${r.status ?? r.signal})`);
    renameSync(tmp, file);
    const mb = (n) => (n / 1e6).toFixed(1);
    console.log(`web: wasm-opt ${flags}: ${f} ${mb(before)} MB → ${mb(statSync(file).size)} MB in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}

if (process.argv.includes("--wasm-opt")) {
  wasmOpt();
} else {
  await build({
    entryPoints: ["main", "worker", "benchWorker"].map((f) => path.join(here, `src/${f}.ts`)),
    bundle: true,
    format: "esm",
    target: "es2022",
    outdir,
    sourcemap: release ? false : "linked",
    minify: release,
    logLevel: "warning",
  });
  console.log(`web: bundled main.js, worker.js and benchWorker.js into ${outdir}`);
}
