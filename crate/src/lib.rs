//! # RFM Playground core
//!
//! Reverse Flow Matching (RFM, arXiv 2601.08136) as a library: the pure numerics, the burn
//! networks, the environments, the trainers, the experiment spec, and (on `wasm32`) the browser
//! bindings. `docs/architecture.md` draws the layers and one update's data flow.
//!
//! Layering is one-way; lower layers never import higher ones:
//!
//! | layer | modules | depends on |
//! |---|---|---|
//! | pure numerics | [`rng`], [`rfm`] (path, targets, estimators), [`metrics`], [`envs`], [`replay`] | std, rand |
//! | burn glue | [`device`], [`nets`], [`probe`] | burn + the layer above |
//! | trainers | [`trainer`] (RL: RFM and SAC), [`sampler`] (known-energy sampler), [`throughput`] | the layers above |
//! | experiment | [`spec`] (the one user-facing spec, its field table, share links, resolution into the trainers' configs), [`checkpoint`] (the one weights file), [`session`] (what the page runs and draws; the CLI's `train` runs it too), [`contract`] (the page ↔ worker types, exported to TypeScript) | the layers above |
//! | front doors | the `rfm` CLI (`src/main.rs`, `src/cli/*`), `wasm` (every browser export) | everything |

pub mod checkpoint;
pub mod contract;
pub mod device;
pub mod envs;
pub mod metrics;
pub mod nets;
pub mod probe;
pub mod replay;
pub mod rfm;
pub mod rng;
pub mod sampler;
pub mod session;
pub mod spec;
pub mod throughput;
pub mod trainer;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
