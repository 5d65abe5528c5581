//! Burn-free inference for the sampling hot path: the policy's ODE sampler and the twin
//! critic's forward pass on plain `f32` slices, for the CPU.
//!
//! The acting and training loops sample `rows × steps` network passes whose rows are
//! independent and whose weights do not change during a call; on the CPU backend each burn op
//! allocates a fresh tensor and the GELU's sigmoid runs a scalar `expf` per element. Here one
//! copy of the weights ([`load`], read back once per change) drives fused, vectorised kernels
//! over reused buffers. The functions are the burn modules' own, operation for operation up to
//! float rounding (tests check the forward passes to 1e-5 and the samplers to 1e-4 against burn).
//!
//! - [`gelu`]: the tanh-approximation GELU with a polynomial `exp`, fused with bias / residual;
//! - [`dense`]: a Dense layer's weights and the one matrix product every net uses (the `gemm`
//!   crate natively; in wasm, `wasm_gemm`'s SIMD128 / relaxed-SIMD kernels);
//! - [`policy`]: the policy net's forward pass, in the pieces the sampler needs;
//! - [`critic`]: the twin critic's `min(Q1, Q2)` and its action gradient;
//! - [`actor`]: the actor's training step (loss and explicit backward pass);
//! - [`optim`]: global-norm clip and Adam for the host training steps;
//! - [`sampler`]: Euler / Heun integration of the flow or diffusion ODE, with optional scoring;
//! - [`load`] (burn glue): host copies of a [`crate::nets::Policy`] / critic.

pub mod actor;
pub mod critic;
pub mod dense;
pub mod gelu;
pub mod load;
pub mod optim;
pub mod policy;
pub mod sampler;
#[cfg(target_arch = "wasm32")]
mod wasm_gemm;

pub use critic::HostCritic;
pub use policy::HostPolicy;
pub use sampler::HostSampler;

#[cfg(test)]
mod tests;
