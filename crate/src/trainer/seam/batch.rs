//! Several seeds' RFM updates in **the same kernels** (WebGPU): the fused update of
//! [`super::burn::BurnNets`] takes the seeds as rows. Each seed makes an [`UpdateJob`] of its
//! draws (from its own random stream, in the host pipeline's order), its batch and its networks
//! (tensor handles, no copies); [`run_update_jobs`] stacks the jobs' networks (`[N × P]`, one
//! dispatch per six seeds per buffer), runs every step of the update once for all of them
//! (`fused::SeedRows`: seed `s`'s rows are the `s`-th block of each launch; the gradient sums,
//! the step's stats and Adam's clip factor stay per seed) and reads back **once**; each seed
//! then stages its own part ([`JobOut`]). One job is the one-seed update, the same code.
//!
//! [`SeedGather`] collects the jobs of one session step: the seeds step concurrently
//! (`session::seeds`), each seed's update submits its job and waits; when every seed still
//! stepping has submitted, the one polled next runs the batch for all. A seed whose step ends
//! without an update (a fault, an error) leaves the round, so nobody waits on it. Outside a
//! round (one seed stepped alone) a job runs by itself.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Poll, Waker};

use burn::tensor::Tensor;

use super::{PosteriorStepError, PosteriorStepOut, StepLoss, UpdateOut, UpdateSpec};
use crate::device::{ComputeDevice, DeviceError, read_f32};
use crate::nets::critic::Critic;
use crate::nets::fused::{self, FusedAdam, FusedCritic, FusedPolicy, SeedRows};
use crate::nets::{Policy, PolicyConfig};
use crate::replay::Batch;
use crate::rfm::posterior::mean_ess;

/// One seed's part of a fused RFM update: what it drew and what its networks are now.
pub(crate) struct UpdateJob {
    pub batch: Batch,
    /// The sampler's `y0` (`[2n·c·d]`: the states' candidates, then the next states').
    pub y0: Vec<f32>,
    /// One uniform per picked state (`[2n]`: states, then next states).
    pub u: Vec<f32>,
    /// The points' times `[n]` and the path's noise `[n·d]`.
    pub t: Vec<f32>,
    pub e: Vec<f32>,
    /// The posterior's candidates' normals `[n·k·d]` (empty when `checked` failed).
    pub z: Vec<f32>,
    /// The proposal's and estimator's checks (made before `z` was drawn).
    pub checked: Result<(), String>,
    pub policy: FusedPolicy,
    pub policy_module: Policy,
    pub actor_opt: FusedAdam,
    pub critic: FusedCritic,
    pub critic_module: Critic,
    pub critic_opt: FusedAdam,
    pub target: FusedCritic,
}

/// What a seed stages from its part of [`run_update_jobs`].
pub(crate) struct JobOut {
    /// The stepped critic (its module's tensors not replaced: the packing is the critic, as the
    /// seam's `fused_critic` always is), its optimiser and its packing.
    pub critic: (Critic, FusedAdam, FusedCritic),
    /// The stepped policy and its optimiser (`None` when the posterior's checks failed).
    pub actor: Option<(Policy, FusedAdam)>,
    pub out: UpdateOut,
}

/// The settings [`run_update_jobs`] needs besides the spec.
pub(crate) struct Shapes<'a> {
    pub policy: &'a PolicyConfig,
    pub lambda: f32,
    pub grad_clip: f32,
    pub obs: usize,
    pub act: usize,
}

/// `parts` concatenated: `jobs`' `f` in order.
fn cat_of<'j>(jobs: &'j [UpdateJob], f: impl Fn(&'j UpdateJob) -> &'j [f32]) -> Vec<f32> {
    jobs.iter().flat_map(|j| f(j).iter().copied()).collect()
}

/// Every seed's first half of `f`, then every seed's second half (the states' rows, then the
/// next states', as the sampler and the pick take them).
fn halves_of<'j>(jobs: &'j [UpdateJob], f: impl Fn(&'j UpdateJob) -> &'j [f32]) -> Vec<f32> {
    let mut out = Vec::new();
    for second in [false, true] {
        for j in jobs {
            let v = f(j);
            let (a, b) = v.split_at(v.len() / 2);
            out.extend_from_slice(if second { b } else { a });
        }
    }
    out
}

/// Steps (1)–(5) of the RFM update for every job at once, on the device, read back once
/// (module docs). The jobs share `spec` and `shapes` (one experiment's seeds); a device error
/// fails them all.
pub(crate) async fn run_update_jobs(
    jobs: Vec<UpdateJob>,
    spec: &UpdateSpec<'_>,
    shapes: &Shapes<'_>,
    device: &ComputeDevice,
) -> Result<Vec<JobOut>, DeviceError> {
    let seeds = jobs.len();
    let post = &spec.posterior;
    let (n, c, k) = (jobs[0].batch.n, spec.candidates, post.k);
    let (o, d) = (shapes.obs, shapes.act);
    let dev = device.device();
    let rows = |per: usize| SeedRows::new(seeds, per);
    // Every job's inputs, seed by seed (the sampler's and the pick's: states, then next states).
    let mut s = Vec::with_capacity(2 * seeds * n * c * o);
    for next in [false, true] {
        for j in &jobs {
            let b = &j.batch;
            s.extend(crate::trainer::repeat_rows(
                if next { &b.next_obs } else { &b.obs },
                o,
                c,
            ));
        }
    }
    let y0 = halves_of(&jobs, |j| &j.y0);
    let u = halves_of(&jobs, |j| &j.u);
    let (t, e, z) = (
        cat_of(&jobs, |j| &j.t),
        cat_of(&jobs, |j| &j.e),
        cat_of(&jobs, |j| &j.z),
    );
    let (obs, act) = (
        cat_of(&jobs, |j| &j.batch.obs),
        cat_of(&jobs, |j| &j.batch.act),
    );
    let (rew, next_obs) = (
        cat_of(&jobs, |j| &j.batch.rew),
        cat_of(&jobs, |j| &j.batch.next_obs),
    );
    let not_done: Vec<f32> = jobs
        .iter()
        .flat_map(|j| j.batch.done.iter().map(|x| spec.gamma * (1.0 - x)))
        .collect();
    let s_k: Vec<f32> = jobs
        .iter()
        .flat_map(|j| crate::trainer::repeat_rows(&j.batch.obs, o, k))
        .collect();
    let checked = jobs[0].checked.clone();
    let policy = FusedPolicy::stack(&jobs.iter().map(|j| &j.policy).collect::<Vec<_>>());
    let critic = FusedCritic::stack(&jobs.iter().map(|j| &j.critic).collect::<Vec<_>>());
    let target = FusedCritic::stack(&jobs.iter().map(|j| &j.target).collect::<Vec<_>>());
    let mut critic_opts = Vec::with_capacity(seeds);
    let mut critic_modules = Vec::with_capacity(seeds);
    let mut actor_opts = Vec::with_capacity(seeds);
    let mut policies = Vec::with_capacity(seeds);
    for j in jobs {
        critic_opts.push(j.critic_opt);
        critic_modules.push(j.critic_module);
        actor_opts.push(j.actor_opt);
        policies.push(j.policy_module);
    }

    // (1) + (2): the scored samples, the pick, x_t, the actor's rows, a'.
    let sampled = fused::sample(&policy, Some(&critic), y0, Some(s), rows(n * c), dev);
    let picked = fused::pick(sampled, (&u, &t, &e), &obs, post.path, c, post.lambda, dev);
    // (3): the TD targets of the target critics and the critic steps, staged.
    let td = Some((rew, not_done));
    let y = fused::q_min(&target, next_obs, picked.a_next, td, (o, d), rows(n), dev);
    let (grads, sums) = fused::critic_grads(&critic, obs, act, y, (o, d), rows(n), dev);
    let critic_stats = fused::seeds_step_stats(sums, n, shapes.grad_clip, seeds);
    // The critics stay packed (the seam unpacks one when a view or an export needs it).
    let (stepped, staged_all) = FusedAdam::step_seeds(
        &mut critic_opts.iter_mut().collect::<Vec<_>>(),
        spec.critic_lr,
        critic_modules,
        (grads, critic_stats.clone()),
        false,
    );
    let staged_all = FusedCritic::from_packed(staged_all, &stepped[0].0.config);
    let critics = stepped.into_iter().zip(critic_opts).map(|((m, p), opt)| {
        let packed = FusedCritic::from_packed(p, &m.config);
        (m, opt, packed)
    });
    if let Err(e) = checked {
        // Nothing to score: read the critic steps alone.
        let losses = step_losses(&read_f32(critic_stats).await?)?;
        return Ok(critics
            .zip(losses)
            .map(|(critic, loss)| JobOut {
                critic,
                actor: None,
                out: UpdateOut {
                    critic: loss,
                    posterior: Err(PosteriorStepError::Estimator(e.clone())),
                },
            })
            .collect());
    }
    // (4): the candidates, their Q and ∇ₐQ by the staged critics, the posteriors.
    let cand = fused::candidates(picked.xt.clone(), &t, z, (post.path, post.proposal), k, dev);
    let qg = fused::q_and_grad(&staged_all, s_k, cand.a, (o, d), rows(n * k), dev);
    let settings =
        fused::PosteriorSettings::new(post.estimator, post.lambda, post.regression, cand.with_iw);
    let target = fused::posterior(
        qg,
        (cand.x0, cand.x1, cand.log_iw),
        picked.xt,
        &t,
        post.path,
        k,
        settings,
        dev,
    );
    // (5): the actor steps on those targets, staged.
    let packed: Vec<Tensor<1>> = actor_opts
        .iter()
        .zip(&policies)
        .map(|(opt, p)| opt.params_of(p))
        .collect();
    let packed = fused::concat(packed);
    let cond = shapes.policy.conditioning_rows(&t, shapes.lambda);
    let (grads, sums) = fused::actor_grads(
        shapes.policy,
        packed,
        picked.rows,
        cond,
        target.clone(),
        rows(n),
        dev,
    );
    let actor_stats = fused::seeds_step_stats(sums, n * d, shapes.grad_clip, seeds);
    let (actors, _) = FusedAdam::step_seeds(
        &mut actor_opts.iter_mut().collect::<Vec<_>>(),
        spec.actor_lr,
        policies,
        (grads, actor_stats.clone()),
        true,
    );
    // The one readback: every seed's stats and posterior.
    let v = read_f32(fused::concat(vec![critic_stats, actor_stats, target])).await?;
    let (cs, rest) = v.split_at(seeds * fused::STATS);
    let (as_, post_v) = rest.split_at(seeds * fused::STATS);
    let (critic_losses, actor_losses) = (step_losses(cs)?, step_losses(as_)?);
    let all = seeds * n;
    if post_v.len() != all * d + 2 * all {
        // posterior_out's message for the whole.
        fused::posterior_out(post_v, all, d).map_err(DeviceError::Readback)?;
    }
    // Seed i's posterior: its targets, ESS and non-finite Q flags, as one seed's would read.
    let posterior_of = |i: usize| {
        let (tg, ess) = (&post_v[..all * d], &post_v[all * d..all * d + all]);
        let bad = &post_v[all * d + all..];
        let mut v = tg[i * n * d..(i + 1) * n * d].to_vec();
        v.extend_from_slice(&ess[i * n..(i + 1) * n]);
        v.extend_from_slice(&bad[i * n..(i + 1) * n]);
        fused::posterior_out(&v, n, d).map_err(DeviceError::Readback)
    };
    let outs = (0..seeds)
        .map(posterior_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(critics
        .zip(actors.into_iter().zip(actor_opts))
        .zip(critic_losses.into_iter().zip(actor_losses))
        .zip(outs)
        .map(|(((critic, ((policy, _), opt)), (closs, aloss)), out)| {
            let posterior = if let Some(q) = out.bad_q {
                Err(PosteriorStepError::NonFiniteQ(q))
            } else if let Some(&v) = out.target.iter().find(|v| !v.is_finite()) {
                Err(PosteriorStepError::NonFiniteTarget(v))
            } else {
                Ok(PosteriorStepOut {
                    actor: aloss,
                    mean_ess: mean_ess(&out.ess),
                })
            };
            JobOut {
                critic,
                actor: Some((policy, opt)),
                out: UpdateOut {
                    critic: closs,
                    posterior,
                },
            }
        })
        .collect())
}

/// Each seed's loss and norm from its stats read back (`fused::STATS` floats each).
fn step_losses(stats: &[f32]) -> Result<Vec<StepLoss>, DeviceError> {
    stats
        .chunks(fused::STATS)
        .map(|s| {
            let (loss, norm) = fused::stats_loss_and_norm(s).map_err(DeviceError::Readback)?;
            Ok(StepLoss { loss, norm })
        })
        .collect()
}

/// The seeds of one experiment whose fused updates run as one (module docs): a handle each
/// seed's networks keep with their index. Single-threaded (the session's seeds are futures
/// of one task).
#[derive(Clone)]
pub struct SeedGather(Rc<RefCell<Gather>>);

struct Gather {
    /// Whether the session is stepping every seed now (a round).
    open: bool,
    /// Per seed: still stepping in this round.
    active: Vec<bool>,
    jobs: Vec<Option<UpdateJob>>,
    results: Vec<Option<Result<JobOut, DeviceError>>>,
    /// A seed is running the batch.
    leading: bool,
    /// How many jobs the last batch ran (tests).
    last_batch: usize,
    wakers: Vec<Waker>,
}

impl Gather {
    /// Every seed still stepping has submitted its job (and one has).
    fn complete(&self) -> bool {
        self.jobs.iter().any(Option::is_some)
            && self
                .active
                .iter()
                .zip(&self.jobs)
                .all(|(&on, job)| !on || job.is_some())
    }

    fn wake_all(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

impl SeedGather {
    /// A gather of `n` seeds, no round open.
    pub fn new(n: usize) -> Self {
        Self(Rc::new(RefCell::new(Gather {
            open: false,
            active: vec![false; n],
            jobs: (0..n).map(|_| None).collect(),
            results: (0..n).map(|_| None).collect(),
            leading: false,
            last_batch: 0,
            wakers: Vec::new(),
        })))
    }

    /// Every seed starts a step: their updates wait for each other until each has submitted
    /// or left.
    pub fn open_round(&self) {
        let mut g = self.0.borrow_mut();
        g.open = true;
        g.active.iter_mut().for_each(|a| *a = true);
        // Nothing is left of an earlier round whose futures were dropped halfway.
        g.jobs.iter_mut().for_each(|j| *j = None);
        g.results.iter_mut().for_each(|r| *r = None);
        g.leading = false;
    }

    /// The step is over for every seed: an update now runs alone.
    pub fn close_round(&self) {
        let mut g = self.0.borrow_mut();
        g.open = false;
        g.active.iter_mut().for_each(|a| *a = false);
    }

    /// Seed `i`'s step is over (done, or failed): the others no longer wait for it.
    pub fn leave(&self, i: usize) {
        let mut g = self.0.borrow_mut();
        g.active[i] = false;
        g.wake_all();
    }

    /// How many seeds' jobs the last batch ran together (0: none yet).
    pub fn last_batch(&self) -> usize {
        self.0.borrow().last_batch
    }

    /// Whether seed `i`'s update now joins the others' (a round is open and `i` is in it).
    pub(crate) fn joins(&self, i: usize) -> bool {
        let g = self.0.borrow();
        g.open && g.active.get(i).copied().unwrap_or(false)
    }

    /// Seed `i`'s job, run with the others' of this round: the seed polled when the round is
    /// complete runs [`run_update_jobs`] for every job submitted (`spec` and `shapes` are the
    /// same for every seed of the experiment) and hands each seed its part.
    pub(crate) async fn submit(
        &self,
        i: usize,
        job: UpdateJob,
        spec: &UpdateSpec<'_>,
        shapes: &Shapes<'_>,
        device: &ComputeDevice,
    ) -> Result<JobOut, DeviceError> {
        self.0.borrow_mut().jobs[i] = Some(job);
        loop {
            let lead = std::future::poll_fn(|cx| {
                let mut g = self.0.borrow_mut();
                if let Some(out) = g.results[i].take() {
                    return Poll::Ready(Err(out));
                }
                if !g.leading && g.complete() {
                    g.leading = true;
                    return Poll::Ready(Ok(()));
                }
                g.wakers.push(cx.waker().clone());
                Poll::Pending
            })
            .await;
            if let Err(out) = lead {
                return out;
            }
            let (who, jobs): (Vec<usize>, Vec<UpdateJob>) = {
                let mut g = self.0.borrow_mut();
                g.jobs
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(k, j)| j.take().map(|j| (k, j)))
                    .unzip()
            };
            self.0.borrow_mut().last_batch = jobs.len();
            let outs = run_update_jobs(jobs, spec, shapes, device).await;
            let mut g = self.0.borrow_mut();
            match outs {
                Ok(outs) => {
                    for (k, out) in who.into_iter().zip(outs) {
                        g.results[k] = Some(Ok(out));
                    }
                }
                Err(e) => {
                    for k in who {
                        g.results[k] = Some(Err(e.clone()));
                    }
                }
            }
            g.leading = false;
            g.wake_all();
        }
    }
}
