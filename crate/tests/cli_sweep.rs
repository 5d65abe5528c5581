#![cfg(not(target_arch = "wasm32"))]
//! End-to-end checks of `rfm sweep` on a tiny grid (2 estimators × 2 seeds on pendulum, 300 env
//! steps): the run list and its order, one-line errors for a bad axis value, `--jobs` writing one
//! JSONL per run and resuming, the Slurm script's task for one index recreating that run exactly,
//! and the report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rfm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .env_remove("RAYON_NUM_THREADS")
        .env_remove("SLURM_CPUS_PER_TASK")
        .output()
        .expect("run rfm")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rfm-cli-sweep-{}-{name}", std::process::id()))
}

/// A grid file of the tiny runs with `axes` (JSON) and its output directory.
fn tiny_grid(name: &str, axes: &str) -> (PathBuf, PathBuf) {
    let dir = tmp(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let grid = dir.join("grid.json");
    let out = dir.join("out");
    std::fs::write(
        &grid,
        format!(
            r#"{{"base": {{"env": "pendulum", "hidden": 16, "embWidth": 8, "batch": 16, "k": 8,
                          "candidates": 4, "odeSteps": 3, "warmup": 150, "evalEpisodes": 1}},
                "steps": 300, "evalEvery": 100, "axes": {axes}, "out": {}}}"#,
            Value::from(out.to_str().unwrap())
        ),
    )
    .unwrap();
    (grid, out)
}

const AXES: &str = r#"{"estimator": ["rfm", "noise"], "seed": [0, 1]}"#;

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// A run's JSON lines without the timing fields.
fn untimed(path: &Path) -> Vec<Value> {
    let mut v = json_lines(&std::fs::read_to_string(path).unwrap());
    for l in &mut v {
        let o = l.as_object_mut().unwrap();
        o.remove("updates_per_sec");
        o.remove("seconds");
    }
    v
}

fn assert_one_line_error(out: &Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    assert!(err.starts_with("error: ") && !err.contains('\n'), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn list_expands_the_product_last_axis_fastest() {
    let (grid, _) = tiny_grid("list", AXES);
    let v = json_lines(&ok(&rfm(&[
        "sweep",
        "--grid",
        grid.to_str().unwrap(),
        "--list",
    ])));
    let names: Vec<&str> = v.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "estimator=rfm,seed=0",
            "estimator=rfm,seed=1",
            "estimator=noise,seed=0",
            "estimator=noise,seed=1"
        ]
    );
    for (i, l) in v.iter().enumerate() {
        assert_eq!(l["index"], i);
        // A full spec: the base, the shorthands and the run's axis values.
        assert_eq!(l["spec"]["env"], "pendulum");
        assert_eq!(l["spec"]["hidden"], 16);
        assert_eq!(l["spec"]["steps"], 300);
        assert_eq!(l["spec"]["evalEvery"], 100);
        assert_eq!(l["spec"]["seed"], i % 2);
        assert_eq!(l["spec"]["estimator"], ["rfm", "noise"][i / 2]);
        assert_eq!(l["spec"]["replay"], 50_000);
    }
}

#[test]
fn bad_grids_are_one_line_errors_before_anything_runs() {
    let (grid, out) = tiny_grid(
        "bad-value",
        r#"{"estimator": ["rfm", "nosie"], "seed": [0]}"#,
    );
    let r = rfm(&["sweep", "--grid", grid.to_str().unwrap(), "--jobs", "2"]);
    assert_one_line_error(&r, &["axis estimator", "nosie"]);
    assert!(!out.exists(), "nothing ran");

    let (grid, _) = tiny_grid("bad-range", r#"{"k": [8, 0]}"#);
    let r = rfm(&["sweep", "--grid", grid.to_str().unwrap(), "--list"]);
    assert_one_line_error(&r, &["run 1 (k=0)", "k = 0"]);

    let (grid, _) = tiny_grid("bad-field", r#"{"kk": [8]}"#);
    let r = rfm(&["sweep", "--grid", grid.to_str().unwrap(), "--list"]);
    assert_one_line_error(&r, &["axis kk", "unknown field"]);
}

#[test]
fn a_failed_run_leaves_its_stderr_and_fails_the_sweep_at_the_end() {
    // λ = 1e-6 with the gradient estimator and large learning rates blows the actor up just
    // after the warm-up (the trainer's fault guard stops the run); λ = 0.1 trains.
    let (grid, out) = tiny_grid(
        "fail",
        r#"{"lambda": [1e-6, 0.1], "estimator": ["grad"], "actorLr": [0.1], "criticLr": [0.1]}"#,
    );
    let r = rfm(&["sweep", "--grid", grid.to_str().unwrap(), "--jobs", "2"]);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let err = String::from_utf8_lossy(&r.stderr);
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.starts_with("error: 1 of 2 runs failed (lambda=1e-6,"),
        "{err}"
    );
    assert!(err.contains("FAILED lambda=1e-6"), "{err}");
    let failed = out.join("lambda=1e-6,estimator=grad,actorLr=0.1,criticLr=0.1.failed");
    let failed = std::fs::read_to_string(failed).unwrap();
    assert!(failed.starts_with("exit status: 1\nerror: "), "{failed}");
    assert!(
        out.join("lambda=0.1,estimator=grad,actorLr=0.1,criticLr=0.1.jsonl")
            .exists()
    );
    let _ = std::fs::remove_dir_all(grid.parent().unwrap());
}

#[test]
fn jobs_resume_the_slurm_task_recreates_its_run_and_the_report_groups_seeds() {
    let (grid, out) = tiny_grid("run", AXES);
    let g = grid.to_str().unwrap();
    let first = rfm(&["sweep", "--grid", g, "--jobs", "2"]);
    ok(&first);
    let names = [
        "estimator=rfm,seed=0",
        "estimator=rfm,seed=1",
        "estimator=noise,seed=0",
        "estimator=noise,seed=1",
    ];
    for n in names {
        let lines = untimed(&out.join(format!("{n}.jsonl")));
        assert_eq!(lines.last().unwrap()["steps"], 300, "{n}: {lines:?}");
        assert!(!out.join(format!("{n}.jsonl.partial")).exists());
    }
    let progress = String::from_utf8_lossy(&first.stderr);
    assert!(progress.contains("[4/4] done"), "{progress}");

    // Resumable: everything is finished, nothing runs again.
    let again = rfm(&["sweep", "--grid", g, "--jobs", "2"]);
    ok(&again);
    let progress = String::from_utf8_lossy(&again.stderr);
    assert!(progress.contains("4 finished, 0 to run"), "{progress}");
    assert!(!progress.contains("] done"), "{progress}");

    // The Slurm job script: one array task per run, each running its index.
    let script = ok(&rfm(&["sweep", "--grid", g, "--emit", "slurm"]));
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    assert!(script.contains("#SBATCH --array=0-3\n"), "{script}");
    assert!(
        script.contains(r#"--index "$SLURM_ARRAY_TASK_ID""#),
        "{script}"
    );
    // Task 1 by hand: it recreates exactly run 1's results.
    let run1 = out.join(format!("{}.jsonl", names[1]));
    let before = untimed(&run1);
    std::fs::remove_file(&run1).unwrap();
    let task = out.join("task1.sh");
    std::fs::write(&task, script.replace("$SLURM_ARRAY_TASK_ID", "1")).unwrap();
    let by_hand = Command::new("bash")
        .arg(&task)
        .env_remove("RAYON_NUM_THREADS")
        .env_remove("SLURM_CPUS_PER_TASK")
        .output()
        .unwrap();
    ok(&by_hand);
    assert_eq!(untimed(&run1), before);

    // The report: one row per estimator, two seeds each; the CSV has one row per group and step.
    let table = ok(&rfm(&["sweep", "--grid", g, "--report"]));
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    let head: Vec<&str> = table.lines().next().unwrap().split(" | ").collect();
    assert!(head[0].contains("estimator") && head[1] == "n", "{table}");
    for (row, est) in rows.iter().zip(["rfm", "noise"]) {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells[0], format!("| `{est}`"), "{table}");
        assert_eq!(cells[1], "2", "{table}");
        assert!(cells[2].contains(" ± "), "{table}");
    }
    assert!(
        table.contains("eval @100") && table.contains("eval @200"),
        "{table}"
    );
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let csv: Vec<&str> = csv.lines().collect();
    assert_eq!(csv[0], "estimator,metric,step,n,mean,std");
    // Evaluations at 100, 200 and the final one at 300, per estimator.
    assert_eq!(csv.len(), 1 + 2 * 3, "{csv:?}");
    assert!(csv[3].starts_with("rfm,eval_return,300,2,"), "{csv:?}");
    let _ = std::fs::remove_dir_all(grid.parent().unwrap());
}
