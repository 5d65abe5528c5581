//! burn modules (the glue layer): networks are built only through their configs' `init`, with
//! weights drawn from the crate's seeded [`crate::rng::Rng`] so the same seed gives the same
//! network on every backend. [`host`] runs the policy sampler and critic forward on plain
//! slices for the CPU.

pub mod critic;
pub mod host;
pub mod mlp;
pub mod policy;

pub use mlp::{Activation, Mlp, MlpConfig};
pub use policy::{OdeConfig, Parameterisation, Policy, PolicyConfig, PolicyError, Solver};
