//! `rfm rollout`: replay a JSON list of native actions from a given state, one JSON line per step.

use std::io::Read;

use rfm_playground::envs::EnvName;
use rfm_playground::envs::rollout::rollout;

use super::CliError;

/// `rfm rollout --env pendulum --init-state '[1.57, 0]' --actions actions.json`
#[derive(clap::Args)]
pub struct Args {
    /// Environment: pendulum, mountain-car or multigoal.
    #[arg(long)]
    env: EnvName,
    /// Internal state as a JSON array: pendulum [theta, thetaDot], mountain-car
    /// [position, velocity], multigoal [x, y].
    #[arg(long)]
    init_state: String,
    /// File holding a JSON array of actions in native units (`-` reads stdin). Each action is
    /// an array of act_dim numbers, or a bare number for 1-D envs.
    #[arg(long)]
    actions: String,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let actions = if args.actions == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read actions from stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(&args.actions)
            .map_err(|e| format!("cannot read actions file {:?}: {e}", args.actions))?
    };
    let mut out = std::io::stdout().lock();
    rollout(args.env, &args.init_state, &actions, &mut out)?;
    Ok(())
}
