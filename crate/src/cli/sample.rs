//! `rfm sample`: sampler mode from the command line. Trains a 2-D flow toward a named target
//! with the chosen estimator on the CPU backend, writes samples as CSV (`x,y`), shows progress
//! on stderr and prints the final metrics as one JSON line on stdout.

use std::io::Write as _;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rfm_playground::device::ComputeDevice;
use rfm_playground::nets::{Parameterisation, Solver};
use rfm_playground::sampler::{DIM, SamplerConfig, SamplerTrainer};
use serde_json::json;

use super::CliError;

#[derive(clap::Args)]
pub struct Args {
    /// Target density: gmm8, two-moons, rings, gmm40.
    #[arg(long, default_value = "gmm8")]
    target: String,
    /// Posterior-mean estimator: rfm, noise, grad, cv-iso, cv-pool or eta:<x>.
    #[arg(long, default_value = "rfm")]
    estimator: String,
    /// Network parameterisation: flow (velocity, linear path) or diffusion (noise, VP path).
    #[arg(long, default_value = "flow")]
    param: Parameterisation,
    /// Updates to run.
    #[arg(long)]
    train_steps: Option<usize>,
    /// Candidates per posterior estimate (K).
    #[arg(long)]
    k: Option<usize>,
    /// Temperature λ: the flow targets exp(log p / λ).
    #[arg(long, allow_negative_numbers = true)]
    lambda: Option<f32>,
    /// Rows per update.
    #[arg(long)]
    batch: Option<usize>,
    /// Adam learning rate.
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Hidden width of the policy.
    #[arg(long)]
    hidden: Option<usize>,
    /// ODE steps for sampling.
    #[arg(long)]
    ode_steps: Option<usize>,
    /// ODE solver: euler or heun.
    #[arg(long)]
    solver: Option<Solver>,
    /// Fraction of proposals drawn from a wide Gaussian instead of the policy.
    #[arg(long, allow_negative_numbers = true)]
    wide_frac: Option<f32>,
    /// Smallest training time t (t ~ U(t-min, 0.99)); default 0.01, the RFM code's range.
    #[arg(long, allow_negative_numbers = true)]
    t_min: Option<f32>,
    /// Share of the posterior candidates drawn from the wide Gaussian N(0, 4² I) instead of the
    /// path's prior (a defensive mixture); default 0.5; 0 is the released code's prior only.
    #[arg(long, allow_negative_numbers = true)]
    proposal_share: Option<f32>,
    /// Diagnostic: train on the closed-form posterior mean (gmm8, gmm40 at λ = 1) instead of an
    /// estimate, to tell the estimator's error from the network's, the optimiser's and the ODE's.
    #[arg(long)]
    exact_posterior: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Samples to write.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Samples per side for the metrics.
    #[arg(long, default_value_t = 4000)]
    eval_n: usize,
    /// Also evaluate every this many updates (0 = only at the end); each evaluation prints a
    /// JSON line on stderr with the training time so far (evaluation time excluded).
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// CSV file for the samples (header `x,y`); none written when absent.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

impl Args {
    fn config(&self) -> Result<SamplerConfig, CliError> {
        let d = SamplerConfig::default();
        Ok(SamplerConfig {
            target: self.target.clone(),
            estimator: self.estimator.parse()?,
            param: self.param,
            train_steps: self.train_steps.unwrap_or(d.train_steps),
            k: self.k.unwrap_or(d.k),
            lambda: self.lambda.unwrap_or(d.lambda),
            batch: self.batch.unwrap_or(d.batch),
            lr: self.lr.unwrap_or(d.lr),
            hidden: self.hidden.unwrap_or(d.hidden),
            ode_steps: self.ode_steps.unwrap_or(d.ode_steps),
            solver: self.solver.unwrap_or(d.solver),
            wide_frac: self.wide_frac.unwrap_or(d.wide_frac),
            t_min: self.t_min.unwrap_or(d.t_min),
            proposal_share: self.proposal_share.unwrap_or(d.proposal_share),
            exact_posterior: self.exact_posterior,
            seed: self.seed,
            ..d
        })
    }
}

pub fn run(args: Args) -> Result<(), CliError> {
    if !(1..=10_000_000).contains(&args.n) {
        return Err(format!("--n = {} is out of range (1..=10000000)", args.n).into());
    }
    if !(2..=1_000_000).contains(&args.eval_n) {
        return Err(format!("--eval-n = {} is out of range (2..=1000000)", args.eval_n).into());
    }
    let cfg = args.config()?;
    let mut trainer = SamplerTrainer::new(cfg.clone(), ComputeDevice::cpu())?;
    let bar = ProgressBar::new(cfg.train_steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut train_secs = 0.0f64;
    let mut last = None;
    for _ in 0..cfg.train_steps {
        let start = Instant::now();
        let report = pollster::block_on(trainer.step())?;
        train_secs += start.elapsed().as_secs_f64();
        bar.inc(1);
        if report.step % 25 == 0 || report.step == cfg.train_steps {
            bar.set_message(format!(
                "loss {:.4} ESS {:.1}",
                report.loss, report.mean_ess
            ));
        }
        if args.eval_every > 0 && report.step % args.eval_every == 0 {
            let m = pollster::block_on(trainer.evaluate(args.eval_n))?;
            bar.suspend(|| {
                eprintln!(
                    "{}",
                    json!({ "step": report.step, "trainSeconds": train_secs, "metrics": m })
                )
            });
        }
        last = Some(report);
    }
    bar.finish_and_clear();
    let metrics = pollster::block_on(trainer.evaluate(args.eval_n))?;
    if let Some(path) = &args.out {
        let samples = pollster::block_on(trainer.sample(args.n))?;
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        );
        writeln!(w, "x,y")?;
        for row in samples.chunks(DIM) {
            writeln!(w, "{},{}", row[0], row[1])?;
        }
        w.flush()?;
    }
    let last = last.ok_or("no training step ran")?;
    println!(
        "{}",
        json!({
            "config": cfg,
            "steps": last.step,
            "trainSeconds": train_secs,
            "finalLoss": last.loss,
            "meanEss": last.mean_ess,
            "metrics": metrics,
        })
    );
    Ok(())
}
