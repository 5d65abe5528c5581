//! `rfm probe`: the tensor-stack smoke check.

use rfm_playground::device::ComputeDevice;
use rfm_playground::probe::{ProbeConfig, run_probe};

use super::CliError;

#[derive(clap::Args)]
pub struct Args {
    /// Adam steps.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let cfg = ProbeConfig {
        steps: args.steps,
        seed: args.seed,
        ..Default::default()
    };
    let report = pollster::block_on(run_probe(&ComputeDevice::cpu(), &cfg))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
