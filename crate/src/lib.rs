//! # RFM Playground core
//!
//! Reverse Flow Matching (RFM, arXiv 2601.08136) as a library: the pure numerics, the burn
//! networks, the environments, the trainer, and (on `wasm32`) the browser bindings.
//!
//! Layering is one-way; lower layers never import higher ones:
//!
//! | layer | modules | depends on |
//! |---|---|---|
//! | pure numerics | [`rng`], [`rfm`] (path, targets, estimators), [`metrics`], [`envs`] | std, rand |
//! | burn glue | [`device`], [`nets`], [`probe`] | burn + the layer above |
//! | front doors | the `rfm` CLI (`src/main.rs`), `wasm` (browser bindings) | everything |

pub mod config;
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
pub mod throughput;
pub mod trainer;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
