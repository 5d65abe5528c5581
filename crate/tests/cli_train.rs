#![cfg(not(target_arch = "wasm32"))]
//! End-to-end checks of `rfm train` / `rfm eval`: JSON lines, the final line, determinism,
//! save → eval, and one-line errors with exit code 1 on bad input.

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

/// A tiny, fast config for the smoke runs.
fn tiny_config() -> PathBuf {
    let p = tmp("tiny.json");
    std::fs::write(
        &p,
        r#"{"criticHidden": 16, "actorHidden": 16, "embWidth": 8, "batchSize": 16,
            "posteriorSamples": 8, "candidates": 4, "odeSteps": 3, "warmupSteps": 150}"#,
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
    let cfg = tiny_config();
    let dir = tmp("saved");
    let args = [
        "train",
        "--env",
        "pendulum",
        "--algo",
        "rfm",
        "--steps",
        "400",
        "--seed",
        "7",
        "--config",
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
    assert!(last["final_eval_return"].as_f64().unwrap() < 0.0, "{last}");
    assert_eq!(last["updates"], 251);

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
        (e["env"].as_str(), e["algo"].as_str(), e["steps"].as_u64()),
        (Some("pendulum"), Some("rfm"), Some(400))
    );
    assert_eq!(
        e["eval_return"], last["final_eval_return"],
        "same weights, same eval episodes"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sac_smoke() {
    let cfg = tiny_config();
    let out = rfm(&[
        "train",
        "--env",
        "mountain-car",
        "--algo",
        "sac",
        "--steps",
        "200",
        "--config",
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
        &rfm(&[&base[..], &["--env", "pendulum", "--algo", "ppo"]].concat()),
        "ppo",
    );
    assert_one_line_error(
        &rfm(&[&base[..], &["--env", "pendulum", "--preset", "huge"]].concat()),
        "huge",
    );
    let bad = tmp("bad-range.json");
    std::fs::write(&bad, r#"{"gamma": 1.5}"#).unwrap();
    let out = rfm(&[
        &base[..],
        &["--env", "pendulum", "--config", bad.to_str().unwrap()],
    ]
    .concat());
    assert_one_line_error(&out, "gamma");
    let broken = tmp("broken.json");
    std::fs::write(&broken, "{\"gamma\": ").unwrap();
    let out = rfm(&[
        &base[..],
        &["--env", "pendulum", "--config", broken.to_str().unwrap()],
    ]
    .concat());
    assert_one_line_error(&out, "config file");
    let out = rfm(&[
        &base[..],
        &["--env", "pendulum", "--config", "/nonexistent/x.json"],
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
    assert_one_line_error(&rfm(&["eval", "--load", "/nonexistent/run"]), "config.json");
}
