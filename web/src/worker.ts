/**
 * The training worker: loads the wasm core and answers requests from the page, so the page
 * never blocks on training. Errors are sent back as `{type: "error"}` messages.
 */
import type { Reply, Request, WasmApi } from "./protocol";

const scope = self as unknown as {
  postMessage(msg: Reply): void;
  onmessage: ((ev: MessageEvent<Request>) => void) | null;
};

const post = (msg: Reply) => scope.postMessage(msg);

async function loadWasm(): Promise<WasmApi> {
  // The glue is emitted by Trunk next to this bundle; load it at run time by URL.
  const url = new URL("./rfm-playground.js", import.meta.url).href;
  const api = (await import(/* @vite-ignore */ url)) as WasmApi;
  await api.default();
  return api;
}

const ready = loadWasm();
ready.then(
  () => post({ type: "ready" }),
  (e) => post({ type: "error", id: null, message: `could not load the wasm core: ${String(e)}` }),
);

scope.onmessage = async (ev) => {
  const req = ev.data;
  try {
    const api = await ready;
    switch (req.type) {
      case "probe": {
        const t0 = performance.now();
        const report = await api.runProbe(req.backend, req.config ?? null);
        post({ type: "probeResult", id: req.id, report, millis: performance.now() - t0 });
        break;
      }
    }
  } catch (e) {
    post({ type: "error", id: req.id, message: e instanceof Error ? e.message : String(e) });
  }
};
