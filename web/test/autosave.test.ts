import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_SAVED_POINTS, crc32, seal, verify } from "../src/autosave.ts";
import { CONFIG } from "./fixtures.ts";

const weights = () => new TextEncoder().encode('{"format":"rfm-playground-weights","tensors":[]}').buffer as ArrayBuffer;

test("crc32 matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new TextEncoder().encode("1234"), new TextEncoder().encode("56789")), 0xcbf43926);
  assert.equal(crc32(), 0);
});

test("a sealed save verifies; any change to it is caught", () => {
  const s = seal({ savedAt: 1, config: CONFIG, step: 1234, metrics: [{ step: 1200, criticLoss: 0.5 }], weights: weights() });
  assert.deepEqual(verify(s), { ok: s });
  const damaged = (x: unknown) => {
    const r = verify(x);
    assert.ok("damaged" in r, JSON.stringify(r));
    return r.damaged;
  };
  assert.match(damaged({ ...s, step: 1235 }), /checksum/);
  assert.match(damaged({ ...s, config: { ...CONFIG, seed: 1 } }), /checksum/);
  const bytes = new Uint8Array(s.weights.slice(0));
  bytes[3] ^= 1;
  assert.match(damaged({ ...s, weights: bytes.buffer }), /checksum/);
  assert.match(damaged({ ...s, weights: "not bytes" }), /missing/);
  assert.match(damaged({ ...s, version: 9 }), /version/);
  assert.match(damaged("garbage"), /not a saved experiment/);
  assert.match(damaged(null), /not a saved experiment/);
});

test("a save keeps only the newest curve points", () => {
  const metrics = Array.from({ length: MAX_SAVED_POINTS + 5 }, (_, i) => ({ step: i }));
  const s = seal({ savedAt: 1, config: CONFIG, step: 9, metrics, weights: weights() });
  assert.equal(s.metrics.length, MAX_SAVED_POINTS);
  assert.equal(s.metrics[0].step, 5);
});
