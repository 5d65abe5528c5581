//! `rfm eval`: re-evaluate a run saved by `rfm train --save DIR` and print one JSON line
//! (`goals_reached`: episodes ending in each goal, on multigoal).

use std::path::PathBuf;

use rfm_playground::device::ComputeDevice;
use rfm_playground::trainer::{EvalPolicy, Trainer};
use serde_json::json;

use super::CliError;

#[derive(clap::Args)]
pub struct Args {
    /// Directory with config.json and weights.json.
    #[arg(long)]
    load: PathBuf,
    /// Evaluation episodes.
    #[arg(long, default_value_t = 10)]
    episodes: usize,
    /// Actions: greedy (best candidate / Gaussian mean) or sample (the training policy's random
    /// draws, e.g. to see which multigoal goals it reaches).
    #[arg(long, default_value = "greedy")]
    policy: String,
}

pub fn run(args: Args) -> Result<(), CliError> {
    if args.episodes == 0 {
        return Err("--episodes must be at least 1".into());
    }
    let policy: EvalPolicy = args.policy.parse()?;
    let mut trainer = Trainer::load(&args.load, ComputeDevice::cpu())?;
    let ev = pollster::block_on(trainer.evaluate_with(args.episodes, policy))?;
    let mut line = json!({
        "env": trainer.env_name().as_str(),
        "algo": trainer.agent().as_str(),
        "steps": trainer.steps(),
        "episodes": ev.episodes,
        "policy": args.policy,
        "eval_return": ev.mean_return,
        "returns": ev.returns,
    });
    if !ev.goals_reached.is_empty() {
        line["goals_reached"] = json!(ev.goals_reached);
    }
    println!("{line}");
    Ok(())
}
