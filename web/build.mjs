// Site build steps run by Trunk (Trunk.toml hooks; cwd = the repo root):
//   node web/build.mjs          pre_build: bundle the TypeScript entry points (page, worker,
//                               bench worker) with esbuild into OUT_DIR (Trunk's staging dir,
//                               else ../dist)
//   node web/build.mjs --post   post_build: shrink the staged CPU module (Trunk built it) with
//                               wasm-opt, build the other two modules of the core, and write
//                               `modules.json`, the list the worker loads from:
//     rfm-playground.js           CPU only, plain SIMD128 (Trunk's `rel="rust"` link): the default
//     rfm-playground-relaxed.js   CPU only, relaxed SIMD (fused multiply-add), where supported
//     rfm-playground-threads.js   the relaxed module with wasm threads (a rayon pool of Web
//                                 Workers), for cross-origin isolated pages
//     rfm-playground-webgpu.js    burn's WebGPU runtime too, loaded only when WebGPU is used
// RFM_LATER_MODULES=background (what `make serve` sets): the threaded and WebGPU modules are
// built in the background once the site is served (on a fresh machine each is minutes: the
// threaded one rebuilds std and every crate with atomics), and copied into the served folder
// when ready; until then the page uses the relaxed-SIMD module and says "The WebGPU module is
// still building" when WebGPU is asked for. RFM_WASM_OPT overrides the wasm-opt flags (e.g. "-O2
// --strip-debug"); "0" skips the step.
import { build } from "esbuild";
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..");
const outdir = process.env.TRUNK_STAGING_DIR ?? path.join(root, "dist");
const release = process.env.TRUNK_PROFILE === "release";
/** The cargo profile Trunk builds with (`data-cargo-profile-release` in www/index.html). */
const profile = release ? "wasm" : "dev";

/**
 * The release wasm carries a large name section (function names for stack traces) and the
 * producers section: stripping both halves the file. Optimisation passes (-O…) on top are
 * left out by default: binaryen's JavaScript build runs them single-threaded, minutes on the
 * WebGPU module (see docs/ui.md).
 */
const DEFAULT_WASM_OPT = "--strip-debug --strip-producers";

/** The modules besides Trunk's: name → cargo features (and, for threads, a build of std and of
 * every crate with atomics, in a target directory of its own so the others are not rebuilt). */
const VARIANTS = {
  relaxed: { features: "relaxed-simd" },
  threads: {
    features: "threads",
    // Not in .cargo/config.toml: RUSTFLAGS replaces the config's flags, so it repeats +simd128.
    env: { RUSTFLAGS: "-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals" },
    targetSuffix: "-threads",
    // The module's memory must be imported and shared (the pool's workers instantiate the same
    // module on it), with the thread-local-storage hooks wasm-bindgen calls: link flags for the
    // final crate only (`cargo rustc`), so the dependencies keep their build.
    linkArgs: [
      "--shared-memory", "--import-memory", "--max-memory=2147483648",
      "--export=__wasm_init_tls", "--export=__tls_size", "--export=__tls_align", "--export=__tls_base",
    ],
  },
  // Our crate at opt-level "s" in this module only (3 elsewhere): its burn/cubecl glue is
  // monomorphised here, and at 3 it weighed ~185 kB gzip more (docs/benchmarks.md, "Site
  // weight"). The module's arithmetic runs on the GPU; its host-side estimator was measured
  // beside it.
  webgpu: { features: "webgpu", config: ['profile.wasm.package.rfm-playground.opt-level="s"'] },
};

const log = (msg) => console.log(`web: ${msg}`);
const mb = (n) => (n / 1e6).toFixed(2);

function wasmOpt(file) {
  const flags = (process.env.RFM_WASM_OPT ?? DEFAULT_WASM_OPT).trim();
  if (flags === "0" || !release) {
    log(`wasm-opt skipped on ${path.basename(file)} (${flags === "0" ? "RFM_WASM_OPT=0" : "not a release build"})`);
    return;
  }
  const tool = path.join(here, "node_modules", "binaryen", "bin", "wasm-opt");
  if (!existsSync(tool)) throw new Error(`web: ${tool} is missing: run npm ci in web/`);
  const tmp = `${file}.opt`;
  const before = statSync(file).size;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [tool, file, ...flags.split(/\s+/), "-o", tmp], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`web: wasm-opt ${flags} failed on ${file} (exit ${r.status ?? r.signal})`);
  renameSync(tmp, file);
  log(`wasm-opt ${flags}: ${path.basename(file)} ${mb(before)} MB → ${mb(statSync(file).size)} MB in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/** `{ js, wasm, bytes, gzipBytes }` of a module in `dir`. */
function describe(dir, name) {
  const wasm = `${name}_bg.wasm`;
  const bytes = readFileSync(path.join(dir, wasm));
  return { js: `${name}.js`, wasm, bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
}

/**
 * Build one module of the core with cargo (the same target directory as Trunk's build, so only
 * the crates whose features differ are compiled again), run wasm-bindgen and wasm-opt, and
 * leave `rfm-playground-<variant>.js` / `_bg.wasm` in `dir`.
 */
function buildVariant(variant, dir) {
  const t0 = Date.now();
  const v = VARIANTS[variant];
  const args = [
    v.linkArgs ? "rustc" : "build", "--lib", "--offline", "--profile", profile, "--target", "wasm32-unknown-unknown",
    "--manifest-path", path.join(root, "crate", "Cargo.toml"), "--features", VARIANTS[variant].features,
    ...(v.config ?? []).flatMap((c) => ["--config", c]),
    "--message-format=json-render-diagnostics",
    ...(v.linkArgs ? ["--", ...v.linkArgs.flatMap((a) => ["-C", `link-arg=${a}`])] : []),
  ];
  const env = { ...process.env, ...(VARIANTS[variant].env ?? {}) };
  if (VARIANTS[variant].targetSuffix) {
    // scripts/toolchain/cargo adds "-wasm" to the directory it is given.
    const base = (process.env.CARGO_TARGET_DIR ?? path.join(root, "target")).replace(/-wasm$/, "");
    env.CARGO_TARGET_DIR = `${base}${VARIANTS[variant].targetSuffix}`;
  }
  log(`building the ${variant} module: cargo ${args.join(" ")}`);
  const r = spawnSync("cargo", args, { cwd: root, env, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`web: cargo build of the ${variant} module failed (exit ${r.status ?? r.signal})`);
  let artifact = null;
  for (const line of r.stdout.toString().split("\n")) {
    if (!line.startsWith("{")) continue;
    const m = JSON.parse(line);
    if (m.reason === "compiler-artifact" && m.target?.name === "rfm_playground") {
      artifact = m.filenames.find((f) => f.endsWith(".wasm")) ?? artifact;
    }
  }
  if (!artifact) throw new Error(`web: cargo built no rfm_playground.wasm for the ${variant} module`);
  mkdirSync(dir, { recursive: true });
  const name = `rfm-playground-${variant}`;
  const b = spawnSync("wasm-bindgen", ["--target", "web", "--no-typescript", "--out-dir", dir, "--out-name", name, artifact], { stdio: "inherit" });
  if (b.status !== 0) throw new Error(`web: wasm-bindgen failed on the ${variant} module (exit ${b.status ?? b.signal})`);
  if (variant === "threads") patchPoolWorker(dir);
  wasmOpt(path.join(dir, `${name}_bg.wasm`));
  log(`${variant} module built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return describe(dir, name);
}

/**
 * wasm-bindgen-rayon 1.3.0's no-bundler pool worker (a snippet wasm-bindgen copies next to the
 * module) starts each thread with `init(module, memory)`, a form wasm-bindgen deprecated in 0.2.93:
 * every pool thread then logs "using deprecated parameters for the initialization function". The
 * same call in the one-object form wasm-bindgen documents (and the crate's bundler variant
 * uses) is silent. A snippet in neither form fails the build, so a new version gets looked at.
 */
const POOL_INIT_OLD = "await pkg.default(data.module, data.memory);";
const POOL_INIT_NEW = "await pkg.default({ module_or_path: data.module, memory: data.memory });";

function patchPoolWorker(dir) {
  const snippets = path.join(dir, "snippets");
  const files = existsSync(snippets)
    ? readdirSync(snippets)
        .filter((d) => d.startsWith("wasm-bindgen-rayon-"))
        .map((d) => path.join(snippets, d, "src", "workerHelpers.no-bundler.js"))
        .filter((f) => existsSync(f))
    : [];
  if (files.length === 0) throw new Error(`web: the threaded module has no wasm-bindgen-rayon pool worker under ${snippets}`);
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    if (text.includes(POOL_INIT_NEW)) continue;
    if (!text.includes(POOL_INIT_OLD)) {
      throw new Error(`web: ${file} does not start its threads with \`${POOL_INIT_OLD}\` (a new wasm-bindgen-rayon?): check its init call and update patchPoolWorker`);
    }
    writeFileSync(file, text.replace(POOL_INIT_OLD, POOL_INIT_NEW));
    log(`pool worker: ${path.relative(dir, file)} starts its threads with the one-object init`);
  }
}

function copyModule(info, from, to) {
  for (const f of [info.js, info.wasm]) copyFileSync(path.join(from, f), path.join(to, f));
  if (existsSync(path.join(from, "snippets"))) cpSync(path.join(from, "snippets"), path.join(to, "snippets"), { recursive: true });
}

function writeManifest(dir, manifest) {
  const file = path.join(dir, "modules.json");
  writeFileSync(`${file}.tmp`, JSON.stringify(manifest, null, 2) + "\n");
  renameSync(`${file}.tmp`, file);
}

/** Where the background builds (RFM_LATER_MODULES) keep their output and log between Trunk builds. */
function cacheDir() {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
  return path.join(target.endsWith("-wasm") ? target : `${target}-wasm`, "site-modules");
}

/** The modules `RFM_LATER_MODULES=background` builds after the site is served, in this order. */
const LATER = ["threads", "webgpu"];

/** post_build: the CPU module, the relaxed-SIMD module, then the threaded and WebGPU modules now or after. */
function post() {
  const trunkWasm = readdirSync(outdir).find((f) => f === "rfm-playground_bg.wasm");
  if (!trunkWasm) throw new Error(`web: no rfm-playground_bg.wasm in ${outdir}`);
  wasmOpt(path.join(outdir, trunkWasm));
  const manifest = {
    build: `${Date.now()}-${process.pid}`,
    cpu: describe(outdir, "rfm-playground"),
    relaxed: buildVariant("relaxed", outdir),
    threads: null,
    webgpu: null,
  };
  if (process.env.RFM_LATER_MODULES === "background") {
    manifest.webgpu = { status: "building" };
    writeManifest(outdir, manifest);
    const cache = cacheDir();
    mkdirSync(cache, { recursive: true });
    const pidFile = path.join(cache, "later-build.pid");
    try {
      process.kill(-Number(readFileSync(pidFile, "utf8")), "SIGTERM"); // an older build's job
    } catch {
      // none running
    }
    const logFile = path.join(cache, "later-build.log");
    const out = openSync(logFile, "w");
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--later", manifest.build], {
      cwd: root,
      detached: true,
      stdio: ["ignore", out, out],
      env: process.env,
    });
    writeFileSync(pidFile, String(child.pid));
    child.unref();
    log(`the threaded and WebGPU modules are building in the background (log: ${logFile}); the page uses the relaxed-SIMD module until then`);
  } else {
    // wasm-bindgen writes the pool's worker script (a JS snippet) under snippets/ in `outdir`.
    manifest.threads = buildVariant("threads", outdir);
    manifest.webgpu = { status: "ready", ...buildVariant("webgpu", outdir) };
    writeManifest(outdir, manifest);
  }
  const sizes = ["cpu", "relaxed", "threads", "webgpu"].filter((k) => manifest[k]?.gzipBytes).map((k) => `${k} ${mb(manifest[k].gzipBytes)} MB`);
  log(`modules.json written (gzip: ${sizes.join(", ")})`);
}

/**
 * The background half of RFM_LATER_MODULES=background: build each later module into the cache,
 * wait for Trunk to publish the build that started this job, then copy the module into the
 * served folder and list it in modules.json. A newer site build stops this job (post() kills
 * it) and starts its own.
 */
function later(buildId) {
  const dist = process.env.TRUNK_DIST_DIR ?? path.join(root, "dist");
  const current = () => {
    try {
      return JSON.parse(readFileSync(path.join(dist, "modules.json"), "utf8"));
    } catch {
      return null;
    }
  };
  const publish = (update) => {
    const deadline = Date.now() + 15 * 60_000;
    while (Date.now() < deadline) {
      const m = current();
      if (m?.build === buildId) return writeManifest(dist, { ...m, ...update(m) });
      spawnSync("sleep", ["1"]);
    }
    throw new Error("web: the served folder never showed the build these modules belong to");
  };
  for (const variant of LATER) {
    const cache = path.join(cacheDir(), variant);
    let info;
    try {
      info = buildVariant(variant, cache);
    } catch (e) {
      if (variant === "webgpu") publish(() => ({ webgpu: { status: "failed", message: String(e.message ?? e) } }));
      log(`the ${variant} module failed to build: ${e.message ?? e}`);
      continue;
    }
    publish(() => {
      copyModule(info, cache, dist);
      return { [variant]: variant === "webgpu" ? { status: "ready", ...info } : info };
    });
    log(`${variant} module ready: ${dist}/${info.js} (${mb(info.gzipBytes)} MB gzip)`);
  }
}

if (process.argv.includes("--post")) {
  post();
} else if (process.argv.includes("--later")) {
  later(process.argv[process.argv.indexOf("--later") + 1]);
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
  log(`bundled main.js, worker.js and benchWorker.js into ${outdir}`);
}
