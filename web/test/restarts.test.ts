import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_FRUITLESS_RESTARTS, RestartPolicy } from "../src/restarts.ts";

test("a worker that keeps dying before it trains a step is restarted MAX_FRUITLESS_RESTARTS times, then not", () => {
  const p = new RestartPolicy();
  for (let i = 1; i <= MAX_FRUITLESS_RESTARTS; i++) {
    assert.equal(p.died(40), true, `death ${i}`);
    p.restarted(40);
  }
  assert.equal(p.died(40), false);
  assert.equal(p.inARow, MAX_FRUITLESS_RESTARTS + 1);
});

test("a worker that trains between deaths is always restarted, even from an earlier autosave", () => {
  const p = new RestartPolicy();
  let step = 100;
  for (let i = 0; i < 10; i++) {
    assert.equal(p.died(step), true);
    // Restarted from the autosave at step 80, then trained a little before dying again.
    p.restarted(80);
    step = 90;
  }
  assert.equal(p.inARow, 1);
});
