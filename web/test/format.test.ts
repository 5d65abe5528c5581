import { test } from "node:test";
import assert from "node:assert/strict";
import { describeLoss, fmt, fmtAction } from "../src/format.ts";

test("fmtAction shows a missing action (null after a reset) as a dash", () => {
  assert.equal(fmtAction(null), "—");
  assert.equal(fmtAction(-1.234), "-1.23");
  assert.equal(fmtAction(0), "0.00");
});

test("fmt uses fixed or exponent form by magnitude", () => {
  assert.equal(fmt(0.5), "0.5000");
  assert.equal(fmt(0.0001234), "1.23e-4");
  assert.equal(fmt(123456), "1.23e+5");
  assert.equal(fmt(0), "0.0000");
  assert.equal(fmt(Number.NaN), "NaN");
  assert.equal(describeLoss(0.5, 0.01, 50), "0.5000 → 0.0100 in 50 steps");
});
