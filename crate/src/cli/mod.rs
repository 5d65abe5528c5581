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

/// A JSON file holding a list of env start states (internal states as `rfm rollout
/// --init-state` takes them, e.g. pendulum `[theta, thetaDot]`), for `--init-states` /
/// `--eval-init-states`.
pub fn read_start_states(path: &std::path::Path) -> Result<Vec<Vec<f64>>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let starts: Vec<Vec<f64>> = serde_json::from_str(&text)
        .map_err(|e| format!("{}: expected a JSON list of states: {e}", path.display()))?;
    if starts.is_empty() {
        return Err(format!("{}: the list of states is empty", path.display()).into());
    }
    Ok(starts)
}
