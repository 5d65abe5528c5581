//! Pure RFM numerics (no burn, no wasm): interpolation paths, target densities and the
//! posterior-mean estimators.
//!
//! - [`path`]: `x_t = alpha_t x1 + beta_t x0` for the linear and VP paths, with derivatives.
//! - [`targets`]: the [`LogDensity`] trait, the named 2-D energies ([`Target`]) and the
//!   Boltzmann target in a tanh latent.
//! - [`boltzmann`]: the Boltzmann policy target `Q/λ` in a tanh latent.
//! - [`estimators`]: self-normalised importance-sampling estimators of `E[X0 | x_t]`,
//!   `E[X1 | x_t]` (noise, gradient, fixed η, RFM's optimal control variate, and variants), and
//!   the regression targets built from them.
//! - [`proposal`]: where the estimator's candidates come from (prior or defensive mixture).
//! - [`posterior`]: the one posterior-target pipeline (candidates → caller's density →
//!   estimators → velocity or noise target) every trainer, metric and bench uses.

pub mod boltzmann;
pub mod estimators;
pub mod path;
pub mod posterior;
pub mod proposal;
pub mod targets;

pub use estimators::{
    Candidates, Estimator, EstimatorError, PosteriorBatch, PosteriorEstimate, Proposal,
    draw_candidates, draw_candidates_from, estimate, estimate_with_target, noise_target,
    score_target, velocity_target,
};
pub use path::{Coeffs, Path};
pub use posterior::{PosteriorSpec, PosteriorTarget, Regression, posterior_targets};
pub use targets::{
    GaussianMixture, LogDensity, TanhLatent, Target, TargetError, boltzmann_latent_log_prob_grad,
};
