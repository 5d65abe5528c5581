//! End-to-end smoke test of `rfm sample`: a short seeded run writes the CSV and one JSON line,
//! and bad input is one `error:` line with exit code 1.

use std::process::Command;

fn rfm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
}

#[test]
fn short_run_writes_csv_and_json() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_sample_smoke.csv");
    let _ = std::fs::remove_file(&out);
    let run = rfm()
        .args([
            "sample",
            "--target",
            "gmm8",
            "--estimator",
            "rfm",
            "--train-steps",
            "20",
            "--batch",
            "64",
            "--seed",
            "3",
            "--n",
            "57",
            "--eval-n",
            "200",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stderr: {stderr}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "x,y");
    assert_eq!(lines.len(), 1 + 57);
    for l in &lines[1..] {
        let v: Vec<f32> = l.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|x| x.is_finite()), "{l}");
    }
    let stdout = String::from_utf8_lossy(&run.stdout);
    let json_lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(json_lines.len(), 1, "stdout: {stdout}");
    let v: serde_json::Value = serde_json::from_str(json_lines[0]).unwrap();
    assert_eq!(v["steps"], 20);
    assert!(v["finalLoss"].as_f64().unwrap().is_finite());
    assert!(v["metrics"]["slicedW2"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["metrics"]["modeMass"].as_array().unwrap().len(), 8);
    assert_eq!(v["config"]["estimator"], "rfm");
}

#[test]
fn bad_input_is_one_error_line() {
    let cases: [&[&str]; 5] = [
        &["--target", "gmm9"],
        &["--estimator", "bogus"],
        &["--k", "0"],
        &["--lambda", "-1"],
        &["--lr", "NaN"],
    ];
    for extra in cases {
        let run = rfm()
            .args(["sample", "--train-steps", "1", "--n", "1"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{extra:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
