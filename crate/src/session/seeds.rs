//! Several seeds of one experiment trained side by side (the spec's `seeds`): seed `i` is the
//! same experiment with `seed + i`, its own networks, optimisers, replay buffer and env. They
//! step in lockstep, one step each per session step, as concurrent futures: on the CPU each
//! step runs to completion in turn (the seeds one after another); on WebGPU a seed that waits on
//! a readback lets the next one submit its work, so the readbacks' round trips overlap, and the
//! RFM updates of all the seeds run as one, in the same kernels (`trainer::seam::batch`: each
//! step is a gather round; a seed leaves it when its step ends).
//!
//! Snapshots and checkpoints hold every seed: seed 0's tensors under their own names (a
//! one-seed file is what it always was) and seed `i`'s under `seed<i>/<name>`.

use futures_util::future::join_all;

use super::{Inner, MetricPoint, SessionError};
use crate::device::ComputeDevice;
use crate::spec::ExperimentSpec;
use crate::trainer::NamedTensor;

/// The experiment's seeds, seed 0 (the spec's own `seed`) first. Never empty.
pub(crate) struct Seeds {
    all: Vec<Inner>,
    /// WebGPU, several seeds: the gather their updates run in together.
    #[cfg(feature = "webgpu")]
    gather: Option<crate::trainer::seam::batch::SeedGather>,
}

/// The seed value of seed index `i` of `cfg`: `seed + i`.
pub fn seed_of(cfg: &ExperimentSpec, i: usize) -> u64 {
    cfg.seed.wrapping_add(i as u64)
}

/// Seed `i`'s spec: `cfg` with `seed + i` and one seed.
pub fn seed_spec(cfg: &ExperimentSpec, i: usize) -> ExperimentSpec {
    ExperimentSpec {
        seed: seed_of(cfg, i),
        seeds: 1,
        ..cfg.clone()
    }
}

/// The prefix of seed `i`'s tensor names in a snapshot or checkpoint.
fn prefix(i: usize) -> String {
    if i == 0 {
        String::new()
    } else {
        format!("seed{i}/")
    }
}

/// Which seed a stored tensor name belongs to, and its name within that seed.
fn split_name(name: &str) -> (usize, &str) {
    name.strip_prefix("seed")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(i, n)| Some((i.parse().ok()?, n)))
        .unwrap_or((0, name))
}

/// "seed 3" for seed index `i` of `cfg`, for messages and labels.
pub fn seed_label(cfg: &ExperimentSpec, i: usize) -> String {
    format!("seed {}", seed_of(cfg, i))
}

impl Seeds {
    /// A fresh trainer for every seed of `cfg` on `device`.
    pub(crate) fn build(
        cfg: &ExperimentSpec,
        device: &ComputeDevice,
    ) -> Result<Self, SessionError> {
        let all = (0..cfg.seeds.max(1))
            .map(|i| Inner::build(&seed_spec(cfg, i), device))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_trainers(all))
    }

    /// Seeds of these trainers, in order (e.g. the benchmark's pre-filled ones). Not empty.
    /// On WebGPU several seeds' updates run in the same kernels.
    pub(crate) fn from_trainers(all: Vec<Inner>) -> Self {
        assert!(!all.is_empty(), "at least one seed");
        Self::gathered(all)
    }

    /// `all` with their updates joined in one gather when there are several (WebGPU).
    fn gathered(all: Vec<Inner>) -> Self {
        #[cfg(feature = "webgpu")]
        {
            let mut all = all;
            let gather = (all.len() > 1).then(|| {
                let g = crate::trainer::seam::batch::SeedGather::new(all.len());
                for (i, t) in all.iter_mut().enumerate() {
                    t.join_gather(g.clone(), i);
                }
                g
            });
            Self { all, gather }
        }
        #[cfg(not(feature = "webgpu"))]
        Self { all }
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    /// Seed 0, the spec's own: its env is the one drawn, its step count the session's.
    pub(crate) fn primary(&self) -> &Inner {
        &self.all[0]
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Inner> {
        self.all.get(i)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Inner> {
        self.all.get_mut(i)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Inner> {
        self.all.iter()
    }

    /// One step of every seed, concurrently (module docs); point `i` is seed `i`'s.
    pub(crate) async fn step(&mut self) -> Vec<Result<MetricPoint, SessionError>> {
        #[cfg(feature = "webgpu")]
        let gather = self.gather.clone();
        #[cfg(feature = "webgpu")]
        if let Some(g) = &gather {
            g.open_round();
        }
        let points = join_all(self.all.iter_mut().enumerate().map(|(i, t)| {
            #[cfg(feature = "webgpu")]
            let gather = gather.clone();
            async move {
                let point = t.step().await.map(|p| MetricPoint { seed_index: i, ..p });
                #[cfg(feature = "webgpu")]
                if let Some(g) = &gather {
                    g.leave(i);
                }
                point
            }
        }))
        .await;
        #[cfg(feature = "webgpu")]
        if let Some(g) = &gather {
            g.close_round();
        }
        points
    }

    /// Every seed's weights, named as the module docs say.
    pub(crate) async fn export(&self) -> Result<Vec<NamedTensor>, SessionError> {
        let mut all = Vec::new();
        for (i, t) in self.all.iter().enumerate() {
            let p = prefix(i);
            all.extend(t.export().await?.into_iter().map(|mut x| {
                x.name.insert_str(0, &p);
                x
            }));
        }
        Ok(all)
    }

    /// These seeds with their networks replaced by `tensors` (named as [`Seeds::export`] names
    /// them, same shapes); the file must hold exactly this many seeds.
    pub(crate) fn with_weights(self, tensors: Vec<NamedTensor>) -> Result<Self, String> {
        let n = self.all.len();
        let mut by_seed: Vec<Vec<NamedTensor>> = (0..n).map(|_| Vec::new()).collect();
        let mut held = 0;
        for mut t in tensors {
            let (i, name) = split_name(&t.name);
            held = held.max(i + 1);
            if i < n {
                t.name = name.to_string();
                by_seed[i].push(t);
            }
        }
        if held != n {
            let s = |k: usize| if k == 1 { "seed" } else { "seeds" };
            return Err(format!(
                "the weights hold {held} {}, this experiment trains {n} {}",
                s(held),
                s(n)
            ));
        }
        self.all
            .into_iter()
            .zip(by_seed)
            .enumerate()
            .map(|(i, (t, w))| {
                t.with_weights(w).map_err(|m| {
                    if n > 1 {
                        format!("seed index {i}: {m}")
                    } else {
                        m
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::gathered)
    }
}

/// The seed a stored tensor name belongs to and the network it is in (`actor`, `critic`, …),
/// for the guard's messages.
pub(crate) fn owner(name: &str) -> (usize, &str) {
    let (i, rest) = split_name(name);
    (i, rest.split('.').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip_through_their_seed() {
        for i in [0, 1, 7, 31] {
            let name = format!("{}actor.layers.0.weight", prefix(i));
            assert_eq!(split_name(&name), (i, "actor.layers.0.weight"));
            assert_eq!(owner(&name), (i, "actor"));
        }
        // A name that only looks like a prefix stays seed 0's.
        assert_eq!(split_name("seedling/x"), (0, "seedling/x"));
    }
}
