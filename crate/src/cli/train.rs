//! `rfm train`: online RL on one environment, JSON lines on stdout, a progress bar on stderr.
//!
//! Output, one JSON object per line:
//! - at each episode end: `{"step", "episode_return", "episode_length", "critic_loss",
//!   "actor_loss", "ess" (RFM), "alpha" (SAC), "updates_per_sec"}` (losses of the latest update
//!   and the update rate since the previous line; absent during warm-up);
//! - every `--eval-every` steps: `{"step", "eval_return"}`, plus `"goals_reached"` (episodes
//!   ending in each goal) on multigoal;
//! - last: `{"final_eval_return", "steps", "updates", "seconds"}` (+ `"goals_reached"`).
//!
//! Everything except the timing fields (`updates_per_sec`, `seconds`) is the same for the same
//! seed on the CPU backend.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rfm_playground::device::ComputeDevice;
use rfm_playground::envs::{EnvName, make_env};
use rfm_playground::rfm::estimators::Estimator;
use rfm_playground::trainer::{Agent, EvalPolicy, Preset, StepReport, TrainConfig, Trainer};
use serde_json::{Value, json};

use super::CliError;

#[derive(clap::Args)]
pub struct Args {
    /// Environment: pendulum, mountain-car or multigoal.
    #[arg(long)]
    env: String,
    /// Algorithm: rfm, rfm-noise, rfm-grad or sac.
    #[arg(long, default_value = "rfm")]
    algo: String,
    /// Env steps (one update per step after warm-up).
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    /// Seed of the run (overrides the config's seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Starting config: playground (small, fast) or released (paper settings).
    #[arg(long, default_value = "playground")]
    preset: String,
    /// JSON file with any subset of the config fields (camelCase), applied over the preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory to write config.json + weights.json into at the end (also when training stops
    /// on a non-finite value: the last good weights).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Evaluate every N env steps (0: only at the end).
    #[arg(long, default_value_t = 5_000)]
    eval_every: usize,
    /// Episodes per evaluation.
    #[arg(long, default_value_t = 5)]
    eval_episodes: usize,
    /// Evaluation actions: greedy (best candidate / Gaussian mean) or sample (the training
    /// policy's random draws, e.g. to see which multigoal goals it reaches).
    #[arg(long, default_value = "greedy")]
    eval_policy: String,
}

/// The config the arguments describe: preset, then the file's fields, then `--seed`.
pub fn build_config(
    preset: &str,
    file: Option<&PathBuf>,
    seed: u64,
) -> Result<TrainConfig, CliError> {
    let mut cfg = TrainConfig::preset(preset.parse::<Preset>()?);
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        cfg = cfg.with_overrides(&text)?;
    }
    cfg.seed = seed;
    cfg.validate()?;
    Ok(cfg)
}

fn report_line(r: &StepReport, updates_per_sec: f64) -> Value {
    let mut v = json!({
        "step": r.step,
        "episode_return": r.episode_return,
        "episode_length": r.episode_length,
    });
    let obj = v.as_object_mut().expect("object");
    let mut put = |k: &str, x: Option<f32>| {
        if let Some(x) = x {
            obj.insert(k.to_string(), json!(x));
        }
    };
    put("critic_loss", r.critic_loss);
    put("actor_loss", r.actor_loss);
    put("ess", r.ess);
    put("alpha", r.alpha);
    if updates_per_sec > 0.0 {
        obj.insert(
            "updates_per_sec".to_string(),
            json!((updates_per_sec * 10.0).round() / 10.0),
        );
    }
    v
}

pub fn run(args: Args) -> Result<(), CliError> {
    let env_name: EnvName = args.env.parse()?;
    // The old algorithm names, onto the config's agent and estimator fields.
    let (agent, estimator) = match args.algo.as_str() {
        "rfm" => (Agent::Rfm, "rfm"),
        "rfm-noise" => (Agent::Rfm, "noise"),
        "rfm-grad" => (Agent::Rfm, "grad"),
        "sac" => (Agent::Sac, "rfm"),
        other => {
            return Err(format!("unknown --algo '{other}' (rfm, rfm-noise, rfm-grad, sac)").into());
        }
    };
    let eval_policy: EvalPolicy = args.eval_policy.parse()?;
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    let cfg = TrainConfig {
        agent,
        estimator: Estimator::from_name(estimator)?,
        ..build_config(&args.preset, args.config.as_ref(), args.seed)?
    };
    let env = make_env(env_name, cfg.seed);
    let mut trainer = Trainer::new(cfg, env, ComputeDevice::cpu())?;

    let bar = ProgressBar::new(args.steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps {elapsed_precise} (eta {eta}) {msg}",
        )
        .expect("valid template"),
    );
    let start = Instant::now();
    let mut last: Option<StepReport> = None;
    let mut window = (Instant::now(), 0usize);
    let mut updates_per_sec = 0.0;
    for _ in 0..args.steps {
        let mut r = match pollster::block_on(trainer.step()) {
            Ok(r) => r,
            Err(e) => {
                bar.abandon();
                if let Some(dir) = &args.save {
                    pollster::block_on(trainer.save(dir))?;
                }
                return Err(e.into());
            }
        };
        bar.inc(1);
        // Keep the latest update's numbers for the episode line.
        if r.critic_loss.is_none()
            && let Some(l) = &last
        {
            r.critic_loss = l.critic_loss;
            r.actor_loss = l.actor_loss;
            r.ess = l.ess;
            r.alpha = l.alpha;
        }
        if let Some(ret) = r.episode_return {
            let dt = window.0.elapsed().as_secs_f64();
            if dt > 0.0 {
                updates_per_sec = (trainer.updates() - window.1) as f64 / dt;
            }
            window = (Instant::now(), trainer.updates());
            bar.set_message(format!("return {ret:.1}, {updates_per_sec:.1} updates/s"));
            bar.suspend(|| println!("{}", report_line(&r, updates_per_sec)));
        }
        if args.eval_every > 0 && r.step % args.eval_every == 0 && r.step < args.steps {
            let ev = pollster::block_on(trainer.evaluate_with(args.eval_episodes, eval_policy))?;
            let mut line = json!({"step": r.step, "eval_return": ev.mean_return});
            if !ev.goals_reached.is_empty() {
                line["goals_reached"] = json!(ev.goals_reached);
            }
            bar.suspend(|| println!("{line}"));
            window = (Instant::now(), trainer.updates());
        }
        last = Some(r);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let ev = pollster::block_on(trainer.evaluate_with(args.eval_episodes.max(1), eval_policy))?;
    if let Some(dir) = &args.save {
        pollster::block_on(trainer.save(dir))?;
    }
    let mut last_line = json!({
        "final_eval_return": ev.mean_return,
        "steps": trainer.steps(),
        "updates": trainer.updates(),
        "seconds": (seconds * 10.0).round() / 10.0,
    });
    if !ev.goals_reached.is_empty() {
        last_line["goals_reached"] = json!(ev.goals_reached);
    }
    println!("{last_line}");
    Ok(())
}
