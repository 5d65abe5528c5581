//! `rfm train`: run one experiment spec — exactly what the page runs — with JSON lines on
//! stdout and a progress bar on stderr.
//!
//! The spec comes from `--spec FILE` (JSON, any subset of the fields; the rest are its mode's
//! defaults), `--link` (a page's share link or its fragment) or a named spec (`--preset`:
//! `page`, `playground` (default), `released`), then the flags (`--env`, `--agent`, …, and
//! `--set key=value` for any field) are applied over it and the result is validated. The run
//! goes through the same [`Session`] as the page: the same trainers, the same fault guard
//! (except that a collapsed ESS does not stop it: see `ess` in the output).
//!
//! Output, one JSON object per line:
//! - RL, at each episode end: `{"step", "episode_return", "critic_loss", "actor_loss", "ess"
//!   (RFM), "updates_per_sec"}` (losses of the latest update and the steps per second of the
//!   latest batch of 100 steps, greedy evaluations included; absent during warm-up);
//! - RL, every `evalEvery` steps: `{"step", "eval_return"}`;
//! - sampler, every 100 updates: `{"step", "loss", "ess"}`;
//! - last: `{"final_eval_return", "steps", "seconds"}` (+ `"goals_reached"` on multigoal) in
//!   RL; `{"steps", "seconds", "metrics"}` in sampler mode.
//!
//! With `seeds` > 1 (several seeds side by side) every line but the last also has `"seed"`
//! (the seed it is of), and the last adds `"final_eval_return_by_seed"` (RL; the first is the
//! spec's own seed's, as `final_eval_return`).
//!
//! Everything except the timing fields (`updates_per_sec`, `seconds`) is the same for the same
//! spec on the CPU backend.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rfm_playground::device::ComputeDevice;
use rfm_playground::session::Session;
use rfm_playground::session::seeds::seed_of;
use rfm_playground::spec::{self, ExperimentSpec, Mode, resolve};
use rfm_playground::trainer::EvalPolicy;
use serde_json::{Value, json};

use super::CliError;

/// Steps per session batch (the page's fault guard runs once per batch).
const CHUNK: usize = 100;

#[derive(clap::Args)]
pub struct Args {
    /// A spec file (JSON): any subset of the fields; the rest are its mode's defaults.
    #[arg(long, conflicts_with_all = ["link", "preset"])]
    spec: Option<PathBuf>,
    /// A page's share link (or just its fragment, `v1.…`): the page's exact experiment.
    #[arg(long, conflicts_with = "preset")]
    link: Option<String>,
    /// A named spec: page, playground or released.
    #[arg(long)]
    preset: Option<String>,
    /// Environment: pendulum, mountain-car or multigoal.
    #[arg(long)]
    env: Option<String>,
    /// Agent: rfm or sac.
    #[arg(long)]
    agent: Option<String>,
    /// Posterior estimator: rfm, noise, grad, cv-iso, cv-pool or eta:X.
    #[arg(long)]
    estimator: Option<String>,
    /// Policy parameterisation: flow or diffusion.
    #[arg(long)]
    param: Option<String>,
    /// Steps to run (RL: env steps; sampler: updates); overrides the spec's `steps`.
    #[arg(long)]
    steps: Option<usize>,
    /// Seed of the run.
    #[arg(long)]
    seed: Option<u64>,
    /// Greedy evaluation every N env steps (0: only at the end); the spec's `evalEvery`.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Episodes per evaluation; the spec's `evalEpisodes`.
    #[arg(long)]
    eval_episodes: Option<usize>,
    /// The final evaluation's actions: greedy (best candidate / Gaussian mean) or sample (the
    /// training policy's random draws, e.g. to see which multigoal goals it reaches).
    #[arg(long, default_value = "greedy")]
    eval_policy: String,
    /// RL: a JSON file holding a list of start states (as `rfm eval --init-states` takes it):
    /// every evaluation, periodic and final, runs one greedy episode from each instead of
    /// `evalEpisodes` from the evaluation seeds (e.g. Gymnasium's reset states, to compare
    /// curves with code that evaluates on those).
    #[arg(long)]
    eval_init_states: Option<PathBuf>,
    /// Any spec field, e.g. `--set lambda=0.5 --set k=32` (values are JSON; bare words are
    /// strings).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print the resolved spec as JSON and exit.
    #[arg(long)]
    print_spec: bool,
    /// Checkpoint file to write at the end (also when training stops on a fault: the last good
    /// weights). `rfm eval --load` and the page's "Load weights" open it.
    #[arg(long)]
    save: Option<PathBuf>,
}

/// The spec the arguments describe (validated).
pub fn build_spec(args: &Args) -> Result<ExperimentSpec, CliError> {
    let base = if let Some(path) = &args.spec {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("spec file {}: {e}", path.display()))?;
        ExperimentSpec::from_json(&text)
            .map_err(|e| format!("spec file {}: {e}", path.display()))?
    } else if let Some(link) = &args.link {
        let fragment = link.rsplit_once('#').map_or(link.as_str(), |(_, f)| f);
        spec::decode_share(fragment)?
    } else {
        let name = args.preset.as_deref().unwrap_or("playground");
        resolve::named(name).ok_or_else(|| {
            let names: Vec<&str> = resolve::NAMED.iter().map(|(n, _)| *n).collect();
            format!("unknown preset '{name}' (valid: {})", names.join(", "))
        })?
    };
    let mut patch = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        patch.insert(k.to_string(), v);
    };
    for (k, v) in [
        ("env", &args.env),
        ("agent", &args.agent),
        ("estimator", &args.estimator),
        ("param", &args.param),
    ] {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    if let Some(v) = args.steps {
        put("steps", json!(v));
    }
    if let Some(v) = args.seed {
        put("seed", json!(v));
    }
    if let Some(v) = args.eval_every {
        put("evalEvery", json!(v));
    }
    if let Some(v) = args.eval_episodes {
        put("evalEpisodes", json!(v));
    }
    for kv in &args.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--set {kv}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        put(k, value);
    }
    // A mode switch takes the new mode's defaults for everything the flags do not name.
    let spec = base.patched(patch)?;
    spec.validate()?;
    if spec.steps == 0 {
        return Err("the spec runs until paused (steps = 0): give --steps N".into());
    }
    Ok(spec)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn run(args: Args) -> Result<(), CliError> {
    let spec = build_spec(&args)?;
    if args.print_spec {
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(());
    }
    let eval_policy: EvalPolicy = args.eval_policy.parse()?;
    let total = spec.steps;
    let mut session = Session::new(spec.clone(), ComputeDevice::cpu())?;
    // The page pauses on a collapsed ESS to explain it; a research run at a small λ (the
    // released 0.02) legitimately runs at ESS ≈ 1, so the CLI reports the ESS and goes on.
    session.watch_ess_collapse(false);
    if let Some(path) = &args.eval_init_states {
        let starts = super::read_start_states(path)?;
        session
            .evaluate_on_starts(starts)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps {elapsed_precise} (eta {eta}) {msg}",
        )
        .expect("valid template"),
    );
    let start = Instant::now();
    // The latest losses of each seed.
    let mut latest = vec![json!({}); spec.seeds];
    let several = spec.seeds > 1;
    // `line` with the seed it is of, when there are several.
    let tag = |mut line: Value, i: usize| {
        if several {
            line["seed"] = json!(seed_of(&spec, i));
        }
        line
    };
    // Steps per second of the latest batch (each batch is timed whole: its points arrive together).
    let mut rate = 0.0f64;
    let save = |s: &Session| -> Result<(), CliError> {
        if let Some(path) = &args.save {
            let bytes = pollster::block_on(s.save_weights())?;
            std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    };
    while !session.finished() {
        let (t0, before) = (Instant::now(), session.steps());
        let batch = pollster::block_on(session.step(CHUNK));
        let dt = t0.elapsed().as_secs_f64();
        if dt > 0.0 {
            rate = (batch.step - before) as f64 / dt;
        }
        bar.set_position(batch.step as u64);
        if let Some(fault) = batch
            .fault
            .or(batch.device_lost.then(|| "the device was lost".into()))
        {
            bar.abandon();
            save(&session)?;
            return Err(fault.into());
        }
        for p in batch.points {
            let i = p.seed_index;
            for (k, v) in [
                ("critic_loss", p.critic_loss),
                ("actor_loss", p.actor_loss),
                ("ess", p.ess),
            ] {
                if let Some(v) = v {
                    latest[i][k] = json!(v);
                }
            }
            if spec.mode == Mode::Sampler && p.step.is_multiple_of(100) {
                let line = tag(
                    json!({"step": p.step, "loss": p.actor_loss, "ess": p.ess}),
                    i,
                );
                bar.suspend(|| println!("{line}"));
            }
            if let Some(ret) = p.episode_return {
                let mut line = tag(json!({"step": p.step, "episode_return": ret}), i);
                if p.step > spec.warmup.max(spec.batch) {
                    for k in ["critic_loss", "actor_loss", "ess"] {
                        if let Some(v) = latest[i].get(k) {
                            line[k] = v.clone();
                        }
                    }
                    line["updates_per_sec"] = json!(round1(rate));
                }
                if i == 0 {
                    bar.set_message(format!("return {ret:.1}, {rate:.1} steps/s"));
                }
                bar.suspend(|| println!("{line}"));
            }
            if let Some(ev) = p.eval_return.filter(|_| p.step < total) {
                let line = tag(json!({"step": p.step, "eval_return": ev}), i);
                bar.suspend(|| println!("{line}"));
            }
        }
    }
    bar.finish_and_clear();
    let seconds = round1(start.elapsed().as_secs_f64());
    let last = match spec.mode {
        Mode::Rl => {
            let ev = pollster::block_on(session.evaluate(spec.eval_episodes, eval_policy))?;
            let mut l = json!({
                "final_eval_return": ev.mean_return,
                "steps": session.steps(),
                "seconds": seconds,
            });
            if !ev.goals_reached.is_empty() {
                l["goals_reached"] = json!(ev.goals_reached);
            }
            if several {
                let mut by_seed = vec![ev.mean_return];
                for i in 1..spec.seeds {
                    let ev = pollster::block_on(session.evaluate_seed(
                        i,
                        spec.eval_episodes,
                        eval_policy,
                    ))?;
                    by_seed.push(ev.mean_return);
                }
                l["final_eval_return_by_seed"] = json!(by_seed);
            }
            l
        }
        Mode::Sampler => {
            let m = pollster::block_on(session.sampler_metrics(4000))?;
            json!({"steps": session.steps(), "seconds": seconds, "metrics": m})
        }
    };
    save(&session)?;
    println!("{last}");
    Ok(())
}
