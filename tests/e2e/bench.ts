/**
 * The in-page benchmark from the command line: serves the built site (dist/, or RFM_DIST), opens
 * `?bench&<query>` in headless Chromium and prints the JSON rows (web/src/bench.ts). Run after
 * `make build`, e.g. both CPU modules alternately, twice, in one run:
 *   cd tests && BENCH_QUERY='bench=cpu&configs=playground,released&modules=cpu,relaxed&seconds=3' \
 *     BENCH_ROUNDS=2 node --import tsx e2e/bench.ts
 * (the figures of docs/benchmarks.md, "In-page benchmark").
 */
import { launch, serveDist } from "./harness.ts";

const query = process.env.BENCH_QUERY ?? "bench=cpu&configs=playground&seconds=3";
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
const server = await serveDist();
const browser = await launch({ webgpu: /bench=(webgpu|all|$)/.test(query) });
try {
  for (let round = 1; round <= rounds; round++) {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`pageerror: ${e.message}`));
    page.on("console", (m) => m.type() === "warning" || m.type() === "error" ? console.error(`console ${m.type()}: ${m.text()}`) : undefined);
    await page.goto(`${server.url}?${query}`);
    await page.waitForSelector("body[data-bench=done], body[data-bench=error]", { timeout: 1_200_000 });
    const out = JSON.parse((await page.textContent("#bench-result")) ?? "{}") as { rows?: Record<string, unknown>[] };
    for (const r of out.rows ?? []) {
      const rate = (k: string) => (r[k] as { perS?: number } | undefined)?.perS?.toFixed(3) ?? "—";
      const gflop = (r.products as { gflopPerS?: number } | undefined)?.gflopPerS;
      const product = gflop === undefined ? "" : ` product GFLOP/s ${gflop.toFixed(1)}`;
      const seeds = (r.seeds as number | undefined) ?? 1;
      const per = seeds > 1 ? ` (per agent, ${seeds} seeds together)` : "";
      console.log(`round ${round} ${r.backend}/${r.module}/${r.config}: updates/s ${rate("updates")}${per} actions/s ${rate("actions")}${product} ${r.error ?? ""}`);
    }
    if (process.env.BENCH_JSON) console.log(JSON.stringify(out.rows));
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
