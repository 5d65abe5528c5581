//! The page ↔ worker ↔ wasm contract: the worker's messages ([`Request`], [`Reply`]) and the
//! list of every serde type that crosses to JavaScript. `web/src/generated/contract.ts` is
//! generated from these types by ts-rs (`Option<T>` becomes `T | null`, so a view that forgets
//! a null is a type error), and a test fails when the checked-in file differs from what the
//! Rust types produce. Regenerate with
//!
//! ```sh
//! RFM_WRITE_GENERATED=1 cargo test -p rfm-playground contract
//! ```
//!
//! Rust never sends these messages itself (the worker is TypeScript); they live here so both
//! sides have one definition. Every request carries an `id` its reply echoes; each operation
//! has one name, the same for the request and its reply.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::device::{BackendChoice, DeviceInfo};
use crate::probe::{ProbeConfig, ProbeReport};
use crate::session::{DensityView, FaultKind, FlowPaths, PanelStatus, StepBatch, VarianceCurve};
use crate::spec::fields::FieldInfo;
use crate::spec::{ExperimentSpec, FieldError, Mode};

/// Where to look at the density. RL: an internal env state (pendulum `[θ, θdot]`, mountain car
/// `[position, velocity]`, multigoal `[x, y]`); sampler: none.
#[derive(Clone, Debug, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DensityQuery {
    #[ts(optional)]
    pub state: Option<Vec<f64>>,
    /// Policy samples to histogram (per seed).
    #[ts(optional)]
    pub samples: Option<usize>,
    /// Which seed to show (index; 0, the spec's own seed, when absent).
    #[ts(optional)]
    pub seed: Option<usize>,
    /// Pool every seed instead (the spec's `seeds` > 1): mean histograms, each seed's KL.
    #[ts(optional)]
    pub all_seeds: Option<bool>,
}

impl DensityQuery {
    /// The seeds this query asks for.
    pub fn seed_view(&self) -> crate::session::SeedView {
        use crate::session::SeedView;
        if self.all_seeds == Some(true) {
            SeedView::All
        } else {
            SeedView::One(self.seed.unwrap_or(0))
        }
    }
}

/// After `step`: the session's batch plus what the worker measured.
#[derive(Clone, Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    #[serde(flatten)]
    pub batch: StepBatch,
    /// Steps per second over this batch.
    pub updates_per_sec: f64,
    /// Set when the worker moved the experiment to the CPU after a lost device.
    #[ts(optional)]
    pub fallback: Option<Fallback>,
}

/// The new device and the step the experiment went on from.
#[derive(Clone, Debug, Serialize, TS)]
pub struct Fallback {
    pub device: DeviceInfo,
    pub step: usize,
}

/// What the page asks the worker.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Request {
    /// Build a session for `config` on `backend` (replaces the running one).
    Init {
        id: u32,
        config: ExperimentSpec,
        backend: BackendChoice,
    },
    /// Build a session from a checkpoint file (its spec, weights and step count).
    Open {
        id: u32,
        #[ts(type = "ArrayBuffer")]
        bytes: Vec<u8>,
        backend: BackendChoice,
    },
    /// Run `steps` steps.
    Step {
        id: u32,
        steps: usize,
    },
    Density {
        id: u32,
        query: DensityQuery,
    },
    Paths {
        id: u32,
        count: usize,
        #[ts(optional)]
        state: Option<Vec<f64>>,
    },
    Variance {
        id: u32,
        #[ts(optional)]
        state: Option<Vec<f64>>,
    },
    /// Every problem of a (possibly malformed) spec.
    Validate {
        id: u32,
        #[ts(type = "unknown")]
        config: serde_json::Value,
    },
    EncodeShare {
        id: u32,
        config: ExperimentSpec,
    },
    DecodeShare {
        id: u32,
        fragment: String,
    },
    /// The default spec of `mode`.
    Defaults {
        id: u32,
        mode: Mode,
    },
    /// Every field's description (labels, ranges, options).
    Describe {
        id: u32,
    },
    SaveWeights {
        id: u32,
    },
    /// Load compatible weights into the running experiment and continue at their step count.
    Resume {
        id: u32,
        #[ts(type = "ArrayBuffer")]
        bytes: Vec<u8>,
    },
    /// Test hook: the next `step` meets this fault.
    InjectFault {
        id: u32,
        kind: FaultKind,
    },
    Probe {
        id: u32,
        backend: BackendChoice,
        #[ts(optional, as = "Option<ProbeConfig>")]
        config: Option<ProbeConfig>,
    },
}

/// What the worker answers (each reply echoes its request's `id` and type).
#[derive(Clone, Debug, Serialize, TS)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Reply {
    /// The wasm core is loaded: `module` is which CPU module (`cpu` = plain SIMD, `relaxed` =
    /// relaxed SIMD; the WebGPU module loads later, when WebGPU is used).
    Ready {
        module: String,
    },
    /// Sent every second while the worker lives (the page's watchdog notices a dead worker).
    Heartbeat,
    Init {
        id: u32,
        device: DeviceInfo,
        config: ExperimentSpec,
        panels: Vec<PanelStatus>,
    },
    Open {
        id: u32,
        device: DeviceInfo,
        config: ExperimentSpec,
        panels: Vec<PanelStatus>,
        step: usize,
    },
    Step {
        id: u32,
        report: StepReport,
    },
    Density {
        id: u32,
        density: DensityView,
    },
    Paths {
        id: u32,
        paths: FlowPaths,
    },
    Variance {
        id: u32,
        curve: VarianceCurve,
    },
    Validate {
        id: u32,
        errors: Vec<FieldError>,
    },
    EncodeShare {
        id: u32,
        fragment: String,
    },
    DecodeShare {
        id: u32,
        config: ExperimentSpec,
    },
    Defaults {
        id: u32,
        config: ExperimentSpec,
    },
    Describe {
        id: u32,
        fields: Vec<FieldInfo>,
    },
    SaveWeights {
        id: u32,
        #[ts(type = "ArrayBuffer")]
        bytes: Vec<u8>,
    },
    Resume {
        id: u32,
        step: usize,
    },
    InjectFault {
        id: u32,
    },
    Probe {
        id: u32,
        report: ProbeReport,
        millis: f64,
    },
    Error {
        id: Option<u32>,
        message: String,
        #[ts(optional)]
        fields: Option<Vec<FieldError>>,
    },
}

/// The generated TypeScript: every contract type, in one file.
pub fn typescript() -> String {
    let cfg = ts_rs::Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust serde types by ts-rs (crate/src/contract.rs). Do not edit:\n\
         // regenerate with `RFM_WRITE_GENERATED=1 cargo test -p rfm-playground contract`.\n",
    );
    macro_rules! decls {
        ($($t:ty),* $(,)?) => {$(
            out.push('\n');
            if let Some(docs) = <$t as TS>::docs() {
                out.push_str(&docs);
            }
            out.push_str("export ");
            out.push_str(&<$t as TS>::decl(&cfg));
            out.push('\n');
        )*};
    }
    use crate::envs::{
        EnvName, EnvSnapshot, mountain_car::MountainCarSnapshot, multigoal::MultigoalSnapshot,
        pendulum::PendulumSnapshot,
    };
    use crate::spec::fields::{Control, FieldOption};
    decls!(
        Request,
        Reply,
        BackendChoice,
        crate::device::BackendKind,
        DeviceInfo,
        ExperimentSpec,
        Mode,
        EnvName,
        crate::spec::TargetName,
        crate::spec::Agent,
        crate::spec::ProposalName,
        crate::trainer::WarmupNoise,
        crate::nets::Parameterisation,
        crate::nets::Solver,
        FieldError,
        FieldInfo,
        FieldOption,
        Control,
        StepReport,
        Fallback,
        StepBatch,
        crate::session::MetricPoint,
        FaultKind,
        PanelStatus,
        crate::session::Panel,
        EnvSnapshot,
        PendulumSnapshot,
        MountainCarSnapshot,
        MultigoalSnapshot,
        DensityQuery,
        DensityView,
        crate::session::GridSpec,
        crate::session::Axis,
        FlowPaths,
        VarianceCurve,
        ProbeConfig,
        ProbeReport,
    );
    out
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    const GENERATED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../web/src/generated/contract.ts"
    );

    /// The checked-in TypeScript is what the Rust types produce. On a difference, run the
    /// command in the module docs and commit the file.
    #[test]
    fn contract_typescript_is_current() {
        let fresh = typescript();
        if std::env::var_os("RFM_WRITE_GENERATED").is_some() {
            std::fs::create_dir_all(std::path::Path::new(GENERATED).parent().unwrap()).unwrap();
            std::fs::write(GENERATED, &fresh).unwrap();
        }
        let on_disk = std::fs::read_to_string(GENERATED).unwrap_or_default();
        assert!(
            on_disk == fresh,
            "web/src/generated/contract.ts is out of date: run `RFM_WRITE_GENERATED=1 cargo test -p rfm-playground contract` and commit it"
        );
    }

    /// Every type a declaration names is declared in the file too.
    #[test]
    fn every_referenced_type_is_declared() {
        let ts = typescript();
        let declared: Vec<&str> = ts
            .lines()
            .filter_map(|l| l.strip_prefix("export type "))
            .filter_map(|l| l.split([' ', '<']).next())
            .collect();
        let cfg = ts_rs::Config::new().with_large_int("number");
        for dep in Request::dependencies(&cfg)
            .into_iter()
            .chain(Reply::dependencies(&cfg))
        {
            assert!(
                declared.contains(&dep.ts_name.as_str()),
                "{} is not declared",
                dep.ts_name
            );
        }
    }

    /// Nullable fields are `T | null` in TypeScript (the pendulum's `lastU` after a reset).
    #[test]
    fn options_are_nullable() {
        let ts = typescript();
        assert!(ts.contains("lastU: number | null"), "{ts}");
        assert!(ts.contains("lastForce: number | null"));
        assert!(ts.contains("evalReturn?: number"));
    }
}
