/**
 * Which backend the wasm core is asked for, and how the page names it. Pure (no DOM, no
 * `navigator`): the worker reads the adapter's facts (`GPUAdapterInfo`) and passes them in.
 *
 * `auto` on a software WebGPU adapter (SwiftShader, llvmpipe, lavapipe) trains on the CPU:
 * tiny networks run far faster on the CPU backend than on a software rasteriser's compute
 * (measured here: about 95 playground updates/s on the threaded CPU module against 0.15 on
 * SwiftShader). Forcing WebGPU still uses such an adapter.
 */
import type { BackendChoice, DeviceInfo } from "./protocol";

/** What `GPUAdapter.info` says (strings empty when the browser hides them). */
export interface AdapterFacts {
  isFallbackAdapter: boolean;
  vendor: string;
  architecture: string;
  description: string;
}

/** Names of software WebGPU implementations, as they appear in `GPUAdapterInfo`. */
const SOFTWARE = [
  { pattern: /swiftshader/i, name: "SwiftShader" },
  { pattern: /llvmpipe/i, name: "llvmpipe" },
  { pattern: /lavapipe/i, name: "lavapipe" },
];

/** The software implementation's name, or null for a hardware adapter. */
export function softwareAdapter(f: AdapterFacts): string | null {
  const text = `${f.vendor} ${f.architecture} ${f.description}`;
  for (const s of SOFTWARE) if (s.pattern.test(text)) return s.name;
  return f.isFallbackAdapter ? "a fallback adapter" : null;
}

export const NO_WEBGPU = "This browser has no WebGPU; training on the CPU";

/**
 * The backend to ask the core for. `facts` is what the browser's adapter says (null: no
 * adapter, or no WebGPU at all); only `auto` looks at it. `reason` explains a CPU choice.
 */
export function resolveBackend(choice: BackendChoice, facts: AdapterFacts | null): { backend: BackendChoice; reason: string | null } {
  if (choice !== "auto") return { backend: choice, reason: null };
  if (facts === null) return { backend: "cpu", reason: NO_WEBGPU };
  const sw = softwareAdapter(facts);
  if (sw !== null) {
    const what = sw === "a fallback adapter" ? "Software WebGPU adapter found" : `Software WebGPU adapter (${sw}) found`;
    return { backend: "cpu", reason: `${what}: training on the CPU, which is faster` };
  }
  return { backend: "auto", reason: null };
}

/**
 * The badge: plain words, and the technical detail (adapter, raw error) for its tooltip and
 * the console. A reason from the core that reads like a Rust error is replaced by plain words.
 */
export function backendBadge(d: DeviceInfo): { text: string; detail: string } {
  // On WebGPU a reason is auto's calibration ("WebGPU 41 upd/s · CPU 28 upd/s → WebGPU").
  if (d.kind === "webgpu") return { text: d.fallbackReason ?? (d.adapter.startsWith("WebGPU") ? d.adapter : `WebGPU: ${d.adapter}`), detail: d.adapter };
  const reason = d.fallbackReason;
  if (!reason) return { text: "CPU", detail: d.adapter };
  const plain = looksTechnical(reason) ? "WebGPU could not be used here; training on the CPU" : reason;
  return { text: `CPU — ${plain}`, detail: `${d.adapter}: ${reason}` };
}

/** A message written for developers (Rust debug output, error type names), not for people. */
export function looksTechnical(s: string): boolean {
  return /[{}]|::|\bWgpu|\bkind:|Error\b|\bAdapter\b/.test(s);
}
