/**
 * Colour maps for the heat maps and curves (display only: no maths beyond scaling a value
 * into [0, 1] for the colour). Uses d3-scale-chromatic's perceptually uniform schemes.
 */
import { interpolateViridis, schemeTableau10 } from "d3-scale-chromatic";
import { rgb } from "./rgb";

/** Colour of a value in [0, 1] (clamped) as [r, g, b] bytes. */
export function viridis(u: number): [number, number, number] {
  const c = interpolateViridis(Math.min(1, Math.max(0, Number.isFinite(u) ? u : 0)));
  return rgb(c);
}

/**
 * RGBA pixels for a row-major grid of masses (x fastest, row 0 = the lowest y), flipped so
 * that the image's top row is the highest y. Values are shown as sqrt(v / vmax), which keeps
 * low-mass regions visible. Throws if `values.length != nx * ny`.
 */
export function massToRgba(values: ArrayLike<number>, nx: number, ny: number, vmax: number): Uint8ClampedArray {
  if (values.length !== nx * ny) {
    throw new Error(`heat map: ${values.length} values for a ${nx}×${ny} grid`);
  }
  const out = new Uint8ClampedArray(nx * ny * 4);
  const scale = vmax > 0 ? 1 / vmax : 0;
  for (let j = 0; j < ny; j++) {
    const row = ny - 1 - j;
    for (let i = 0; i < nx; i++) {
      const v = values[j * nx + i];
      const [r, g, b] = viridis(Math.sqrt(Math.max(0, v * scale)));
      const o = (row * nx + i) * 4;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
      out[o + 3] = 255;
    }
  }
  return out;
}

/** Largest finite value (0 for none): the shared colour scale of two maps. */
export function maxOf(...arrays: ArrayLike<number>[]): number {
  let m = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) && a[i] > m) m = a[i];
  return m;
}

/** Categorical colours for series (estimators, curves), stable by index. */
export function seriesColour(i: number): string {
  return schemeTableau10[((i % schemeTableau10.length) + schemeTableau10.length) % schemeTableau10.length];
}
