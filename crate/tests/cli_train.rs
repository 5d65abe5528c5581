#![cfg(not(target_arch = "wasm32"))]
//! End-to-end checks of `rfm train` / `rfm eval`: JSON lines, the final line, determinism,
//! save → eval, the page's share link run as-is, and one-line errors with exit code 1 on bad
//! input.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn rfm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .output()
        .expect("run rfm")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rfm-cli-train-{}-{name}", std::process::id()))
}

/// A tiny, fast spec for the smoke runs (the other fields: RL defaults).
fn tiny_spec(name: &str, extra: &str) -> PathBuf {
    let p = tmp(name);
    std::fs::write(
        &p,
        format!(
            r#"{{"hidden": 16, "embWidth": 8, "batch": 16, "k": 8, "candidates": 4,
                "odeSteps": 3, "warmup": 150 {extra}}}"#
        ),
    )
    .unwrap();
    p
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The lines without timing fields.
fn untimed(mut v: Vec<Value>) -> Vec<Value> {
    for l in &mut v {
        let o = l.as_object_mut().unwrap();
        o.remove("updates_per_sec");
        o.remove("seconds");
    }
    v
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    assert!(
        err.starts_with("error: ") && !err.contains('\n') && err.contains(needle),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn train_prints_json_lines_and_is_deterministic() {
    let cfg = tiny_spec("tiny.json", "");
    let dir = tmp("saved.json");
    let args = [
        "train",
        "--env",
        "pendulum",
        "--agent",
        "rfm",
        "--estimator",
        "rfm",
        "--steps",
        "400",
        "--seed",
        "7",
        "--spec",
        cfg.to_str().unwrap(),
        "--eval-every",
        "300",
        "--eval-episodes",
        "1",
    ];
    let out = rfm(&[&args[..], &["--save", dir.to_str().unwrap()]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = lines(&out);
    // Two 200-step episodes, one evaluation at step 300, then the final line.
    let episodes: Vec<&Value> = v
        .iter()
        .filter(|l| l.get("episode_return").is_some())
        .collect();
    assert_eq!(episodes.len(), 2, "{v:?}");
    assert_eq!(episodes[1]["step"], 400);
    for k in ["critic_loss", "actor_loss", "ess", "updates_per_sec"] {
        assert!(
            episodes[1][k].as_f64().unwrap().is_finite(),
            "{k}: {}",
            episodes[1]
        );
    }
    assert!(
        v.iter()
            .any(|l| l["step"] == 300 && l["eval_return"].is_number()),
        "{v:?}"
    );
    let last = v.last().unwrap();
    // Pendulum-v1 pays at most 0 and at least -(π² + 0.1·8² + 0.001·2²) ≈ -16.27 a step: one
    // 200-step episode's mean return lies in [-3254, 0].
    let ret = last["final_eval_return"].as_f64().unwrap();
    assert!((-3254.0..=0.0).contains(&ret), "{last}");
    assert_eq!(last["steps"], 400);

    let again = rfm(&args);
    assert_eq!(untimed(v.clone()), untimed(lines(&again)));

    let ev = rfm(&["eval", "--load", dir.to_str().unwrap(), "--episodes", "1"]);
    assert!(
        ev.status.success(),
        "{}",
        String::from_utf8_lossy(&ev.stderr)
    );
    let e = &lines(&ev)[0];
    assert_eq!(
        (e["env"].as_str(), e["agent"].as_str(), e["steps"].as_u64()),
        (Some("pendulum"), Some("rfm"), Some(400))
    );
    assert_eq!(
        e["eval_return"], last["final_eval_return"],
        "same weights, same eval episodes"
    );

    // One episode from each given start state (upright at rest, hanging at rest), repeatable;
    // a state of the wrong length is a one-line error naming it.
    let starts = tmp("starts.json");
    std::fs::write(&starts, "[[0.0, 0.0], [3.14159, 0.0]]").unwrap();
    let from = |path: &PathBuf| {
        rfm(&[
            "eval",
            "--load",
            dir.to_str().unwrap(),
            "--init-states",
            path.to_str().unwrap(),
        ])
    };
    let a = lines(&from(&starts))[0].clone();
    assert_eq!(a["episodes"], 2, "{a}");
    let returns: Vec<f64> = a["returns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_f64().unwrap())
        .collect();
    assert!(returns.iter().all(|r| (-3254.0..=0.0).contains(r)), "{a}");
    assert_eq!(
        lines(&from(&starts))[0],
        a,
        "the same starts give the same returns"
    );
    // `rfm train --eval-init-states`: the same run evaluates on those starts, periodically and
    // at the end (same weights as the saved run, so the same final returns as `rfm eval`).
    let on_starts = rfm(&[&args[..], &["--eval-init-states", starts.to_str().unwrap()]].concat());
    let t = lines(&on_starts);
    let periodic = t
        .iter()
        .find(|l| l["step"] == 300 && l["eval_return"].is_number());
    assert!(periodic.is_some(), "{t:?}");
    assert_eq!(
        t.last().unwrap()["final_eval_return"],
        a["eval_return"],
        "{t:?}"
    );
    std::fs::write(&starts, "[[0.0]]").unwrap();
    assert_one_line_error(&from(&starts), "start state 0");
    let bad = rfm(&[&args[..], &["--eval-init-states", starts.to_str().unwrap()]].concat());
    assert_one_line_error(&bad, "start state 0");
    std::fs::write(&starts, "[]").unwrap();
    assert_one_line_error(&from(&starts), "empty");
    std::fs::remove_file(&starts).ok();
    std::fs::remove_file(&dir).ok();
}

#[test]
fn a_share_link_runs_the_pages_experiment() {
    // The page's sampler lesson as a share link: `--link` runs that spec, nothing else.
    let spec = tiny_spec(
        "link.json",
        r#", "mode": "sampler", "lambda": 1, "target": "two-moons""#,
    );
    let printed = rfm(&[
        "train",
        "--spec",
        spec.to_str().unwrap(),
        "--steps",
        "30",
        "--print-spec",
    ]);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let full: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(
        (full["mode"].as_str(), full["target"].as_str()),
        (Some("sampler"), Some("two-moons"))
    );
    let link = rfm_playground::spec::encode_share(
        &rfm_playground::spec::ExperimentSpec::from_json(&full.to_string()).unwrap(),
    );
    let url = format!("http://127.0.0.1:8080/#{link}");
    let out = rfm(&["train", "--link", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = lines(&out);
    let last = v.last().unwrap();
    assert_eq!(last["steps"], 30, "{last}");
    assert!(
        last["metrics"]["slicedW2"].as_f64().unwrap().is_finite(),
        "{last}"
    );
    // Printing the link's spec gives back the same spec.
    let again = rfm(&["train", "--link", &link, "--print-spec"]);
    let back: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(back, full);
}

#[test]
fn a_sharp_target_runs_on_at_a_collapsed_ess() {
    // λ = 0.02 (the playground named spec) on multigoal: the ESS of K = 16 sits near 1, which
    // the page pauses to explain; a CLI run reports it and finishes.
    let out = rfm(&[
        "train",
        "--env",
        "multigoal",
        "--steps",
        "600",
        "--set",
        "warmup=150",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = lines(&out);
    assert_eq!(v.last().unwrap()["steps"], 600, "{v:?}");
}

#[test]
fn sac_smoke() {
    let cfg = tiny_spec("tiny-sac.json", "");
    let out = rfm(&[
        "train",
        "--env",
        "mountain-car",
        "--agent",
        "sac",
        "--steps",
        "200",
        "--spec",
        cfg.to_str().unwrap(),
        "--eval-episodes",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = lines(&out);
    assert!(v.last().unwrap()["final_eval_return"].is_number(), "{v:?}");
}

#[test]
fn bad_input_is_a_one_line_error() {
    let base = ["train", "--steps", "10"];
    assert_one_line_error(
        &rfm(&[&base[..], &["--env", "cartpole"]].concat()),
        "cartpole",
    );
    assert_one_line_error(
        &rfm(&[&base[..], &["--env", "pendulum", "--agent", "ppo"]].concat()),
        "ppo",
    );
    assert_one_line_error(
        &rfm(&[&base[..], &["--env", "pendulum", "--preset", "huge"]].concat()),
        "huge",
    );
    let bad = tmp("bad-range.json");
    std::fs::write(&bad, r#"{"lambda": 1e9}"#).unwrap();
    let out = rfm(&[
        &base[..],
        &["--env", "pendulum", "--spec", bad.to_str().unwrap()],
    ]
    .concat());
    assert_one_line_error(&out, "lambda = 1000000000 is out of range");
    assert_one_line_error(
        &rfm(&[&base[..], &["--env", "pendulum", "--set", "k=0"]].concat()),
        "k = 0",
    );
    assert_one_line_error(&rfm(&["train", "--link", "v1.garbage.00000000"]), "link");
    assert_one_line_error(&rfm(&["bench", "--backend", "tpu"]), "tpu");
    // The default build has no wgpu runtime: `--backend webgpu` says how to get one.
    assert_one_line_error(
        &rfm(&["bench", "--backend", "webgpu", "--seconds", "0"]),
        "--features webgpu",
    );
    assert_one_line_error(&rfm(&["train", "--env", "pendulum"]), "--steps");
    let broken = tmp("broken.json");
    std::fs::write(&broken, "{\"gamma\": ").unwrap();
    let out = rfm(&[
        &base[..],
        &["--env", "pendulum", "--spec", broken.to_str().unwrap()],
    ]
    .concat());
    assert_one_line_error(&out, "spec file");
    let out = rfm(&[
        &base[..],
        &["--env", "pendulum", "--spec", "/nonexistent/x.json"],
    ]
    .concat());
    assert_one_line_error(&out, "x.json");
    assert_one_line_error(
        &rfm(&[
            &base[..],
            &["--env", "multigoal", "--eval-policy", "softmax"],
        ]
        .concat()),
        "softmax",
    );
    assert_one_line_error(
        &rfm(&["eval", "--load", "/nonexistent/run"]),
        "/nonexistent/run",
    );
    let not_ck = tmp("not-a-checkpoint.json");
    std::fs::write(
        &not_ck,
        r#"{"format": "rfm-playground-weights", "version": 1}"#,
    )
    .unwrap();
    assert_one_line_error(
        &rfm(&["eval", "--load", not_ck.to_str().unwrap()]),
        "older version",
    );
}
