//! `rfm eval`: re-evaluate a checkpoint (`rfm train --save FILE`, or a page's "Save weights")
//! and print one JSON line: RL, the greedy (or sampled) return over `--episodes` episodes
//! (`goals_reached`: episodes ending in each goal, on multigoal); sampler, the sample metrics
//! against exact samples of the target.

use std::path::PathBuf;

use rfm_playground::checkpoint::Checkpoint;
use rfm_playground::device::ComputeDevice;
use rfm_playground::session::Session;
use rfm_playground::spec::Mode;
use rfm_playground::trainer::EvalPolicy;
use serde_json::json;

use super::CliError;

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint file.
    #[arg(long)]
    load: PathBuf,
    /// Evaluation episodes (RL).
    #[arg(long, default_value_t = 10)]
    episodes: usize,
    /// Actions: greedy (best candidate / Gaussian mean) or sample (the training policy's random
    /// draws, e.g. to see which multigoal goals it reaches).
    #[arg(long, default_value = "greedy")]
    policy: String,
    /// Samples per side for the sampler's metrics.
    #[arg(long, default_value_t = 4000)]
    eval_n: usize,
    /// RL: a JSON file holding a list of start states (internal states as `rfm rollout
    /// --init-state` takes them, e.g. pendulum `[theta, thetaDot]`): one episode from each,
    /// instead of `--episodes` from the evaluation seeds.
    #[arg(long)]
    init_states: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), CliError> {
    if args.episodes == 0 {
        return Err("--episodes must be at least 1".into());
    }
    let policy: EvalPolicy = args.policy.parse()?;
    let bytes = std::fs::read(&args.load).map_err(|e| format!("{}: {e}", args.load.display()))?;
    let ck = Checkpoint::from_bytes(&bytes).map_err(|e| format!("{}: {e}", args.load.display()))?;
    let mut session = Session::open(&bytes, ComputeDevice::cpu())?;
    let spec = &ck.spec;
    let line = match spec.mode {
        Mode::Rl => {
            let ev = match &args.init_states {
                None => pollster::block_on(session.evaluate(args.episodes, policy))?,
                Some(path) => {
                    let starts = super::read_start_states(path)?;
                    pollster::block_on(session.evaluate_from(&starts, policy))?
                }
            };
            let mut line = json!({
                "mode": "rl",
                "env": spec.env.as_str(),
                "agent": spec.agent.as_str(),
                "estimator": spec.estimator,
                "steps": ck.steps,
                "episodes": ev.episodes,
                "policy": args.policy,
                "eval_return": ev.mean_return,
                "returns": ev.returns,
            });
            if !ev.goals_reached.is_empty() {
                line["goals_reached"] = json!(ev.goals_reached);
            }
            line
        }
        Mode::Sampler => {
            let m = pollster::block_on(session.sampler_metrics(args.eval_n))?;
            json!({"mode": "sampler", "target": spec.target.as_str(), "steps": ck.steps, "metrics": m})
        }
    };
    println!("{line}");
    Ok(())
}
