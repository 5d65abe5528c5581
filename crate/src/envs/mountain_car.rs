//! Gymnasium `MountainCarContinuous-v0`, transcribed line by line from
//! `gymnasium/envs/classic_control/continuous_mountain_car.py` (Farama-Foundation/Gymnasium).
//!
//! A car sits in a sinusoidal valley (height `sin(3x)·0.45 + 0.55`) and is too weak to drive
//! straight up the right hill: it must rock back and forth to reach the flag at `x = 0.45`.
//!
//! ## Action space (native units; the agent's `[-1, 1]` maps onto it one to one)
//!
//! | index | action | min | max |
//! |---|---|---|---|
//! | 0 | force (clipped to `[-1, 1]`, multiplied by `power = 0.0015`) | -1.0 | 1.0 |
//!
//! ## Observation space
//!
//! | index | observation | min | max |
//! |---|---|---|---|
//! | 0 | position `x` | -1.2 | 0.6 |
//! | 1 | velocity `v` | -0.07 | 0.07 |
//!
//! ## Dynamics
//!
//! ```text
//! force = min(max(a, -1.0), 1.0)
//! v     = v + force · 0.0015 − 0.0025 · cos(3x);   v = clip(v, −0.07, 0.07)
//! x     = x + v;                                   x = clip(x, −1.2, 0.6)
//! if x == −1.2 and v < 0: v = 0                    (inelastic left wall)
//! ```
//!
//! ## Reward
//!
//! `r = −0.1 · a²` using the **unclipped** action `a` (Gymnasium squares `action[0]`, not
//! `force`), plus `100` on the step that terminates.
//!
//! ## Starting state
//!
//! `x ~ U[−0.6, −0.4)`, `v = 0`.
//!
//! ## Termination and truncation
//!
//! Terminated when `x ≥ 0.45` and `v ≥ 0` (goal velocity 0). Truncated at 999 steps.
//!
//! ## Numerics
//!
//! Gymnasium stores `self.state` as `float32` at the end of every step (but as `float64` after
//! `reset` or when a state is set). That rounding is reproduced: after a step both entries are
//! rounded to `f32`, and the next step then evaluates `3 * position` in `float32` as NumPy does.
//! The rest of the arithmetic is `f64`, matching Gymnasium fed `float64` actions.

use rand::Rng as _;
use serde::Serialize;

use super::{Env, EnvError, EnvName, EnvSnapshot, EnvSpec, StepResult};
use crate::rng::{Rng, seeded};

pub const MIN_ACTION: f64 = -1.0;
pub const MAX_ACTION: f64 = 1.0;
pub const MIN_POSITION: f64 = -1.2;
pub const MAX_POSITION: f64 = 0.6;
pub const MAX_SPEED: f64 = 0.07;
/// Flag position (0.45 as in Arnaud de Broissia's version, not the discrete env's 0.5).
pub const GOAL_POSITION: f64 = 0.45;
pub const GOAL_VELOCITY: f64 = 0.0;
pub const POWER: f64 = 0.0015;
/// Bonus on the terminating step.
pub const GOAL_REWARD: f64 = 100.0;
/// Time limit, steps.
pub const MAX_STEPS: usize = 999;
/// Points in the snapshot's track polyline (as Gymnasium's renderer).
pub const TRACK_POINTS: usize = 100;

/// Height of the track at `x`: `sin(3x) · 0.45 + 0.55` (Gymnasium's `_height`).
pub fn height(x: f64) -> f64 {
    (3.0 * x).sin() * 0.45 + 0.55
}

/// The car: state `[position, velocity]`.
#[derive(Debug, Clone)]
pub struct MountainCar {
    spec: EnvSpec,
    rng: Rng,
    position: f64,
    velocity: f64,
    /// Whether the state went through Gymnasium's `float32` storage (true after any step).
    stored_as_f32: bool,
    /// Force applied by the last step (clipped), for drawing; `None` after a reset.
    last_force: Option<f64>,
    steps: usize,
}

/// What the UI draws: the car on the track, the flag, and the last force.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct MountainCarSnapshot {
    pub position: f64,
    pub velocity: f64,
    /// `height(position)`: where the car sits.
    pub height: f64,
    pub min_position: f64,
    pub max_position: f64,
    pub goal_position: f64,
    /// `height(goal_position)`: the flag's foot.
    pub goal_height: f64,
    /// `[x, height(x)]` at `TRACK_POINTS` evenly spaced `x` from `min_position` to `max_position`.
    pub track: Vec<[f64; 2]>,
    /// Last applied force in `[-1, 1]`, `null` right after a reset.
    pub last_force: Option<f64>,
    /// Steps taken in this episode.
    pub step: usize,
}

impl MountainCar {
    /// A car with its RNG seeded by `seed`, reset once.
    pub fn new(seed: u64) -> Self {
        let mut env = MountainCar {
            spec: EnvSpec {
                name: EnvName::MountainCar,
                obs_dim: 2,
                act_dim: 1,
                act_low: vec![MIN_ACTION],
                act_high: vec![MAX_ACTION],
                max_steps: MAX_STEPS,
                state_dim: 2,
                state_names: vec!["position", "velocity"],
            },
            rng: seeded(seed),
            position: 0.0,
            velocity: 0.0,
            stored_as_f32: false,
            last_force: None,
            steps: 0,
        };
        env.reset(Some(seed));
        env
    }

    fn get_obs(&self) -> Vec<f32> {
        vec![self.position as f32, self.velocity as f32]
    }
}

impl Env for MountainCar {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        if let Some(seed) = seed {
            self.rng = seeded(seed);
        }
        self.position = self.rng.random_range(-0.6..-0.4);
        self.velocity = 0.0;
        self.stored_as_f32 = false;
        self.last_force = None;
        self.steps = 0;
        self.get_obs()
    }

    fn step_native(&mut self, action: &[f64]) -> StepResult {
        self.spec.check_action_len(action.len());
        let mut position = self.position;
        let mut velocity = self.velocity;
        // `min(max(action[0], min_action), max_action)`; `clamp` also keeps NaN as NaN.
        let force = action[0].clamp(MIN_ACTION, MAX_ACTION);
        self.last_force = Some(force);

        // NumPy evaluates `3 * position` in float32 once the state is stored as float32.
        let three_x = if self.stored_as_f32 {
            f64::from(3.0 * position as f32)
        } else {
            3.0 * position
        };
        velocity += force * POWER - 0.0025 * three_x.cos();
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        position += velocity;
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }

        let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
        let mut reward = if terminated { GOAL_REWARD } else { 0.0 };
        reward -= action[0].powi(2) * 0.1;

        // `self.state = np.array([position, velocity], dtype=np.float32)`
        self.position = f64::from(position as f32);
        self.velocity = f64::from(velocity as f32);
        self.stored_as_f32 = true;
        self.steps += 1;
        StepResult {
            obs: self.get_obs(),
            reward,
            terminated,
            truncated: self.steps >= MAX_STEPS,
        }
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.spec.check_state(state)?;
        self.position = state[0];
        self.velocity = state[1];
        self.stored_as_f32 = false;
        self.last_force = None;
        self.steps = 0;
        Ok(())
    }

    fn state(&self) -> Vec<f64> {
        vec![self.position, self.velocity]
    }

    fn obs(&self) -> Vec<f32> {
        self.get_obs()
    }

    fn snapshot(&self) -> EnvSnapshot {
        let track = (0..TRACK_POINTS)
            .map(|i| {
                let x = MIN_POSITION
                    + (MAX_POSITION - MIN_POSITION) * i as f64 / (TRACK_POINTS - 1) as f64;
                [x, height(x)]
            })
            .collect();
        EnvSnapshot::MountainCar(MountainCarSnapshot {
            position: self.position,
            velocity: self.velocity,
            height: height(self.position),
            min_position: MIN_POSITION,
            max_position: MAX_POSITION,
            goal_position: GOAL_POSITION,
            goal_height: height(GOAL_POSITION),
            track,
            last_force: self.last_force,
            step: self.steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gymnasium's float32 observations, written as the float64 values NumPy prints for them.
    fn f32s(xs: &[f64]) -> Vec<f32> {
        xs.iter().map(|&x| x as f32).collect()
    }
    use approx::assert_relative_eq;

    fn at(position: f64, velocity: f64) -> MountainCar {
        let mut env = MountainCar::new(0);
        env.set_state(&[position, velocity]).unwrap();
        env
    }

    #[test]
    fn one_step_by_hand() {
        // x = −0.5, v = 0, a = 1:
        // v' = 0 + 1·0.0015 − 0.0025·cos(−1.5) = 0.0015 − 0.0025·0.0707372… ≈ 0.0013231570
        // x' = −0.5 + v';  r = −0.1·1² = −0.1
        let mut env = at(-0.5, 0.0);
        let r = env.step_native(&[1.0]);
        let v = 0.0015 - 0.0025 * (-1.5f64).cos();
        assert_eq!(env.velocity, f64::from(v as f32));
        assert_eq!(env.position, f64::from((-0.5 + v) as f32));
        assert_eq!(r.reward, -0.1);
        assert!(!r.terminated && !r.truncated);
        // Gymnasium 1.4.0 / NumPy 2.4.6, float64 action.
        assert_eq!(r.obs, f32s(&[-0.4986768364906311, 0.0013231569901108742]));
    }

    #[test]
    fn reward_squares_the_unclipped_action() {
        let r2 = at(-0.5, 0.0).step_native(&[2.0]);
        let r1 = at(-0.5, 0.0).step_native(&[1.0]);
        assert_eq!(r2.obs, r1.obs, "force is clipped to 1");
        assert_relative_eq!(r2.reward, -0.4, max_relative = 1e-15);
        assert_eq!(r1.reward, -0.1);
        // Second step from a float32-stored state with a clipped action (Gymnasium reference).
        let mut env = at(-0.5, 0.0);
        env.step_native(&[0.5]);
        assert_eq!(
            env.state(),
            vec![-0.49942684173583984, 0.0005731569835916162]
        );
        let r = env.step_native(&[2.0]);
        assert_eq!(r.obs, f32s(&[-0.4975348114967346, 0.0018920262809842825]));
        assert_relative_eq!(r.reward, -0.4, max_relative = 1e-15);
    }

    #[test]
    fn left_wall_stops_the_car() {
        // Gymnasium, from [−1.15, −0.06]: a = −1 → [−1.2000000476837158, 0.0], r = −0.1;
        // then a = 0.3 twice (r = −0.009 each).
        let mut env = at(-1.15, -0.06);
        let r = env.step_native(&[-1.0]);
        assert_eq!(r.obs, f32s(&[-1.2000000476837158, 0.0]));
        assert_eq!(r.reward, -0.1);
        let r = env.step_native(&[0.3]);
        assert_eq!(r.obs, f32s(&[-1.1973081827163696, 0.0026918959338217974]));
        assert_relative_eq!(r.reward, -0.009, max_relative = 1e-15);
        let r = env.step_native(&[0.3]);
        assert_eq!(r.obs, f32s(&[-1.191915512084961, 0.005392652470618486]));
    }

    #[test]
    fn velocity_is_clipped_and_goal_terminates_with_bonus() {
        // From [0.4, 0.0695], a = 1: v = 0.0695 + 0.0015 − 0.0025 cos(1.2) ≈ 0.0701 → 0.07,
        // x = 0.47 ≥ 0.45 and v ≥ 0 → terminated, r = 100 − 0.1.
        let mut env = at(0.4, 0.0695);
        let r = env.step_native(&[1.0]);
        assert_eq!(env.velocity, f64::from(MAX_SPEED as f32));
        assert!(r.terminated);
        assert_eq!(r.reward, 99.9);
        assert_eq!(r.obs, f32s(&[0.4699999988079071, 0.07000000029802322]));
        // And to the left: from [−0.5, −0.0695], a = −1 → v = −0.07, no bonus.
        let mut env = at(-0.5, -0.0695);
        let r = env.step_native(&[-1.0]);
        assert!(!r.terminated);
        assert_eq!(r.reward, -0.1);
        assert_eq!(r.obs, f32s(&[-0.5699999928474426, -0.07000000029802322]));
    }

    #[test]
    fn goal_needs_nonnegative_velocity() {
        // Rolling back down through the flag does not count.
        let mut env = at(0.5, -0.01);
        let r = env.step_native(&[0.0]);
        assert!(env.position >= GOAL_POSITION && env.velocity < 0.0);
        assert!(!r.terminated);
        assert_eq!(r.reward, 0.0);
    }

    #[test]
    fn gymnasium_bang_bang_trajectory_reaches_the_goal_at_step_106() {
        // Reference: state [−0.5, 0], a = +1 if v ≥ 0 else −1 (float64), Gymnasium 1.4.0.
        let mut env = at(-0.5, 0.0);
        let mut total = 0.0;
        for t in 1..=MAX_STEPS {
            let a = if env.velocity >= 0.0 { 1.0 } else { -1.0 };
            let r = env.step_native(&[a]);
            total += r.reward;
            match t {
                2 => assert_eq!(r.obs, f32s(&[-0.4960404336452484, 0.002636416582390666])),
                50 => assert_eq!(r.obs, f32s(&[-0.19415588676929474, -0.02718416228890419])),
                _ => {}
            }
            if r.terminated {
                assert_eq!(t, 106);
                assert_eq!(r.obs, f32s(&[0.5020865797996521, 0.0640476644039154]));
                assert_eq!(r.reward, 99.9);
                break;
            }
            assert!(t < 106, "did not terminate at step 106");
        }
        assert_relative_eq!(total, 89.40000000000003, max_relative = 1e-13);
    }

    #[test]
    fn truncates_at_999_steps() {
        // Reference: zero action from [−0.5, 0]; step 999 truncated at
        // [−0.5197106003761292, 0.002029974013566971].
        let mut env = at(-0.5, 0.0);
        for t in 1..=MAX_STEPS {
            let r = env.step_native(&[0.0]);
            assert!(!r.terminated);
            assert_eq!(r.truncated, t == MAX_STEPS, "step {t}");
            if t == MAX_STEPS {
                assert_eq!(r.obs, f32s(&[-0.5197106003761292, 0.002029974013566971]));
            }
        }
    }

    #[test]
    fn reset_position_in_start_range() {
        let mut env = MountainCar::new(0);
        for seed in 0..50 {
            let obs = env.reset(Some(seed));
            assert!((-0.6..-0.4).contains(&env.position));
            assert_eq!(obs[1], 0.0);
        }
    }

    #[test]
    fn snapshot_has_track_and_goal() {
        let env = at(-0.5, 0.0);
        let EnvSnapshot::MountainCar(s) = env.snapshot() else {
            panic!("wrong snapshot variant");
        };
        assert_eq!(s.track.len(), TRACK_POINTS);
        assert_eq!(s.track[0][0], MIN_POSITION);
        assert_relative_eq!(s.track[TRACK_POINTS - 1][0], MAX_POSITION, epsilon = 1e-15);
        assert_relative_eq!(s.height, (-1.5f64).sin() * 0.45 + 0.55);
        assert_eq!(s.goal_position, 0.45);
        let v = serde_json::to_value(env.snapshot()).unwrap();
        assert_eq!(v["env"], "mountain-car");
        assert!(v["goalHeight"].is_number() && v["minPosition"] == -1.2);
    }
}
