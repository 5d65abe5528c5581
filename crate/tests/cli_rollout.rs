//! `rfm rollout` end to end: one good and two bad invocations of the built binary.

use std::io::Write;
use std::process::{Command, Stdio};

fn rfm(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rfm");
    // A run that rejects its arguments may exit before reading stdin: a broken pipe is then
    // expected, and the exit status and stderr are what the test checks.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing rfm's stdin: {e}"
        );
    }
    child.wait_with_output().expect("wait for rfm")
}

/// Gymnasium's float32 observations, written as the float64 values NumPy prints for them.
fn f32s(xs: &[f64]) -> Vec<f32> {
    xs.iter().map(|&x| x as f32).collect()
}

#[test]
fn rollout_prints_one_json_line_per_step() {
    let dir = std::env::temp_dir().join(format!("rfm-cli-rollout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("actions.json");
    std::fs::write(&file, "[1.0, 1.0, [1.0]]").unwrap();
    let out = rfm(
        &[
            "rollout",
            "--env",
            "mountain-car",
            "--init-state",
            "[-0.5, 0.0]",
            "--actions",
            file.to_str().unwrap(),
        ],
        "",
    );
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["step"], i + 1);
        assert_eq!(l["reward"], -0.1);
        assert_eq!(l["terminated"], false);
        assert_eq!(l["truncated"], false);
    }
    // Gymnasium MountainCarContinuous-v0, same state and actions (float64), first two steps.
    let obs = |i: usize| -> Vec<f32> { serde_json::from_value(lines[i]["obs"].clone()).unwrap() };
    assert_eq!(obs(0), f32s(&[-0.4986768364906311, 0.0013231569901108742]));
    assert_eq!(obs(1), f32s(&[-0.4960404336452484, 0.002636416582390666]));
}

#[test]
fn rollout_reads_stdin_and_rejects_a_wrong_action_dimension() {
    let out = rfm(
        &[
            "rollout",
            "--env",
            "multigoal",
            "--init-state",
            "[0, 0]",
            "--actions",
            "-",
        ],
        "[[0.5, 0.5], [1.0]]",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing printed before the error");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "error: action 1: has 1 values, expected an array of 2 numbers (act_dim = 2)"
    );
}

#[test]
fn rollout_rejects_an_unknown_env() {
    let out = rfm(
        &[
            "rollout",
            "--env",
            "cartpole",
            "--init-state",
            "[0, 0]",
            "--actions",
            "-",
        ],
        "[]",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(
        stderr.contains("unknown env \"cartpole\" (valid: pendulum, mountain-car, multigoal)"),
        "{stderr}"
    );
}
