import { test } from "node:test";
import assert from "node:assert/strict";
import { massToRgba, maxOf, seriesColour, viridis } from "../src/colormap.ts";
import { rgb } from "../src/rgb.ts";
import { LEGEND_ROW, drawLegend, extent, logTicks, niceTicks } from "../src/views/plot.ts";
import { appendThinned } from "../src/views/curves.ts";
import { cellCentres, seedQuery } from "../src/views/densityPanel.ts";
import { benchPlan } from "../src/bench.ts";
import { estimatorColour } from "../src/views/varianceChart.ts";

test("viridis runs dark purple → yellow and clamps", () => {
  assert.deepEqual(viridis(0), [68, 1, 84]);
  assert.deepEqual(viridis(1), [253, 231, 37]);
  assert.deepEqual(viridis(-3), viridis(0));
  assert.deepEqual(viridis(Number.NaN), viridis(0));
  assert.deepEqual(rgb("rgb(1, 2, 3)"), [1, 2, 3]);
  assert.throws(() => rgb("hsl(1,2,3)"), /unparsed/);
});

test("massToRgba flips rows so the highest y is on top", () => {
  // 2×2 grid, row 0 = low y: only the cell (x=1, y=1) has mass.
  const px = massToRgba([0, 0, 0, 1], 2, 2, 1);
  assert.equal(px.length, 16);
  // Image row 0 (top) holds grid row 1; its second pixel is the bright one.
  assert.deepEqual([...px.slice(4, 8)], [253, 231, 37, 255]);
  assert.deepEqual([...px.slice(8, 12)], [68, 1, 84, 255]);
  assert.throws(() => massToRgba([1, 2, 3], 2, 2, 1), /3 values for a 2×2 grid/);
  assert.equal(maxOf([0.1, 0.5], [0.2, Number.NaN, 0.3]), 0.5);
  assert.equal(maxOf([]), 0);
});

test("series colours are stable", () => {
  assert.equal(seriesColour(0), seriesColour(10));
  // The three estimators get three different colours, and the same ones in every chart.
  const [noise, grad, rfm] = ["noise", "grad", "rfm"].map(estimatorColour);
  assert.equal(new Set([noise, grad, rfm]).size, 3);
  assert.deepEqual([noise, grad, rfm], [seriesColour(0), seriesColour(1), seriesColour(2)]);
});

test("niceTicks picks 1/2/5 steps inside the range", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(-1, 1, 4), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(niceTicks(0, 1000, 2), [0, 500, 1000]);
  assert.deepEqual(niceTicks(3, 3), [3]);
  assert.deepEqual(niceTicks(Number.NaN, 1), []);
  assert.deepEqual(logTicks(0.002, 30), [0.01, 0.1, 1, 10]);
  assert.deepEqual(logTicks(0, 1), []);
});

test("extent ignores non-finite values and pads flat data", () => {
  assert.deepEqual(extent([1, Number.NaN, 3, Infinity]), [1, 3]);
  assert.deepEqual(extent([2, 2]), [1.8, 2.2]);
  assert.deepEqual(extent([0]), [-1, 1]);
  assert.equal(extent([]), null);
});

test("curves thin long series by half", () => {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < 11; i++) appendThinned(xs, ys, i, i * 10, 10);
  assert.deepEqual(xs, [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(ys, [0, 20, 40, 60, 80, 100]);
});

test("1-D grid cell centres", () => {
  assert.deepEqual(cellCentres({ min: -1, max: 1, n: 4 }), [-0.75, -0.25, 0.25, 0.75]);
});

test("the density's seed picker asks for one seed or all of them pooled", () => {
  assert.deepEqual(seedQuery("0"), {});
  assert.deepEqual(seedQuery("3"), { seed: 3 });
  assert.deepEqual(seedQuery("all"), { allSeeds: true });
  assert.deepEqual(seedQuery("junk"), {});
});

test("the bench page's seeds list: numbers of agents stepped together, 1 by default", () => {
  assert.deepEqual(benchPlan("?bench=cpu", false).seeds, [1]);
  assert.deepEqual(benchPlan("?bench=cpu&seeds=1,8,32", false).seeds, [1, 8, 32]);
  assert.deepEqual(benchPlan("?bench=cpu&seeds=0,x,4", false).seeds, [4]);
});

test("a legend wraps at maxRight instead of running off the canvas", () => {
  // A fake 2-D context: every glyph is 6 px wide, and each label's extent is recorded.
  const drawn: { text: string; x: number; y: number }[] = [];
  const noop = () => {};
  const ctx = {
    save: noop, restore: noop, beginPath: noop, moveTo: noop, lineTo: noop, stroke: noop, setLineDash: noop,
    measureText: (t: string) => ({ width: 6 * t.length }),
    fillText: (text: string, x: number, y: number) => drawn.push({ text, x, y }),
  } as unknown as CanvasRenderingContext2D;
  const items = ["return", "eval return", "faint: 3 other seeds"].map((label) => ({ label, colour: "#000" }));
  // Wide enough: one row.
  assert.equal(drawLegend(ctx, items, 100, 13, 1000, 8), 1);
  assert.ok(drawn.every((d) => d.y === 13));
  // Narrow: the third item starts a second row at wrapX, and nothing passes maxRight.
  drawn.length = 0;
  assert.equal(drawLegend(ctx, items, 100, 13, 300, 8), 2);
  assert.deepEqual(drawn.map((d) => d.y), [13, 13, 13 + LEGEND_ROW]);
  assert.equal(drawn[2].x, 8 + 20);
  assert.ok(drawn.every((d) => d.x + 6 * d.text.length <= 300), JSON.stringify(drawn));
  // Without maxRight it never wraps (the old behaviour).
  drawn.length = 0;
  assert.equal(drawLegend(ctx, items, 100, 13), 1);
});
