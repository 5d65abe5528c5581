// Bundles the TypeScript entry points (page + worker) with esbuild into OUT_DIR
// (Trunk's staging dir when run as its pre_build hook, else ../dist).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = process.env.TRUNK_STAGING_DIR ?? path.join(here, "..", "dist");
const release = process.env.TRUNK_PROFILE === "release";

await build({
  entryPoints: [path.join(here, "src/main.ts"), path.join(here, "src/worker.ts")],
  bundle: true,
  format: "esm",
  target: "es2022",
  outdir,
  sourcemap: release ? false : "linked",
  minify: release,
  logLevel: "warning",
});
console.log(`web: bundled main.js and worker.js into ${outdir}`);
