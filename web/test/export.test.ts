import { test } from "node:test";
import assert from "node:assert/strict";
import { CSV_COLUMNS, configToJson, fileStem, metricsToCsv } from "../src/export.ts";
import { fmtKl, fmtRate, fmtShort } from "../src/format.ts";
import { linkNotice, startConfig } from "../src/share.ts";
import { WorkerError } from "../src/client.ts";
import { CONFIG } from "./fixtures.ts";

test("metrics CSV has a header and empty cells for unmeasured values", () => {
  const csv = metricsToCsv([
    { step: 1, criticLoss: 0.5 },
    { step: 2, episodeReturn: -3.25, ess: 12 },
  ]);
  assert.equal(csv, `${CSV_COLUMNS.join(",")}\n1,,,0.5,,,0\n2,-3.25,,,,12,0\n`);
  assert.equal(metricsToCsv([]), "step,episodeReturn,evalReturn,criticLoss,actorLoss,ess,seedIndex\n");
  // Several seeds: each point says which.
  assert.equal(metricsToCsv([{ step: 5, criticLoss: 1, seedIndex: 2 }]).split("\n")[1], "5,,,1,,,2");
});

test("config JSON round-trips and file names are tidy", () => {
  assert.deepEqual(JSON.parse(configToJson(CONFIG)), CONFIG);
  assert.equal(fileStem(CONFIG), "rfm-rl-multigoal-rfm-rfm-seed0");
  assert.equal(fileStem({ ...CONFIG, mode: "sampler", target: "two-moons", estimator: "eta:0.5", seed: 3 }), "rfm-sampler-two-moons-eta0.5-seed3");
});

test("readouts", () => {
  assert.equal(fmtKl(0.12345), "0.123 nats");
  assert.equal(fmtKl(Number.NaN), "—");
  assert.equal(fmtRate(1234.4), "1234 steps/s");
  assert.equal(fmtRate(3.21), "3.2 steps/s");
  assert.equal(fmtRate(Number.NaN), "—");
  assert.equal(fmtShort(0), "0");
  assert.equal(fmtShort(12345), "12.3k");
  assert.equal(fmtShort(0.25), "0.25");
  assert.equal(fmtShort(0.001), "1.0e-3");
});

/** A fake client answering from a table; `decodeShare` fails for fragments starting with "bad". */
function fakeClient(validateErrors: unknown[] = []) {
  return {
    async request(req: { type: string; fragment?: string }): Promise<never> {
      switch (req.type) {
        case "defaults":
          return { type: "defaults", id: 1, config: CONFIG } as never;
        case "decodeShare":
          if (req.fragment!.startsWith("bad")) throw new WorkerError("unknown share-link version 9");
          return { type: "decoded", id: 2, config: { ...CONFIG, seed: 42 } } as never;
        case "validate":
          return { type: "validated", id: 3, errors: validateErrors } as never;
      }
      throw new Error(`unexpected ${req.type}`);
    },
  };
}

test("startConfig: no link → defaults; good link → decoded; bad link → defaults + notice", async () => {
  const none = await startConfig(fakeClient() as never, "");
  assert.deepEqual(none, { config: CONFIG, defaults: CONFIG, notice: null });
  const good = await startConfig(fakeClient() as never, "#v1.xyz");
  assert.equal(good.config.seed, 42);
  assert.equal(good.notice, null);
  const bad = await startConfig(fakeClient() as never, "#bad-link");
  assert.deepEqual(bad.config, CONFIG);
  assert.equal(bad.notice, linkNotice("unknown share-link version 9"));
  const invalid = await startConfig(fakeClient([{ field: "k", value: "0", range: "1..=1000", message: "k = 0 is out of range" }]) as never, "#v1.k0");
  assert.deepEqual(invalid.config, CONFIG);
  assert.match(invalid.notice!, /k: k = 0 is out of range/);
});
