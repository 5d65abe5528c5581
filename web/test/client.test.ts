import { test } from "node:test";
import assert from "node:assert/strict";
import { StaleError, WorkerClient, WorkerDeadError, WorkerError, expectedReply, type Port } from "../src/client.ts";
import type { Reply, Request } from "../src/protocol.ts";

/** A fake worker: records posted requests; the test answers them by hand. */
class FakePort implements Port {
  posted: Request[] = [];
  onmessage: ((ev: MessageEvent) => void) | null = null;
  postMessage(msg: unknown): void {
    this.posted.push(msg as Request);
  }
  reply(msg: Reply): void {
    this.onmessage?.({ data: msg } as MessageEvent);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test("ids are fresh and one request is in flight at a time", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port);
  const a = c.request({ type: "step", steps: 5 });
  const b = c.request({ type: "defaults", mode: "rl" });
  assert.equal(port.posted.length, 1, "second request waits");
  assert.equal(c.busy, 2);
  const first = port.posted[0];
  assert.equal(first.type, "step");
  port.reply({ type: "step", id: first.id, report: { step: 5, points: [], env: null, updatesPerSec: 10, fault: null, faultKind: null, deviceLost: false, finished: false } });
  assert.equal((await a).report.step, 5);
  assert.equal(port.posted.length, 2);
  const second = port.posted[1];
  assert.notEqual(second.id, first.id);
  port.reply({ type: "defaults", id: second.id, config: {} as never });
  assert.equal((await b).type, "defaults");
  assert.equal(c.busy, 0);
});

test("replies with unknown ids are dropped", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port);
  const p = c.request({ type: "defaults", mode: "rl" });
  port.reply({ type: "defaults", id: 999, config: {} as never });
  let settled = false;
  void p.then(() => (settled = true));
  await tick();
  assert.equal(settled, false);
  port.reply({ type: "defaults", id: port.posted[0].id, config: {} as never });
  await p;
});

test("invalidate rejects queued and in-flight requests with StaleError and ignores late replies", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port);
  const a = c.request({ type: "step", steps: 1 });
  const b = c.request({ type: "step", steps: 1 });
  c.invalidate();
  await assert.rejects(a, StaleError);
  await assert.rejects(b, StaleError);
  const next = c.request({ type: "defaults", mode: "rl" });
  assert.equal(port.posted.length, 1, "still waiting for the in-flight reply");
  port.reply({ type: "step", id: port.posted[0].id, report: { step: 1, points: [], env: null, updatesPerSec: 1, fault: null, faultKind: null, deviceLost: false, finished: false } });
  assert.equal(port.posted.length, 2, "the next request goes out once the old one is answered");
  port.reply({ type: "defaults", id: port.posted[1].id, config: { seed: 3 } as never });
  assert.equal((await next).config.seed, 3);
});

test("error replies reject with WorkerError keeping the field errors", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port);
  const p = c.request({ type: "init", config: {} as never, backend: "cpu" });
  const fields = [{ field: "k", value: "0", range: "1..=1000", message: "k = 0 is out of range" }];
  port.reply({ type: "error", id: port.posted[0].id, message: "bad config", fields });
  await assert.rejects(p, (e: unknown) => e instanceof WorkerError && e.fields[0].field === "k" && e.message === "bad config");
});

test("a reply of the wrong type is an error", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port);
  const p = c.request({ type: "defaults", mode: "rl" });
  port.reply({ type: "validate", id: port.posted[0].id, errors: [] });
  await assert.rejects(p, /answered defaults with validate/);
});

test("ready and fatal errors", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port);
  port.reply({ type: "ready", module: "cpu" });
  await c.ready;
  const port2 = new FakePort();
  const c2 = new WorkerClient(port2);
  let fatal = "";
  c2.onFatal = (m) => (fatal = m);
  port2.reply({ type: "error", id: null, message: "no wasm" });
  await assert.rejects(c2.ready, /no wasm/);
  assert.equal(fatal, "no wasm");
});

test("a reply has the same type as its request (one name per operation)", () => {
  assert.equal(expectedReply("init"), "init");
  assert.equal(expectedReply("encodeShare"), "encodeShare");
  assert.equal(expectedReply("open"), "open");
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The client's watchdog timer does not keep Node alive (unref): hold the loop open while waiting on it. */
const awake = () => {
  const t = setInterval(() => {}, 1000);
  return () => clearInterval(t);
};

test("a worker silent past the deadline with a request in flight is dead: everything rejects, once", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port, 120);
  let died = "";
  let calls = 0;
  c.onDead = (why) => {
    died = why;
    calls++;
  };
  const a = c.request({ type: "step", steps: 10 });
  const b = c.request({ type: "density", query: {} });
  const done = awake();
  await assert.rejects(a, WorkerDeadError);
  done();
  await assert.rejects(b, WorkerDeadError);
  assert.match(died, /stopped responding \(no answer to “step”/);
  // Later requests fail at once; the dead worker is reported once.
  await assert.rejects(c.request({ type: "defaults", mode: "rl" }), WorkerDeadError);
  c.fail("again");
  assert.equal(calls, 1);
  assert.equal(port.posted.length, 1, "nothing more is sent to a dead worker");
});

test("heartbeats keep a slow request alive; an idle worker is never declared dead", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port, 150);
  let dead = false;
  c.onDead = () => (dead = true);
  await sleep(400); // idle: nothing in flight
  assert.equal(dead, false);
  const p = c.request({ type: "step", steps: 1 });
  for (let i = 0; i < 6; i++) {
    await sleep(60);
    port.reply({ type: "heartbeat" });
  }
  assert.equal(dead, false, "a worker that still beats is busy, not dead");
  port.reply({ type: "step", id: port.posted[0].id, report: { step: 1, points: [], env: null, updatesPerSec: 1, fault: null, faultKind: null, deviceLost: false, finished: false } });
  assert.equal((await p).report.step, 1);
  c.close();
});

test("fail() (the Worker's error event) rejects the request in flight with its reason", async () => {
  const port = new FakePort();
  const c = new WorkerClient(port);
  const p = c.request({ type: "step", steps: 1 });
  c.fail("the training worker crashed (unreachable)");
  await assert.rejects(p, (e: unknown) => e instanceof WorkerDeadError && /crashed \(unreachable\)/.test(e.message));
});
