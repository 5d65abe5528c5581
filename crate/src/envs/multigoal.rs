//! The multi-goal point mass of Haarnoja et al. 2017 ("Reinforcement Learning with Deep
//! Energy-Based Policies", soft Q-learning), transcribed from `MultiGoalEnv` in
//! `softqlearning/environments/multigoal.py` (haarnoja/softqlearning; the same class is
//! `sac/envs/multigoal.py` in haarnoja/sac), with its default arguments.
//!
//! A point in the plane moves by its action and is rewarded for getting close to any of four
//! goals: a task with four equally good optima, where a multimodal policy should find them all.
//!
//! ## Action space (native units; the agent's `[-1, 1]²` maps onto it one to one)
//!
//! | index | action | min | max |
//! |---|---|---|---|
//! | 0 | velocity `dx` (clipped) | -1.0 | 1.0 |
//! | 1 | velocity `dy` (clipped) | -1.0 | 1.0 |
//!
//! ## Observation space
//!
//! | index | observation | min | max |
//! |---|---|---|---|
//! | 0 | position `x` | -7.0 | 7.0 |
//! | 1 | position `y` | -7.0 | 7.0 |
//!
//! ## Dynamics (`PointDynamics(dim=2, sigma=0)`: no noise)
//!
//! ```text
//! a = clip(a, −1, 1)
//! p = clip(p + a, [−7, −7], [7, 7])
//! ```
//!
//! ## Reward
//!
//! With goals `(5, 0), (−5, 0), (0, 5), (0, −5)`, `actuation_cost_coeff = 30`,
//! `distance_cost_coeff = 1`, `goal_reward = 10`, `goal_threshold = 1`, using the **clipped**
//! action and the position **after** the step:
//!
//! ```text
//! r = −(30 · Σ a² + 1 · min_g ‖p − g‖²) + (10 if min_g ‖p − g‖ < 1)
//! ```
//!
//! ## Starting state
//!
//! `p = clip((0, 0) + 0.1 · N(0, I₂), −7, 7)` (`init_sigma = 0.1`).
//!
//! ## Termination and truncation
//!
//! Terminated (the source's `done`) when `min_g ‖p − g‖ < 1`. Truncated at 30 steps, the
//! `max_path_length` of the source's `examples/multigoal_sql.py` (the env itself has no horizon).

use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::{Env, EnvError, EnvName, EnvSnapshot, EnvSpec, StepResult};
use crate::rng::{Rng, seeded};

/// The four goals.
pub const GOALS: [[f64; 2]; 4] = [[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]];
/// A step ending closer than this to a goal terminates.
pub const GOAL_THRESHOLD: f64 = 1.0;
/// Bonus on the terminating step.
pub const GOAL_REWARD: f64 = 10.0;
/// Weight of `Σ a²` in the cost.
pub const ACTION_COST_COEFF: f64 = 30.0;
/// Weight of the squared distance to the nearest goal in the cost.
pub const DISTANCE_COST_COEFF: f64 = 1.0;
/// Standard deviation of the start position around the origin.
pub const INIT_SIGMA: f64 = 0.1;
/// Position bounds, both axes.
pub const XLIM: [f64; 2] = [-7.0, 7.0];
pub const YLIM: [f64; 2] = [-7.0, 7.0];
/// Velocity bound per axis.
pub const VEL_BOUND: f64 = 1.0;
/// Time limit, steps.
pub const MAX_STEPS: usize = 30;
/// The snapshot keeps at most this many recent positions.
pub const TRAJECTORY_CAP: usize = 256;

/// The point mass: state `[x, y]`.
#[derive(Debug, Clone)]
pub struct Multigoal {
    spec: EnvSpec,
    rng: Rng,
    position: [f64; 2],
    /// Positions since the episode began (start included), the most recent `TRAJECTORY_CAP`.
    trajectory: Vec<[f64; 2]>,
    /// Last applied action (clipped), for drawing; `None` after a reset.
    last_action: Option<[f64; 2]>,
    steps: usize,
}

/// What the UI draws: the point, its recent path, the goals with their radius, the bounds.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct MultigoalSnapshot {
    pub position: [f64; 2],
    /// Positions since the episode began, oldest first, at most `TRAJECTORY_CAP`.
    pub trajectory: Vec<[f64; 2]>,
    pub goals: Vec<[f64; 2]>,
    /// Goal radius: ending a step inside it terminates.
    pub goal_radius: f64,
    pub xlim: [f64; 2],
    pub ylim: [f64; 2],
    /// Last applied velocity (clipped), `null` right after a reset.
    pub last_action: Option<[f64; 2]>,
    /// Steps taken in this episode.
    pub step: usize,
}

/// `min_g ‖p − g‖²` over the goals.
fn min_sq_dist(p: [f64; 2]) -> f64 {
    GOALS
        .iter()
        .map(|g| (p[0] - g[0]).powi(2) + (p[1] - g[1]).powi(2))
        .fold(f64::INFINITY, f64::min)
}

impl Multigoal {
    /// A point mass with its RNG seeded by `seed`, reset once.
    pub fn new(seed: u64) -> Self {
        let mut env = Multigoal {
            spec: EnvSpec {
                name: EnvName::Multigoal,
                obs_dim: 2,
                act_dim: 2,
                act_low: vec![-VEL_BOUND; 2],
                act_high: vec![VEL_BOUND; 2],
                max_steps: MAX_STEPS,
                state_dim: 2,
                state_names: vec!["x", "y"],
            },
            rng: seeded(seed),
            position: [0.0; 2],
            trajectory: Vec::new(),
            last_action: None,
            steps: 0,
        };
        env.reset(Some(seed));
        env
    }

    fn get_obs(&self) -> Vec<f32> {
        vec![self.position[0] as f32, self.position[1] as f32]
    }

    /// Start an episode at `p`.
    fn begin_at(&mut self, p: [f64; 2]) {
        self.position = p;
        self.trajectory.clear();
        self.trajectory.push(p);
        self.last_action = None;
        self.steps = 0;
    }
}

impl Env for Multigoal {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        if let Some(seed) = seed {
            self.rng = seeded(seed);
        }
        let mut p = [0.0; 2];
        for (i, lim) in [XLIM, YLIM].iter().enumerate() {
            let z: f64 = StandardNormal.sample(&mut self.rng);
            p[i] = (0.0 + INIT_SIGMA * z).clamp(lim[0], lim[1]);
        }
        self.begin_at(p);
        self.get_obs()
    }

    fn step_native(&mut self, action: &[f64]) -> StepResult {
        self.spec.check_action_len(action.len());
        let a = [
            action[0].clamp(-VEL_BOUND, VEL_BOUND),
            action[1].clamp(-VEL_BOUND, VEL_BOUND),
        ];
        let p = [
            (self.position[0] + a[0]).clamp(XLIM[0], XLIM[1]),
            (self.position[1] + a[1]).clamp(YLIM[0], YLIM[1]),
        ];
        self.position = p;
        if self.trajectory.len() == TRAJECTORY_CAP {
            self.trajectory.remove(0);
        }
        self.trajectory.push(p);
        self.last_action = Some(a);
        self.steps += 1;

        let action_cost = (a[0].powi(2) + a[1].powi(2)) * ACTION_COST_COEFF;
        let goal_cost = DISTANCE_COST_COEFF * min_sq_dist(p);
        let mut reward = -(action_cost + goal_cost);
        let dist_to_goal = GOALS
            .iter()
            .map(|g| ((p[0] - g[0]).powi(2) + (p[1] - g[1]).powi(2)).sqrt())
            .fold(f64::INFINITY, f64::min);
        let terminated = dist_to_goal < GOAL_THRESHOLD;
        if terminated {
            reward += GOAL_REWARD;
        }
        StepResult {
            obs: self.get_obs(),
            reward,
            terminated,
            truncated: self.steps >= MAX_STEPS,
        }
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.spec.check_state(state)?;
        self.begin_at([state[0], state[1]]);
        Ok(())
    }

    fn state(&self) -> Vec<f64> {
        self.position.to_vec()
    }

    fn obs(&self) -> Vec<f32> {
        self.get_obs()
    }

    fn snapshot(&self) -> EnvSnapshot {
        EnvSnapshot::Multigoal(MultigoalSnapshot {
            position: self.position,
            trajectory: self.trajectory.clone(),
            goals: GOALS.to_vec(),
            goal_radius: GOAL_THRESHOLD,
            xlim: XLIM,
            ylim: YLIM,
            last_action: self.last_action,
            step: self.steps,
        })
    }

    fn goal_count(&self) -> usize {
        GOALS.len()
    }

    fn goal_reached(&self) -> Option<usize> {
        let p = self.position;
        GOALS
            .iter()
            .position(|g| ((p[0] - g[0]).powi(2) + (p[1] - g[1]).powi(2)).sqrt() < GOAL_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn at(x: f64, y: f64) -> Multigoal {
        let mut env = Multigoal::new(0);
        env.set_state(&[x, y]).unwrap();
        env
    }

    #[test]
    fn path_to_the_right_goal_matches_the_source() {
        // Reference: the source's step() in NumPy float64 from (0, 0).
        // Step 1, a = (0.5, 0): p = (0.5, 0), r = −(30·0.25 + (0.5 − 5)²) = −(7.5 + 20.25).
        let mut env = at(0.0, 0.0);
        let expected = [
            ([0.5, 0.0], [0.5, 0.0], -27.75, false),
            ([1.0, 0.2], [1.5, 0.2], -43.49, false),
            ([2.0, -0.3], [2.5, -0.09999999999999998], -38.96, false),
            ([1.0, 0.0], [3.5, -0.09999999999999998], -32.26, false),
            // ‖(4.5, −0.1) − (5, 0)‖ = 0.51 < 1: r = −(30 + 0.26) + 10.
            ([1.0, 0.0], [4.5, -0.09999999999999998], -20.26, true),
        ];
        for (i, (a, p, r, done)) in expected.into_iter().enumerate() {
            let res = env.step_native(&a);
            assert_eq!(env.position, p, "step {}", i + 1);
            assert_relative_eq!(res.reward, r, max_relative = 1e-14);
            assert_eq!(res.terminated, done, "step {}", i + 1);
            assert_eq!(res.obs, vec![p[0] as f32, p[1] as f32]);
            assert!(!res.truncated);
        }
        let EnvSnapshot::Multigoal(s) = env.snapshot() else {
            panic!("wrong snapshot variant");
        };
        assert_eq!(s.trajectory.len(), 6);
        assert_eq!(s.trajectory[0], [0.0, 0.0]);
        assert_eq!(s.trajectory[5], env.position);
        assert_eq!(s.last_action, Some([1.0, 0.0]));
    }

    #[test]
    fn position_clipped_to_the_box() {
        // (6.5, 6.9) + (0.9, 0.5) → (7, 7); nearest goal (5, 0) or (0, 5): d² = 4 + 49 = 53.
        let mut env = at(6.5, 6.9);
        let r = env.step_native(&[0.9, 0.5]);
        assert_eq!(env.position, [7.0, 7.0]);
        assert_relative_eq!(
            r.reward,
            -(30.0 * (0.81 + 0.25) + 53.0),
            max_relative = 1e-14
        );
        assert_eq!(r.reward, -84.8);
    }

    #[test]
    fn goal_threshold_is_strict() {
        // Ending exactly 1 away from (0, 5) does not terminate; 0.99 away does.
        let r = at(0.0, 3.0).step_native(&[0.0, 1.0]);
        assert!(!r.terminated);
        assert_eq!(r.reward, -(30.0 + 1.0));
        let r = at(0.0, 3.01).step_native(&[0.0, 1.0]);
        assert!(r.terminated);
        assert_relative_eq!(
            r.reward,
            -(30.0 + 0.99f64.powi(2)) + 10.0,
            max_relative = 1e-14
        );
    }

    #[test]
    fn goal_reached_names_the_goal_exactly_when_the_step_terminates() {
        // Walk at full speed from the origin toward each goal: (5, 0) is reached on the 5th
        // step (distance 0 < 1), not on the 4th (distance 1, not < 1).
        for (i, g) in GOALS.iter().enumerate() {
            let mut env = at(0.0, 0.0);
            assert_eq!(env.goal_count(), 4);
            let dir = [g[0] / 5.0, g[1] / 5.0];
            for t in 1..=5 {
                let r = env.step_native(&dir);
                assert_eq!(r.terminated, t == 5, "goal {i}, step {t}");
                assert_eq!(env.goal_reached(), (t == 5).then_some(i));
            }
        }
        // Other envs have no goals to tell apart.
        let p = crate::envs::make_env(crate::envs::EnvName::Pendulum, 0);
        assert_eq!((p.goal_count(), p.goal_reached()), (0, None));
    }

    #[test]
    fn truncates_at_30_steps() {
        let mut env = at(0.0, 0.0);
        for t in 1..=MAX_STEPS {
            let r = env.step(&[0.0, 0.0]);
            assert_eq!(r.truncated, t == MAX_STEPS);
            assert_eq!(r.reward, -25.0);
        }
    }

    #[test]
    fn reset_near_origin_and_trajectory_capped() {
        let mut env = Multigoal::new(0);
        let obs = env.reset(Some(9));
        assert!(obs.iter().all(|x| x.abs() < 0.6), "{obs:?}");
        assert_eq!(env.trajectory, vec![env.position]);
        for _ in 0..TRAJECTORY_CAP + 10 {
            env.step_native(&[0.01, 0.0]);
        }
        assert_eq!(env.trajectory.len(), TRAJECTORY_CAP);
        assert_eq!(*env.trajectory.last().unwrap(), env.position);
        let v = serde_json::to_value(env.snapshot()).unwrap();
        assert_eq!(v["env"], "multigoal");
        assert_eq!(v["goalRadius"], 1.0);
        assert_eq!(v["goals"][2], serde_json::json!([0.0, 5.0]));
    }
}
