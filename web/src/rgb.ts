/** Parse the colour strings d3 produces ("#rrggbb" or "rgb(r, g, b)") into bytes. */
export function rgb(c: string): [number, number, number] {
  if (c.startsWith("#") && c.length === 7) {
    return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];
  }
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(c);
  if (!m) throw new Error(`unparsed colour ${c}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}
