/**
 * Class presets: a config patch on top of the worker's defaults, one paragraph of plain
 * explanation, and a few one-click variants to compare. Pure data and a pure `apply`.
 */
import type { PlaygroundConfig } from "./protocol";

export interface Variant {
  label: string;
  patch: Partial<PlaygroundConfig>;
}

export interface Preset {
  /** Stable id (used for the button's data-preset attribute and in tests). */
  id: string;
  title: string;
  /** One paragraph, plain language, shown in the page. */
  text: string;
  patch: Partial<PlaygroundConfig>;
  /** Other settings worth trying with this preset (first = the preset itself). */
  variants: Variant[];
  /** Where to look at the density (RL presets): env units. */
  probeState?: [number, number];
}

export const PRESETS: readonly Preset[] = [
  {
    id: "multimodal",
    title: "Why multimodal policies",
    text:
      "A point starts in the middle of a plane with goals all around it, and every goal pays. A " +
      "Gaussian policy (SAC) has one bump by construction; the flow policy trained by Reverse Flow " +
      "Matching learns to match the Boltzmann target exp(Q/λ) itself. Watch the density panel: the " +
      "left map is the policy, the right map is the target at the state marked on the plane. At " +
      "this low temperature (λ = 0.1) the target is sharp: its mass sits where the critic rates the " +
      "actions best. As training goes on, the flow's KL to it falls well below the KL of uniform " +
      "actions and stays there. Click anywhere on the plane to look at another state, and switch " +
      "the agent to compare.",
    patch: { mode: "rl", env: "multigoal", agent: "rfm", estimator: "rfm" },
    variants: [
      { label: "Flow policy (RFM)", patch: { agent: "rfm" } },
      { label: "Gaussian policy (SAC)", patch: { agent: "sac" } },
    ],
    probeState: [0, 0],
  },
  {
    id: "estimators",
    title: "Noise vs gradient estimator",
    text:
      "The flow learns from an estimate of where each noisy point should go. The noise estimator " +
      "averages the noise that could have produced the point; the gradient estimator follows the " +
      "slope of the target instead. Both are right on average, but they are noisy in different " +
      "places: the noise form is calm near pure noise (small t) and the gradient form near the " +
      "data (t close to 1). RFM mixes the two with the best weight at every t. Compare the " +
      "variance-vs-t chart and how fast the KL falls for each estimator on the same target.",
    patch: { mode: "sampler", target: "gmm8", estimator: "noise", lambda: 1 },
    variants: [
      { label: "Noise", patch: { estimator: "noise" } },
      { label: "Gradient", patch: { estimator: "grad" } },
      { label: "RFM (optimal mix)", patch: { estimator: "rfm" } },
    ],
  },
  {
    id: "temperature",
    title: "Temperature λ",
    text:
      "The policy chases the Boltzmann target exp(Q/λ). The temperature λ decides how greedy that " +
      "target is: a small λ piles all the mass on the very best actions, a large λ spreads it " +
      "out so the agent keeps exploring. Here Q is minus the energy of a known picture, so you " +
      "can see λ at work directly: try the three settings and watch the target map sharpen or " +
      "melt, and the flow follow it.",
    patch: { mode: "sampler", target: "gmm8", estimator: "rfm", lambda: 1 },
    variants: [
      { label: "λ = 0.3 (greedy)", patch: { lambda: 0.3 } },
      { label: "λ = 1", patch: { lambda: 1 } },
      { label: "λ = 3 (exploring)", patch: { lambda: 3 } },
    ],
  },
];

export function presetById(id: string): Preset | undefined {
  return PRESETS.find((p) => p.id === id);
}

/** `base` with the preset (and optionally one of its variants) applied on top. */
export function applyPreset(base: PlaygroundConfig, preset: Preset, variant?: Variant): PlaygroundConfig {
  return { ...base, ...preset.patch, ...(variant?.patch ?? {}) };
}
