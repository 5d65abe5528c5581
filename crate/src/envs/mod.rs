//! 2-D control environments behind one small trait.
//!
//! This module owns the [`Env`] trait, the shared types ([`EnvSpec`], [`StepResult`],
//! [`EnvSnapshot`], [`EnvError`]), the [`EnvName`] registry with [`make_env`], and the
//! agent-unit ↔ native-unit action scaling. Each environment lives in its own file:
//!
//! | name | module | reference | obs | act (native) | max steps |
//! |---|---|---|---|---|---|
//! | `pendulum` | [`pendulum`] | Gymnasium `Pendulum-v1` | 3 | torque in `[-2, 2]` | 200 |
//! | `mountain-car` | [`mountain_car`] | Gymnasium `MountainCarContinuous-v0` | 2 | force in `[-1, 1]` | 999 |
//! | `multigoal` | [`multigoal`] | Haarnoja et al. 2017 `MultiGoalEnv` | 2 | velocity in `[-1, 1]²` | 30 |
//!
//! Conventions:
//! - The agent acts in `[-1, 1]^act_dim` (a tanh-squashed policy). [`Env::step`] maps that
//!   linearly onto `[act_low, act_high]` ([`EnvSpec::to_native`]) and calls
//!   [`Env::step_native`], which takes the reference implementation's own units and applies its
//!   own clipping rules.
//! - Internal state is `f64`, following the reference formulas line by line; observations are
//!   `f32`. Everything random comes from an RNG the env owns, seeded explicitly, so the same seed
//!   gives the same resets everywhere.
//! - `terminated` (reached a terminal state) is kept apart from `truncated` (the time limit,
//!   counted like Gymnasium's `TimeLimit`: `truncated` once `steps >= max_steps`).
//!
//! [`rollout`] replays a JSON list of native actions from a given state (the `rfm rollout` CLI).

pub mod mountain_car;
pub mod multigoal;
pub mod pendulum;
pub mod rollout;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use mountain_car::{MountainCar, MountainCarSnapshot};
pub use multigoal::{Multigoal, MultigoalSnapshot};
pub use pendulum::{Pendulum, PendulumSnapshot};

/// One environment: seeded resets, steps in agent or native units, settable state, and a
/// serialisable snapshot for drawing.
pub trait Env: Send {
    /// Dimensions, action bounds and time limit.
    fn spec(&self) -> &EnvSpec;

    /// Start a new episode and return its first observation (`spec().obs_dim` values).
    /// `Some(seed)` reseeds the env's RNG first; `None` keeps drawing from the current stream.
    fn reset(&mut self, seed: Option<u64>) -> Vec<f32>;

    /// One step with an action in agent units, `action ∈ [-1, 1]^act_dim`, scaled linearly to
    /// native units by [`EnvSpec::to_native`] (values outside `[-1, 1]` are scaled the same way
    /// and then meet the env's own clipping).
    ///
    /// # Panics
    /// If `action.len() != spec().act_dim`.
    fn step(&mut self, action: &[f32]) -> StepResult {
        let native = self.spec().to_native(action);
        self.step_native(&native)
    }

    /// One step with an action in native units (`spec().act_low ..= act_high`, clipped by the
    /// env exactly as the reference does).
    ///
    /// # Panics
    /// If `action.len() != spec().act_dim`.
    fn step_native(&mut self, action: &[f64]) -> StepResult;

    /// Overwrite the internal state (`spec().state_dim` finite values, layout in
    /// `spec().state_names`) and restart the step counter, as if an episode began there.
    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError>;

    /// The internal state, in the layout [`Env::set_state`] takes.
    fn state(&self) -> Vec<f64>;

    /// The current observation (what the last `reset`/`step` returned).
    fn obs(&self) -> Vec<f32>;

    /// Everything a UI needs to draw the current state; computing nothing is left to the view.
    fn snapshot(&self) -> EnvSnapshot;

    /// How many distinct goals the task has (0: no goals to tell apart). Multigoal has 4.
    fn goal_count(&self) -> usize {
        0
    }

    /// The goal (`0..goal_count()`) the current state is inside, if any: after a terminating
    /// step, the optimum this episode reached. Evaluations count these to show whether a policy
    /// finds every optimum or collapses onto one.
    fn goal_reached(&self) -> Option<usize> {
        None
    }
}

/// The result of one [`Env::step`]: the observation after the step, its reward, and whether the
/// episode ended in a terminal state (`terminated`) or at the time limit (`truncated`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub obs: Vec<f32>,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

/// Static description of an environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvSpec {
    pub name: EnvName,
    /// Length of every observation.
    pub obs_dim: usize,
    /// Length of every action.
    pub act_dim: usize,
    /// Lower action bound per dimension, native units; agent action `-1` maps here.
    pub act_low: Vec<f64>,
    /// Upper action bound per dimension, native units; agent action `+1` maps here.
    pub act_high: Vec<f64>,
    /// Time limit: the step that reaches it reports `truncated`.
    pub max_steps: usize,
    /// Length of the internal state [`Env::set_state`] takes.
    pub state_dim: usize,
    /// Meaning of each internal state entry, e.g. `["theta", "thetaDot"]`.
    pub state_names: Vec<&'static str>,
}

impl EnvSpec {
    /// Agent units → native units, per dimension: `low + (a + 1) / 2 · (high − low)`.
    ///
    /// # Panics
    /// If `action.len() != act_dim`.
    pub fn to_native(&self, action: &[f32]) -> Vec<f64> {
        self.check_action_len(action.len());
        action
            .iter()
            .zip(self.act_low.iter().zip(&self.act_high))
            .map(|(&a, (&lo, &hi))| lo + (f64::from(a) + 1.0) * 0.5 * (hi - lo))
            .collect()
    }

    /// Native units → agent units, the inverse of [`EnvSpec::to_native`]:
    /// `2 (x − low) / (high − low) − 1`.
    ///
    /// # Panics
    /// If `action.len() != act_dim`.
    pub fn to_agent(&self, action: &[f64]) -> Vec<f32> {
        self.check_action_len(action.len());
        action
            .iter()
            .zip(self.act_low.iter().zip(&self.act_high))
            .map(|(&x, (&lo, &hi))| (2.0 * (x - lo) / (hi - lo) - 1.0) as f32)
            .collect()
    }

    /// Panic with a message naming the env when an action has the wrong length.
    pub(crate) fn check_action_len(&self, len: usize) {
        assert!(
            len == self.act_dim,
            "{}: action has {len} values, expected act_dim = {}",
            self.name,
            self.act_dim
        );
    }

    /// `Err` unless `state` has `state_dim` finite values.
    pub(crate) fn check_state(&self, state: &[f64]) -> Result<(), EnvError> {
        if state.len() != self.state_dim {
            return Err(EnvError::StateLength {
                env: self.name,
                expected: self.state_dim,
                names: self.state_names.join(", "),
                got: state.len(),
            });
        }
        if let Some(i) = state.iter().position(|x| !x.is_finite()) {
            return Err(EnvError::NonFinite {
                what: format!("state[{i}] ({})", self.state_names[i]),
            });
        }
        Ok(())
    }
}

/// What [`Env::snapshot`] returns: one variant per environment, tagged `"env"` with the
/// environment's name (`{"env": "pendulum", "theta": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[serde(tag = "env", rename_all = "kebab-case")]
pub enum EnvSnapshot {
    Pendulum(PendulumSnapshot),
    MountainCar(MountainCarSnapshot),
    Multigoal(MultigoalSnapshot),
}

/// The environments this crate knows, by their stable names (`pendulum`, `mountain-car`,
/// `multigoal`), used in the CLI, configs and the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum EnvName {
    Pendulum,
    MountainCar,
    Multigoal,
}

impl EnvName {
    /// Every environment, in display order.
    pub const ALL: [EnvName; 3] = [EnvName::Pendulum, EnvName::MountainCar, EnvName::Multigoal];

    /// The stable name, e.g. `"mountain-car"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvName::Pendulum => "pendulum",
            EnvName::MountainCar => "mountain-car",
            EnvName::Multigoal => "multigoal",
        }
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvName {
    type Err = EnvError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EnvName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| EnvError::UnknownEnv(s.to_string()))
    }
}

/// A new environment, its RNG seeded with `seed` and already reset once with that seed.
pub fn make_env(name: EnvName, seed: u64) -> Box<dyn Env> {
    match name {
        EnvName::Pendulum => Box::new(Pendulum::new(seed)),
        EnvName::MountainCar => Box::new(MountainCar::new(seed)),
        EnvName::Multigoal => Box::new(Multigoal::new(seed)),
    }
}

/// Everything that can go wrong at the env boundary; each message is one line naming the culprit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    #[error("unknown env {0:?} (valid: pendulum, mountain-car, multigoal)")]
    UnknownEnv(String),
    #[error("{env}: state has {got} values, expected {expected} ([{names}])")]
    StateLength {
        env: EnvName,
        expected: usize,
        names: String,
        got: usize,
    },
    #[error("{what} is not a finite number")]
    NonFinite { what: String },
    #[error("{what}: {message}")]
    Json { what: String, message: String },
    #[error("action {index}: {message}")]
    Action { index: usize, message: String },
    #[error("writing the rollout failed: {0}")]
    Io(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_lists_valid_names() {
        for n in EnvName::ALL {
            assert_eq!(n.as_str().parse::<EnvName>().unwrap(), n);
            assert_eq!(
                serde_json::to_string(&n).unwrap(),
                format!("\"{}\"", n.as_str())
            );
        }
        let err = "cartpole".parse::<EnvName>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown env \"cartpole\" (valid: pendulum, mountain-car, multigoal)"
        );
    }

    #[test]
    fn agent_units_scale_linearly_to_native() {
        let spec = make_env(EnvName::Pendulum, 0).spec().clone();
        assert_eq!(spec.to_native(&[-1.0]), vec![-2.0]);
        assert_eq!(spec.to_native(&[0.0]), vec![0.0]);
        assert_eq!(spec.to_native(&[0.5]), vec![1.0]);
        assert_eq!(spec.to_native(&[1.0]), vec![2.0]);
        assert_eq!(spec.to_agent(&[1.0]), vec![0.5]);
        let spec = make_env(EnvName::Multigoal, 0).spec().clone();
        assert_eq!(spec.to_native(&[-1.0, 0.25]), vec![-1.0, 0.25]);
    }

    #[test]
    fn agent_step_equals_scaled_native_step() {
        for name in EnvName::ALL {
            let mut a = make_env(name, 3);
            let mut b = make_env(name, 3);
            let act: Vec<f32> = (0..a.spec().act_dim)
                .map(|i| 0.3 - 0.2 * i as f32)
                .collect();
            let native = a.spec().to_native(&act);
            assert_eq!(a.step(&act), b.step_native(&native), "{name}");
        }
    }

    #[test]
    fn same_seed_same_reset_and_state_checks() {
        for name in EnvName::ALL {
            let mut a = make_env(name, 11);
            let mut b = make_env(name, 11);
            assert_eq!(a.obs(), b.obs(), "{name}");
            assert_eq!(a.reset(Some(5)), b.reset(Some(5)), "{name}");
            assert_eq!(a.reset(None), b.reset(None), "{name}");
            assert_ne!(a.reset(Some(5)), a.reset(Some(6)), "{name}");
            assert_eq!(a.spec().obs_dim, a.obs().len());
            assert_eq!(a.spec().state_dim, a.state().len());

            let err = a.set_state(&[0.0]).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{name}: state has 1 values, expected 2")),
                "{err}"
            );
            let err = a.set_state(&[0.0, f64::NAN]).unwrap_err().to_string();
            assert!(
                err.contains("state[1]") && err.ends_with("is not a finite number"),
                "{err}"
            );
            a.set_state(&[0.1, 0.02]).unwrap();
            assert_eq!(a.state(), vec![0.1, 0.02]);
        }
    }

    #[test]
    #[should_panic(expected = "action has 2 values, expected act_dim = 1")]
    fn wrong_action_length_panics_with_a_message() {
        make_env(EnvName::Pendulum, 0).step_native(&[0.0, 0.0]);
    }

    #[test]
    fn snapshots_are_tagged_by_env_name() {
        for name in EnvName::ALL {
            let v = serde_json::to_value(make_env(name, 0).snapshot()).unwrap();
            assert_eq!(v["env"], name.as_str());
        }
    }
}
