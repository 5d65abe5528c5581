//! `rfm sweep`: a grid of experiment specs, expanded into runs, run resumably by local worker
//! processes or by a Slurm job array, and summarised as a table.
//!
//! The grid file (JSON, docs/rl.md "Sweeps"):
//!
//! ```json
//! {"preset": "playground", "base": {"k": 16}, "steps": 10000, "evalEvery": 1000,
//!  "axes": {"env": ["pendulum", "multigoal"], "estimator": ["rfm", "noise"], "seed": [0, 1, 2]},
//!  "overrides": {"env=multigoal": {"steps": 3000}}, "out": "runs/table"}
//! ```
//!
//! Run `i`'s spec is the preset (or, without one, the mode's defaults) with `base`, `steps` and
//! `evalEvery`, the `overrides` whose `axis=value` the run has, and the run's axis values written
//! over it, in that order. Runs are the cartesian product of the axes in file order, the last axis
//! varying fastest; a run's name is its `axis=value` pairs joined by `,` (the file name of its
//! results, so extending an axis keeps the finished runs).
//!
//! Files under `out`, per run: `<name>.spec.json` (the resolved spec), `<name>.jsonl.partial`
//! while it runs (the `rfm train` JSON lines), `<name>.jsonl` once it exited 0, `<name>.failed`
//! (the exit status and the end of its stderr) if it did not; `report.csv` from `--report`.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rfm_playground::spec::{ExperimentSpec, Mode, resolve};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::CliError;

/// Lines of a failed run's stderr kept in its `.failed` file.
const STDERR_TAIL: usize = 20;

#[derive(clap::Args)]
pub struct Args {
    /// The grid file (JSON; docs/rl.md "Sweeps").
    #[arg(long)]
    grid: PathBuf,
    /// Output directory; overrides the grid's `out` (default: `runs/<grid file stem>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON line per run (index, name, spec) and exit.
    #[arg(long, conflicts_with_all = ["index", "report", "emit"])]
    list: bool,
    /// Runs at a time (local worker processes, one rayon thread each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
    /// Run only run I (what each Slurm array task calls); skipped when already finished.
    #[arg(long, value_name = "I", conflicts_with_all = ["report", "emit"])]
    index: Option<usize>,
    /// Aggregate the finished runs: a Markdown table on stdout and `<out>/report.csv`.
    #[arg(long, conflicts_with = "emit")]
    report: bool,
    /// Print a job script that runs the grid, one array task per run.
    #[arg(long, value_enum, value_name = "SCHEDULER")]
    emit: Option<Scheduler>,
    /// Slurm partition (`#SBATCH --partition`).
    #[arg(long, requires = "emit")]
    partition: Option<String>,
    /// Wall-clock limit of one array task (`#SBATCH --time`).
    #[arg(long, default_value = "02:00:00", requires = "emit")]
    time: String,
    /// CPUs per array task (`#SBATCH --cpus-per-task`, also the run's rayon threads).
    #[arg(long, default_value_t = 1, requires = "emit")]
    cpus: u32,
    /// The rfm binary the job script calls (default: this one).
    #[arg(long, requires = "emit")]
    rfm: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Scheduler {
    Slurm,
}

/// A JSON object read in file order (serde_json's own map sorts its keys).
#[derive(Default)]
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered<T>, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, T>()? {
                    if entries.iter().any(|(e, _)| *e == k) {
                        return Err(de::Error::custom(format!("'{k}' appears twice")));
                    }
                    entries.push((k, v));
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The grid file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GridFile {
    /// A named spec to start from (`rfm train --preset`); without it, the mode's defaults.
    preset: Option<String>,
    /// Spec fields over the preset.
    #[serde(default)]
    base: Map<String, Value>,
    /// Shorthands for the base's `steps` and `evalEvery`.
    steps: Option<usize>,
    eval_every: Option<usize>,
    /// Spec field → its values, in file order.
    #[serde(default)]
    axes: Ordered<Vec<Value>>,
    /// `"axis=value"` → spec fields for the runs with that value.
    #[serde(default)]
    overrides: Ordered<Map<String, Value>>,
    out: Option<PathBuf>,
}

/// One run of the grid.
#[derive(Serialize)]
struct Run {
    index: usize,
    name: String,
    /// The run's value of each axis, as the name shows it.
    #[serde(skip)]
    values: Vec<String>,
    spec: ExperimentSpec,
}

struct Grid {
    path: PathBuf,
    out: PathBuf,
    axes: Vec<String>,
    runs: Vec<Run>,
}

/// An axis value as it appears in names and tables: strings bare, the rest as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `s` with every character outside `[A-Za-z0-9._=,+-]` replaced by `_`.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Grid {
    fn load(path: &Path, out: Option<&Path>) -> Result<Self, CliError> {
        let ctx = |e: &dyn fmt::Display| format!("grid {}: {e}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| ctx(&e))?;
        let file: GridFile = serde_json::from_str(&text).map_err(|e| ctx(&e))?;

        let mut start = match &file.preset {
            Some(name) => {
                let spec = resolve::named(name).ok_or_else(|| {
                    let names: Vec<&str> = resolve::NAMED.iter().map(|(n, _)| *n).collect();
                    ctx(&format!(
                        "unknown preset '{name}' (valid: {})",
                        names.join(", ")
                    ))
                })?;
                match serde_json::to_value(spec).expect("a spec serialises") {
                    Value::Object(m) => m,
                    _ => unreachable!("a spec serialises to an object"),
                }
            }
            None => Map::new(),
        };
        start.extend(file.base.clone());
        if let Some(s) = file.steps {
            start.insert("steps".into(), json!(s));
        }
        if let Some(e) = file.eval_every {
            start.insert("evalEvery".into(), json!(e));
        }

        // Every axis value on its own over the base: a bad one is named before anything runs.
        for (axis, values) in &file.axes.0 {
            if values.is_empty() {
                return Err(ctx(&format!("axis {axis} has no values")).into());
            }
            for (i, v) in values.iter().enumerate() {
                let mut m = start.clone();
                m.insert(axis.clone(), v.clone());
                ExperimentSpec::from_value(Value::Object(m))
                    .map_err(|e| ctx(&format!("axis {axis}, value {i} ({v}): {e}")))?;
            }
        }
        for (key, _) in &file.overrides.0 {
            let known = key.split_once('=').is_some_and(|(a, v)| {
                file.axes
                    .0
                    .iter()
                    .any(|(axis, vs)| axis == a && vs.iter().any(|x| shown(x) == v))
            });
            if !known {
                return Err(ctx(&format!(
                    "override '{key}' names no axis value (expected \"axis=value\")"
                ))
                .into());
            }
        }

        let axes: Vec<String> = file.axes.0.iter().map(|(a, _)| a.clone()).collect();
        let total: usize = file.axes.0.iter().map(|(_, v)| v.len()).product();
        let mut runs = Vec::with_capacity(total);
        let mut names = BTreeSet::new();
        for index in 0..total {
            // Mixed radix, the last axis fastest.
            let mut rest = index;
            let mut pick = vec![0; axes.len()];
            for (a, (_, values)) in file.axes.0.iter().enumerate().rev() {
                pick[a] = rest % values.len();
                rest /= values.len();
            }
            let chosen: Vec<(&str, &Value)> = file
                .axes
                .0
                .iter()
                .zip(&pick)
                .map(|((axis, values), &p)| (axis.as_str(), &values[p]))
                .collect();
            let values: Vec<String> = chosen.iter().map(|(_, v)| shown(v)).collect();
            let pairs: Vec<String> = chosen
                .iter()
                .zip(&values)
                .map(|((a, _), v)| format!("{a}={v}"))
                .collect();
            let mut m = start.clone();
            for (key, fields) in &file.overrides.0 {
                if pairs.contains(key) {
                    m.extend(fields.clone());
                }
            }
            for (axis, v) in &chosen {
                m.insert(axis.to_string(), (*v).clone());
            }
            let name = if pairs.is_empty() {
                "run".to_string()
            } else {
                file_safe(&pairs.join(","))
            };
            let fail = |e: &dyn fmt::Display| ctx(&format!("run {index} ({name}): {e}"));
            let spec = ExperimentSpec::from_value(Value::Object(m)).map_err(|e| fail(&e))?;
            spec.validate().map_err(|e| fail(&e))?;
            if spec.steps == 0 {
                return Err(fail(&"steps = 0: give \"steps\" in the grid").into());
            }
            if name.len() > 200 {
                return Err(fail(&"the name is too long for a file name").into());
            }
            if !names.insert(name.clone()) {
                return Err(fail(&"another run has the same file name").into());
            }
            runs.push(Run {
                index,
                name,
                values,
                spec,
            });
        }
        let out = match out.map(Path::to_path_buf).or(file.out) {
            Some(o) => o,
            None => {
                let stem = path
                    .file_stem()
                    .map_or("sweep".into(), |s| s.to_string_lossy());
                Path::new("runs").join(file_safe(&stem))
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            out,
            axes,
            runs,
        })
    }

    fn file(&self, run: &Run, ext: &str) -> PathBuf {
        self.out.join(format!("{}.{ext}", run.name))
    }

    fn done(&self, run: &Run) -> bool {
        self.file(run, "jsonl").is_file()
    }

    /// Refuses an `out` whose finished results were produced by other specs than the grid's.
    fn check_results_match(&self) -> Result<(), CliError> {
        for run in self.runs.iter().filter(|r| self.done(r)) {
            let Ok(text) = std::fs::read_to_string(self.file(run, "spec.json")) else {
                continue;
            };
            if ExperimentSpec::from_json(&text).ok().as_ref() != Some(&run.spec) {
                return Err(format!(
                    "run {} ({}): {} holds results of a different spec than the grid's; \
                     use another --out or delete that run's files",
                    run.index,
                    run.name,
                    self.out.display()
                )
                .into());
            }
        }
        Ok(())
    }
}

/// Runs `run` as `rfm train --spec <name>.spec.json`; `Ok(seconds)` or `Err(last stderr line)`.
fn execute(grid: &Grid, run: &Run, threads: Option<&str>) -> Result<f64, String> {
    let io = |e: std::io::Error| format!("{}: {e}", grid.out.display());
    let spec_path = grid.file(run, "spec.json");
    let spec_text = serde_json::to_string_pretty(&run.spec).expect("a spec serialises");
    std::fs::write(&spec_path, spec_text + "\n").map_err(io)?;
    let partial = grid.file(run, "jsonl.partial");
    let failed = grid.file(run, "failed");
    let _ = std::fs::remove_file(&failed);
    let exe = std::env::current_exe().map_err(|e| format!("the rfm binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("train")
        .arg("--spec")
        .arg(&spec_path)
        .stdin(Stdio::null())
        .stdout(File::create(&partial).map_err(io)?)
        .stderr(Stdio::piped());
    if let Some(n) = threads {
        cmd.env("RAYON_NUM_THREADS", n);
    }
    let start = Instant::now();
    let output = cmd
        .spawn()
        .and_then(|c| c.wait_with_output())
        .map_err(|e| format!("rfm train: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    if output.status.success() {
        std::fs::rename(&partial, grid.file(run, "jsonl")).map_err(io)?;
        return Ok(seconds);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(STDERR_TAIL)..];
    let _ = std::fs::write(&failed, format!("{}\n{}\n", output.status, tail.join("\n")));
    Err(tail
        .last()
        .map_or_else(|| output.status.to_string(), |l| l.to_string()))
}

/// Runs every unfinished run, `jobs` at a time.
fn run_all(grid: &Grid, jobs: usize) -> Result<(), CliError> {
    let todo: Vec<&Run> = grid.runs.iter().filter(|r| !grid.done(r)).collect();
    let total = grid.runs.len();
    let finished = total - todo.len();
    eprintln!(
        "sweep: {total} runs, {finished} finished, {} to run, {} at a time, in {}",
        todo.len(),
        jobs.min(todo.len()).max(1),
        grid.out.display()
    );
    let next = AtomicUsize::new(0);
    let state = Mutex::new((finished, Vec::<String>::new()));
    std::thread::scope(|s| {
        for _ in 0..jobs.min(todo.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(run) = todo.get(i) else { break };
                    let result = execute(grid, run, Some("1"));
                    let mut st = state.lock().expect("no worker panics holding the lock");
                    match result {
                        Ok(sec) => {
                            st.0 += 1;
                            eprintln!("[{}/{total}] done {} ({sec:.1} s)", st.0, run.name);
                        }
                        Err(e) => {
                            st.1.push(run.name.clone());
                            eprintln!(
                                "[{}/{total}] FAILED {} ({} failed): {e}",
                                st.0,
                                run.name,
                                st.1.len()
                            );
                        }
                    }
                }
            });
        }
    });
    let (finished, failed) = state
        .into_inner()
        .expect("no worker panics holding the lock");
    if failed.is_empty() {
        eprintln!("sweep: {finished}/{total} finished");
        Ok(())
    } else {
        Err(format!(
            "{} of {total} runs failed ({}; see their .failed files in {})",
            failed.len(),
            failed.join(" "),
            grid.out.display()
        )
        .into())
    }
}

/// `s` single-quoted for bash.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn slurm_script(grid: &Grid, args: &Args) -> Result<String, CliError> {
    let grid_path = std::fs::canonicalize(&grid.path)?;
    let out = std::path::absolute(&grid.out)?;
    let rfm = match &args.rfm {
        Some(p) => std::path::absolute(p)?,
        None => std::env::current_exe()?,
    };
    let logs = out.join("slurm");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let n = grid.runs.len();
    let stem = grid
        .path
        .file_stem()
        .map_or("sweep".into(), |s| s.to_string_lossy());
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# {n} runs of {}, one per array task. Submit with sbatch; afterwards:\n",
        grid_path.display()
    );
    s += &format!(
        "#   rfm sweep --grid {} --out {} --report\n",
        sh_quote(&grid_path.to_string_lossy()),
        sh_quote(&out.to_string_lossy())
    );
    s += &format!("#SBATCH --job-name=rfm-{}\n", file_safe(&stem));
    s += &format!("#SBATCH --array=0-{}\n", n - 1);
    s += &format!("#SBATCH --cpus-per-task={}\n", args.cpus);
    s += &format!("#SBATCH --time={}\n", args.time);
    if let Some(p) = &args.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    s += &format!("#SBATCH --output={}/%A_%a.log\n", logs.display());
    s += "set -euo pipefail\n";
    s += "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n";
    s += &format!(
        "{} sweep --grid {} --out {} --index \"$SLURM_ARRAY_TASK_ID\"\n",
        sh_quote(&rfm.to_string_lossy()),
        sh_quote(&grid_path.to_string_lossy()),
        sh_quote(&out.to_string_lossy())
    );
    Ok(s)
}

/// What the report reads from one finished run.
struct Outcome {
    /// RL: `eval_return` at each evaluation, the final evaluation at the last step; sampler: the
    /// loss every 100 updates.
    curve: Vec<(usize, f64)>,
    /// RL: the final eval return; sampler: sliced W2.
    last: f64,
    /// Sampler: MMD².
    mmd2: Option<f64>,
    /// Median `updates_per_sec` over the run's lines (RL).
    rate: Option<f64>,
    seconds: f64,
    steps: usize,
}

fn read_outcome(path: &Path, mode: Mode) -> Result<Outcome, String> {
    let err = |e: &dyn fmt::Display| format!("{}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| err(&e))?;
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| err(&e))?;
    let last = lines.last().ok_or_else(|| err(&"no lines"))?;
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let steps = last.get("steps").and_then(Value::as_u64).unwrap_or(0) as usize;
    let step = |l: &Value| l.get("step").and_then(Value::as_u64).map(|s| s as usize);
    let (curve_key, mut curve, final_value, mmd2) = match mode {
        Mode::Rl => ("eval_return", vec![], num(last, "final_eval_return"), None),
        Mode::Sampler => {
            let m = last.get("metrics").cloned().unwrap_or(Value::Null);
            ("loss", vec![], num(&m, "slicedW2"), num(&m, "mmd2"))
        }
    };
    for l in &lines {
        if let (Some(s), Some(v)) = (step(l), num(l, curve_key)) {
            curve.push((s, v));
        }
    }
    let last_value = final_value.ok_or_else(|| err(&"the last line has no final result"))?;
    if mode == Mode::Rl {
        curve.push((steps, last_value));
    }
    let mut rates: Vec<f64> = lines
        .iter()
        .filter_map(|l| num(l, "updates_per_sec"))
        .collect();
    rates.sort_by(f64::total_cmp);
    Ok(Outcome {
        curve,
        last: last_value,
        mmd2,
        rate: (!rates.is_empty()).then(|| rates[rates.len() / 2]),
        seconds: num(last, "seconds").unwrap_or(f64::NAN),
        steps,
    })
}

fn mean_std(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, std)
}

/// `mean ± std` (just the mean for one run), both with the decimals the mean's size asks for.
fn pm(xs: &[f64]) -> String {
    if xs.is_empty() {
        return "–".into();
    }
    let (m, s) = mean_std(xs);
    let d = match m.abs() {
        a if a >= 100.0 => 0,
        a if a >= 1.0 => 2,
        _ => 4,
    };
    match s {
        Some(s) => format!("{m:.d$} ± {s:.d$}"),
        None => format!("{m:.d$}"),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The Markdown table (returned) and `<out>/report.csv` of the finished runs, grouped by every
/// axis but `seed`.
fn report(grid: &Grid) -> Result<String, CliError> {
    let keep: Vec<usize> = (0..grid.axes.len())
        .filter(|&a| grid.axes[a] != "seed")
        .collect();
    // Groups in the order of their first run.
    let mut groups: Vec<(Vec<String>, Mode, Vec<Outcome>)> = Vec::new();
    let mut missing = 0;
    for run in &grid.runs {
        if !grid.done(run) {
            missing += 1;
            continue;
        }
        let key: Vec<String> = keep.iter().map(|&a| run.values[a].clone()).collect();
        let outcome = read_outcome(&grid.file(run, "jsonl"), run.spec.mode)?;
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.2.push(outcome),
            None => groups.push((key, run.spec.mode, vec![outcome])),
        }
    }
    if missing > 0 {
        eprintln!(
            "report: {} of {} runs finished",
            grid.runs.len() - missing,
            grid.runs.len()
        );
    }
    if groups.is_empty() {
        return Err(format!("no finished runs in {}", grid.out.display()).into());
    }
    let has = |m: Mode| groups.iter().any(|g| g.1 == m);
    // Intermediate evaluation steps of the RL runs (the final one has its own column).
    let eval_steps: BTreeSet<usize> = groups
        .iter()
        .filter(|g| g.1 == Mode::Rl)
        .flat_map(|g| &g.2)
        .flat_map(|o| o.curve.iter().map(|p| p.0).filter(|&s| s < o.steps))
        .collect();

    let mut head: Vec<String> = keep.iter().map(|&a| grid.axes[a].clone()).collect();
    head.push("n".into());
    if has(Mode::Rl) {
        head.push("final eval return".into());
        head.extend(eval_steps.iter().map(|s| format!("eval @{s}")));
    }
    if has(Mode::Sampler) {
        head.extend(["sliced W2".into(), "MMD²".into()]);
    }
    head.extend(["upd/s".into(), "seconds".into()]);
    let mut md = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));

    let mut csv = String::new();
    let csv_head: Vec<String> = keep.iter().map(|&a| csv_field(&grid.axes[a])).collect();
    csv += &format!(
        "{}metric,step,n,mean,std\n",
        csv_head.join(",") + if keep.is_empty() { "" } else { "," }
    );
    for (key, mode, runs) in &groups {
        let mut row: Vec<String> = key.iter().map(|v| format!("`{v}`")).collect();
        row.push(runs.len().to_string());
        let lasts: Vec<f64> = runs.iter().map(|o| o.last).collect();
        let at = |s: usize| -> Vec<f64> {
            runs.iter()
                .filter_map(|o| o.curve.iter().find(|p| p.0 == s).map(|p| p.1))
                .collect()
        };
        if has(Mode::Rl) {
            if *mode == Mode::Rl {
                row.push(pm(&lasts));
                // Intermediate evaluations only: a shorter run's final one is in "final".
                let before_end = |s: usize| -> Vec<f64> {
                    let runs = runs.iter().filter(|o| s < o.steps);
                    runs.filter_map(|o| o.curve.iter().find(|p| p.0 == s).map(|p| p.1))
                        .collect()
                };
                row.extend(eval_steps.iter().map(|&s| pm(&before_end(s))));
            } else {
                row.extend(std::iter::repeat_n("–".to_string(), 1 + eval_steps.len()));
            }
        }
        if has(Mode::Sampler) {
            if *mode == Mode::Sampler {
                let mmd: Vec<f64> = runs.iter().filter_map(|o| o.mmd2).collect();
                row.extend([pm(&lasts), pm(&mmd)]);
            } else {
                row.extend(["–".into(), "–".into()]);
            }
        }
        let rates: Vec<f64> = runs.iter().filter_map(|o| o.rate).collect();
        let seconds: Vec<f64> = runs.iter().map(|o| o.seconds).collect();
        row.push(if rates.is_empty() {
            "–".into()
        } else {
            format!("{:.1}", mean_std(&rates).0)
        });
        row.push(format!("{:.1}", mean_std(&seconds).0));
        md += &format!("| {} |\n", row.join(" | "));

        let prefix: String = key.iter().map(|v| csv_field(v) + ",").collect();
        let steps: BTreeSet<usize> = runs
            .iter()
            .flat_map(|o| o.curve.iter().map(|p| p.0))
            .collect();
        let mut line = |metric: &str, step: usize, xs: &[f64]| {
            let (m, s) = mean_std(xs);
            let s = s.map_or(String::new(), |s| s.to_string());
            csv += &format!("{prefix}{metric},{step},{},{m},{s}\n", xs.len());
        };
        let curve_metric = match mode {
            Mode::Rl => "eval_return",
            Mode::Sampler => "loss",
        };
        for s in steps {
            line(curve_metric, s, &at(s));
        }
        if *mode == Mode::Sampler {
            line("sliced_w2", runs[0].steps, &lasts);
        }
    }
    let path = grid.out.join("report.csv");
    std::fs::write(&path, csv).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(md)
}

pub fn run(args: Args) -> Result<(), CliError> {
    let grid = Grid::load(&args.grid, args.out.as_deref())?;
    if args.list {
        let mut stdout = std::io::stdout().lock();
        for run in &grid.runs {
            // A closed pipe (`| head`) ends the listing.
            if writeln!(stdout, "{}", serde_json::to_string(run)?).is_err() {
                break;
            }
        }
        return Ok(());
    }
    if let Some(Scheduler::Slurm) = args.emit {
        print!("{}", slurm_script(&grid, &args)?);
        return Ok(());
    }
    grid.check_results_match()?;
    if args.report {
        print!("{}", report(&grid)?);
        return Ok(());
    }
    std::fs::create_dir_all(&grid.out).map_err(|e| format!("{}: {e}", grid.out.display()))?;
    let Some(i) = args.index else {
        return run_all(&grid, args.jobs as usize);
    };
    let run = grid.runs.get(i).ok_or_else(|| {
        format!(
            "--index {i}: the grid has {} runs (0..={})",
            grid.runs.len(),
            grid.runs.len() - 1
        )
    })?;
    if grid.done(run) {
        eprintln!("sweep: run {i} ({}) already finished", run.name);
        return Ok(());
    }
    // A Slurm task sets the thread count (the job script exports it); by hand it is one, as
    // with `--jobs`, so the results match.
    let threads = std::env::var_os("RAYON_NUM_THREADS")
        .is_none()
        .then_some("1");
    let sec = execute(&grid, run, threads).map_err(|e| format!("run {i} ({}): {e}", run.name))?;
    eprintln!("sweep: run {i} ({}) done in {sec:.1} s", run.name);
    Ok(())
}
