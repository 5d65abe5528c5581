//! `rfm`: the command-line front door to the RFM Playground core.
//!
//! Each subcommand lives in its own file under `src/cli/`; this file only parses and
//! dispatches. Errors print as one line on stderr with a non-zero exit, never a panic.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(target_arch = "wasm32")]
fn main() {
    // The CLI is native-only; the wasm build of this crate is the library (see `wasm.rs`).
}

#[cfg(not(target_arch = "wasm32"))]
use clap::{Parser, Subcommand};

#[cfg(not(target_arch = "wasm32"))]
#[derive(Parser)]
#[command(
    name = "rfm",
    version,
    about = "Reverse Flow Matching playground: train, sample and evaluate from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Subcommand)]
enum Command {
    /// Fit a small MLP for a few Adam steps on the CPU backend and print the losses as JSON
    /// (a quick check that the tensor stack works on this machine).
    Probe(cli::probe::Args),
    /// Train a 2-D flow toward a known energy (sampler mode), write samples as CSV and print
    /// the metrics as JSON.
    Sample(cli::sample::Args),
    /// Replay a JSON list of native-unit actions in an environment from a given state and
    /// print one JSON line per step (step, obs, reward, terminated, truncated).
    Rollout(cli::rollout::Args),
    /// Run one experiment spec (RL or sampler) exactly as the page does: `--spec FILE`,
    /// `--link LINK` or `--preset NAME`, flags over it; JSON lines on stdout.
    Train(cli::train::Args),
    /// Re-evaluate a checkpoint (`train --save FILE` or the page's "Save weights").
    Eval(cli::eval::Args),
    /// Throughput and per-time variance/MSE of the posterior-mean estimators on a known
    /// target, as JSON.
    BenchEstimators(cli::bench_estimators::Args),
    /// Throughput of the RFM agent (updates/s, action selections/s, estimator targets/s) for
    /// the playground and released configs, JSON lines.
    Bench(cli::bench::Args),
    /// Expand a grid of specs into runs; run them resumably (local jobs or a Slurm array), report.
    Sweep(cli::sweep::Args),
}

/// Keep freed memory in glibc's heap instead of returning it to the OS after every tensor op:
/// trim threshold 1 GiB, top pad 256 MiB, mmap threshold 32 MiB. Each burn op allocates a
/// fresh output buffer; with glibc's defaults the large ones are unmapped on free and page-
/// faulted in again by the next op (docs/performance.md: −26 % CPU time per playground update).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const MIB: libc::c_int = 1 << 20;
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any thread starts.
    // A rejected value (return 0) leaves glibc's default, which is only slower.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * MIB);
        libc::mallopt(libc::M_TOP_PAD, 256 * MIB);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MIB);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => cli::probe::run(args),
        Command::Sample(args) => cli::sample::run(args),
        Command::Rollout(args) => cli::rollout::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::BenchEstimators(args) => cli::bench_estimators::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Sweep(args) => cli::sweep::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
