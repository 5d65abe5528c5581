/**
 * Messages between the page and the training worker, and every value they carry. The types
 * are generated from the Rust serde types (crate/src/contract.rs → ./generated/contract.ts,
 * checked by a Rust test), so the two sides cannot drift apart; this file only re-exports them
 * and adds the few TypeScript-only helpers. Every request carries an `id` that its reply
 * echoes (`error` replies too); a reply has the same `type` as its request.
 */
export type * from "./generated/contract";
import type { ExperimentSpec } from "./generated/contract";

/** Posterior-mean estimator names the spec accepts (`eta:X` with X in [0, 1] too). */
export type EstimatorName = "rfm" | "noise" | "grad" | "cv-iso" | "cv-pool" | `eta:${string}`;

/** The experiment spec (the one user-facing description of a run). */
export type PlaygroundConfig = ExperimentSpec;
