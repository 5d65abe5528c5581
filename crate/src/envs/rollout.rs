//! Replay a fixed list of native actions from a given internal state, writing one JSON line per
//! step: the engine behind `rfm rollout`, and a way to compare against other implementations.
//!
//! Input:
//! - `init_state_json`: a JSON array of the env's internal state (`EnvSpec::state_names`):
//!   pendulum `[θ, θdot]`, mountain-car `[position, velocity]`, multigoal `[x, y]`.
//! - `actions_json`: a JSON array of actions in **native** units. Each action is an array of
//!   `act_dim` numbers; for 1-D envs a bare number is accepted too (`[0.5, -1, 2]`).
//!
//! Output, one line per step (`step` is 1-based, `obs` is the observation after the step):
//!
//! ```text
//! {"step":1,"obs":[-0.044984814,0.9989877,0.9],"reward":-2.4684011002723394,"terminated":false,"truncated":false}
//! ```
//!
//! The replay stops after the last action, or after the first step that reports `terminated`
//! or `truncated`. Malformed input is rejected before the first line is written.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use super::{EnvError, EnvName, make_env};

/// One output line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    step: usize,
    obs: &'a [f32],
    reward: f64,
    terminated: bool,
    truncated: bool,
}

/// Set `env` to the state in `init_state_json`, replay `actions_json` (native units) and write
/// one JSON object per step to `out`. See the module docs for the formats.
pub fn rollout(
    env: EnvName,
    init_state_json: &str,
    actions_json: &str,
    out: &mut impl Write,
) -> Result<(), EnvError> {
    let mut e = make_env(env, 0);
    let state = parse_state(init_state_json)?;
    e.set_state(&state)?;
    let actions = parse_actions(actions_json, e.spec().act_dim)?;

    for (i, action) in actions.iter().enumerate() {
        let step = i + 1;
        let r = e.step_native(action);
        if !r.reward.is_finite() || r.obs.iter().any(|x| !x.is_finite()) {
            return Err(EnvError::NonFinite {
                what: format!("the result of step {step} (state too large?)"),
            });
        }
        let line = Line {
            step,
            obs: &r.obs,
            reward: r.reward,
            terminated: r.terminated,
            truncated: r.truncated,
        };
        serde_json::to_writer(&mut *out, &line).map_err(|e| EnvError::Io(e.to_string()))?;
        writeln!(out).map_err(|e| EnvError::Io(e.to_string()))?;
        if r.terminated || r.truncated {
            break;
        }
    }
    out.flush().map_err(|e| EnvError::Io(e.to_string()))
}

fn parse_json(what: &str, text: &str) -> Result<Value, EnvError> {
    serde_json::from_str(text).map_err(|e| EnvError::Json {
        what: what.to_string(),
        message: format!("not valid JSON ({e})"),
    })
}

/// A finite `f64` from a JSON value, or a message saying what it was instead.
fn number(v: &Value) -> Result<f64, String> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        Some(_) => Err("is not a finite number".to_string()),
        None => Err(format!("expected a number, got {}", kind(v))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_state(text: &str) -> Result<Vec<f64>, EnvError> {
    let what = "init state";
    let Value::Array(items) = parse_json(what, text)? else {
        return Err(EnvError::Json {
            what: what.to_string(),
            message: "expected a JSON array of numbers".to_string(),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            number(v).map_err(|message| EnvError::Json {
                what: format!("init state[{i}]"),
                message,
            })
        })
        .collect()
}

fn parse_actions(text: &str, act_dim: usize) -> Result<Vec<Vec<f64>>, EnvError> {
    let what = "actions";
    let Value::Array(items) = parse_json(what, text)? else {
        return Err(EnvError::Json {
            what: what.to_string(),
            message: "expected a JSON array of actions".to_string(),
        });
    };
    let shape = if act_dim == 1 {
        "a number or an array of 1 number".to_string()
    } else {
        format!("an array of {act_dim} numbers")
    };
    items
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let err = |message: String| EnvError::Action { index, message };
            let values = match v {
                Value::Number(_) if act_dim == 1 => vec![v],
                Value::Array(xs) if xs.len() == act_dim => xs.iter().collect(),
                Value::Array(xs) => {
                    return Err(err(format!(
                        "has {} values, expected {shape} (act_dim = {act_dim})",
                        xs.len()
                    )));
                }
                _ => return Err(err(format!("expected {shape}, got {}", kind(v)))),
            };
            values
                .into_iter()
                .map(|x| number(x).map_err(&err))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gymnasium's float32 observations, written as the float64 values NumPy prints for them.
    fn f32s(xs: &[f64]) -> Vec<f32> {
        xs.iter().map(|&x| x as f32).collect()
    }

    fn run(env: EnvName, state: &str, actions: &str) -> Result<Vec<Value>, EnvError> {
        let mut out = Vec::new();
        rollout(env, state, actions, &mut out)?;
        let text = String::from_utf8(out).unwrap();
        Ok(text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect())
    }

    #[test]
    fn pendulum_lines_parse_back() {
        let lines = run(
            EnvName::Pendulum,
            "[1.5707963267948966, 0]",
            "[1, [0.5], -2]",
        )
        .unwrap();
        assert_eq!(lines.len(), 3);
        for (i, l) in lines.iter().enumerate() {
            let keys: Vec<&str> = l.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            assert_eq!(keys.len(), 5);
            for k in ["step", "obs", "reward", "terminated", "truncated"] {
                assert!(keys.contains(&k), "missing {k}");
            }
            assert_eq!(l["step"], i + 1);
            assert_eq!(l["obs"].as_array().unwrap().len(), 3);
            assert_eq!(l["terminated"], false);
            assert_eq!(l["truncated"], false);
        }
        // Gymnasium: −2.4684011002723394 and obs [−0.04498481…, 0.99898767…, 0.9] for step 1.
        assert_eq!(lines[0]["reward"], -2.4684011002723394);
        let obs: Vec<f32> = serde_json::from_value(lines[0]["obs"].clone()).unwrap();
        assert_eq!(
            obs,
            f32s(&[
                -0.044984813779592514,
                0.9989876747131348,
                0.8999999761581421
            ])
        );
    }

    #[test]
    fn stops_at_termination() {
        // One step from (0, 3.5) with (0, 1) ends inside the (0, 5) goal.
        let lines = run(EnvName::Multigoal, "[0, 3.5]", "[[0, 1], [0, 1], [0, 1]]").unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["terminated"], true);
        assert_eq!(lines[0]["reward"], -(30.0 + 0.25) + 10.0);
    }

    #[test]
    fn stops_at_truncation() {
        let actions = serde_json::to_string(&vec![0.0; 250]).unwrap();
        let lines = run(EnvName::Pendulum, "[0, 0]", &actions).unwrap();
        assert_eq!(lines.len(), 200);
        assert_eq!(lines[199]["truncated"], true);
        assert_eq!(lines[199]["step"], 200);
    }

    #[test]
    fn empty_actions_write_nothing() {
        assert!(
            run(EnvName::MountainCar, "[-0.5, 0]", "[]")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_inputs_are_errors_with_messages() {
        let err = |env, s: &str, a: &str| run(env, s, a).unwrap_err().to_string();
        use EnvName::*;
        assert_eq!(
            err(Pendulum, "[0, ", "[]"),
            "init state: not valid JSON (EOF while parsing a value at line 1 column 4)"
        );
        assert_eq!(
            err(Pendulum, "{}", "[]"),
            "init state: expected a JSON array of numbers"
        );
        assert_eq!(
            err(Pendulum, "[0, \"a\"]", "[]"),
            "init state[1]: expected a number, got a string"
        );
        assert_eq!(
            err(Pendulum, "[0, 0, 0]", "[]"),
            "pendulum: state has 3 values, expected 2 ([theta, thetaDot])"
        );
        assert_eq!(
            err(MountainCar, "[0, 1e999]", "[]"),
            "init state: not valid JSON (number out of range at line 1 column 9)"
        );
        assert!(err(MountainCar, "[0, 0]", "[1,").starts_with("actions: not valid JSON"));
        assert_eq!(
            err(MountainCar, "[0, 0]", "{\"a\": 1}"),
            "actions: expected a JSON array of actions"
        );
        assert_eq!(
            err(MountainCar, "[0, 0]", "[1, [1, 2]]"),
            "action 1: has 2 values, expected a number or an array of 1 number (act_dim = 1)"
        );
        assert_eq!(
            err(Multigoal, "[0, 0]", "[[1, 0], 0.5]"),
            "action 1: expected an array of 2 numbers, got a number"
        );
        assert_eq!(
            err(Multigoal, "[0, 0]", "[[1, null]]"),
            "action 0: expected a number, got null"
        );
        assert_eq!(
            err(Pendulum, "[0, 1e300]", "[0]"),
            "the result of step 1 (state too large?) is not a finite number"
        );
    }
}
