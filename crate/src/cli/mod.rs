//! One module per `rfm` subcommand. Each exposes `Args` (clap) and `run(Args) -> Result<(), CliError>`.

pub mod bench;
pub mod bench_estimators;
pub mod eval;
pub mod probe;
pub mod rollout;
pub mod sample;
pub mod sweep;
pub mod train;

/// Any error a subcommand reports: printed as `error: …` with exit code 1.
pub type CliError = Box<dyn std::error::Error>;
