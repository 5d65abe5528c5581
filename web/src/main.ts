/**
 * Page entry: starts the worker, asks it to train the probe network and shows which backend
 * ran and the loss. No algorithm code lives here.
 */
import { describeBackend, describeLoss } from "./format";
import type { BackendChoice, ProbeReport, Reply, Request } from "./protocol";

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id} in index.html`);
  return e as T;
}

const status = el<HTMLElement>("status");
const backendOut = el<HTMLElement>("backend");
const lossOut = el<HTMLElement>("loss");
const runButton = el<HTMLButtonElement>("run");
const backendSelect = el<HTMLSelectElement>("backend-choice");

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
let nextId = 1;
let inFlight: number | null = null;

function send(req: Request) {
  inFlight = req.id;
  runButton.disabled = true;
  worker.postMessage(req);
}

function runProbe() {
  if (inFlight !== null) return;
  status.textContent = "training…";
  document.body.dataset.state = "running";
  send({ type: "probe", id: nextId++, backend: backendSelect.value as BackendChoice });
}

function showReport(report: ProbeReport, millis: number) {
  const d = report.device;
  backendOut.textContent = describeBackend(d);
  backendOut.dataset.kind = d.kind;
  lossOut.textContent = `${describeLoss(report.initialLoss, report.finalLoss, report.losses.length)} (${millis.toFixed(0)} ms)`;
  lossOut.dataset.initial = String(report.initialLoss);
  lossOut.dataset.final = String(report.finalLoss);
}

worker.onmessage = (ev: MessageEvent<Reply>) => {
  const msg = ev.data;
  switch (msg.type) {
    case "ready":
      status.textContent = "worker ready";
      runProbe();
      break;
    case "probeResult":
      if (msg.id !== inFlight) return; // stale
      inFlight = null;
      runButton.disabled = false;
      showReport(msg.report, msg.millis);
      status.textContent = "done";
      document.body.dataset.state = "done";
      break;
    case "error":
      inFlight = null;
      runButton.disabled = false;
      status.textContent = `error: ${msg.message}`;
      document.body.dataset.state = "error";
      break;
  }
};

worker.onerror = (e) => {
  status.textContent = `worker failed: ${e.message}`;
  document.body.dataset.state = "error";
};

runButton.addEventListener("click", runProbe);
