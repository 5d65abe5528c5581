//! Browser bindings (wasm32 only): every `#[wasm_bindgen]` export of the crate, and nothing
//! else — glue, no algorithm logic. Values cross as serde types: into Rust via
//! `serde-wasm-bindgen`, out to JS as JSON parsed by the engine ([`to_js`]); the TypeScript
//! types of both sides are generated from the same serde types (`crate::contract`). Entry
//! points return `Result<_, JsError>` so the worker reports failures as messages.
//!
//! | export | does |
//! |---|---|
//! | `moduleInfo` | which build this is (WebGPU runtime, relaxed-SIMD kernels, threads) |
//! | `initThreadPool` | (threaded module only) start the rayon pool of Web Workers |
//! | `calibrate` | updates/s of an experiment on one backend (what `auto` compares) |
//! | `selectDevice`, `runProbe`, `runBench` | backend selection, the pipeline probe, the in-page benchmark |
//! | `defaultSpec`, `describeSpec`, `validateSpec`, `encodeShare`, `decodeShare` | the experiment spec |
//! | `Session` (`create`, `open`, …) | one running experiment |

use wasm_bindgen::prelude::*;

use crate::device::{BackendChoice, ComputeDevice};
use crate::probe::{ProbeConfig, run_probe};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, JsError> {
    // Through a JSON string and the engine's `JSON.parse`: one boundary crossing instead of
    // one per value. serde-wasm-bindgen's value-by-value serializer took 1.6 s for one density
    // view (3,200 floats) in Chromium against 2 ms this way (docs/benchmarks.md). f32s arrive
    // as their shortest decimal form (0.1, not 0.10000000149…); non-finite numbers would arrive
    // as null, and none are sent (faults travel as messages).
    let s = serde_json::to_string(v).map_err(js_err)?;
    js_sys::JSON::parse(&s)
        .map_err(|e| JsError::new(&format!("could not hand a reply to JS: {e:?}")))
}

/// Which build of the core this is: `{ webgpu, relaxedSimd, threads }` (`threads`: the size of
/// the pool, 1 without one). The page loads a CPU-only module first and the WebGPU module only
/// when WebGPU is chosen.
#[wasm_bindgen(js_name = moduleInfo)]
pub fn module_info() -> Result<JsValue, JsError> {
    #[cfg(feature = "threads")]
    let threads = rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    let threads = 1;
    to_js(&serde_json::json!({
        "webgpu": crate::device::HAS_WEBGPU,
        "relaxedSimd": cfg!(feature = "relaxed-simd"),
        "threads": threads,
    }))
}

/// The threaded module's pool: `initThreadPool(n)` starts `n` Web Workers sharing this module's
/// memory (wasm-bindgen-rayon); the host nets' row blocks then run on them.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Select a backend (`"auto" | "cpu" | "webgpu"`) and describe it.
#[wasm_bindgen(js_name = selectDevice)]
pub async fn select_device(backend: String) -> Result<JsValue, JsError> {
    let choice: BackendChoice = backend.parse().map_err(js_err)?;
    let device = ComputeDevice::select(choice).await.map_err(js_err)?;
    to_js(device.info())
}

/// Run the pipeline probe (small MLP, Adam) on the chosen backend; returns a `ProbeReport`.
#[wasm_bindgen(js_name = runProbe)]
pub async fn run_probe_js(backend: String, config: JsValue) -> Result<JsValue, JsError> {
    let choice: BackendChoice = backend.parse().map_err(js_err)?;
    let cfg: ProbeConfig = if config.is_undefined() || config.is_null() {
        ProbeConfig::default()
    } else {
        serde_wasm_bindgen::from_value(config).map_err(js_err)?
    };
    let device = ComputeDevice::select(choice).await.map_err(js_err)?;
    let report = run_probe(&device, &cfg).await.map_err(js_err)?;
    to_js(&report)
}

/// Updates per second of the experiment `config` (a spec) on `backend` over about `seconds`
/// (after one untimed update): `{ perS, items, seconds }`. The worker's `auto` runs it on both
/// backends when the browser has a hardware adapter and trains on the faster.
#[wasm_bindgen]
pub async fn calibrate(config: JsValue, backend: String, seconds: f64) -> Result<JsValue, JsError> {
    let choice: BackendChoice = backend.parse().map_err(js_err)?;
    let spec: crate::spec::ExperimentSpec =
        serde_wasm_bindgen::from_value(config).map_err(js_err)?;
    spec.validate().map_err(js_err)?;
    let device = ComputeDevice::select(choice).await.map_err(js_err)?;
    let rate = crate::throughput::calibrate(&spec, device, seconds)
        .await
        .map_err(|e| JsError::new(&e))?;
    to_js(&rate)
}

/// The in-page benchmark: the [`crate::throughput::Throughput`] of the `playground` or
/// `released` preset on `cpu` / `webgpu`, on the pendulum's shapes; `measure` is a
/// comma-separated subset of `updates,actions,estimator`; `overrides`, a JSON object of spec
/// fields patched onto the preset (as `rfm bench --overrides`).
#[wasm_bindgen(js_name = runBench)]
pub async fn run_bench(
    backend: String,
    config: String,
    seconds: f64,
    measure: String,
    seeds: Option<usize>,
    overrides: Option<String>,
) -> Result<JsValue, JsError> {
    let choice: BackendChoice = backend.parse().map_err(js_err)?;
    let device = ComputeDevice::select(choice).await.map_err(js_err)?;
    let err = |e: String| JsError::new(&e);
    let cfg =
        crate::spec::resolve::named_train_config(&config, overrides.as_deref()).map_err(err)?;
    let which: Vec<&str> = measure.split(',').map(str::trim).collect();
    let env = crate::envs::EnvName::Pendulum;
    let r = crate::throughput::run(
        &config,
        &cfg,
        device,
        env,
        seconds,
        &which,
        seeds.unwrap_or(1),
    )
    .await
    .map_err(err)?;
    to_js(&r)
}

// ------------------------------------------------------------------------------------------
// The experiment spec and one `Session` handle.
// ------------------------------------------------------------------------------------------

use std::cell::RefCell;
use std::rc::Rc;

use crate::session::{FaultKind, Session};
use crate::spec::{self, ExperimentSpec, FieldError, Mode};

fn parse_spec(config: JsValue) -> Result<ExperimentSpec, Vec<FieldError>> {
    let unreadable = |e: String| {
        vec![FieldError {
            field: "config".to_string(),
            value: String::new(),
            range: "an experiment spec object".to_string(),
            message: format!("the settings could not be read: {e}"),
        }]
    };
    let value: serde_json::Value =
        serde_wasm_bindgen::from_value(config).map_err(|e| unreadable(e.to_string()))?;
    ExperimentSpec::from_value(value).map_err(|e| unreadable(e.to_string()))
}

/// The default experiment of `mode` (`"rl"` or `"sampler"`).
#[wasm_bindgen(js_name = defaultSpec)]
pub fn default_spec(mode: String) -> Result<JsValue, JsError> {
    let mode: Mode = serde_json::from_value(serde_json::Value::String(mode)).map_err(js_err)?;
    to_js(&ExperimentSpec::defaults(mode))
}

/// Every field of the spec: label, help, range or options, where it applies (`FieldInfo[]`).
#[wasm_bindgen(js_name = describeSpec)]
pub fn describe_spec() -> Result<JsValue, JsError> {
    to_js(&spec::fields::describe())
}

/// Every problem of `config` as `FieldError[]` (empty when it is usable).
#[wasm_bindgen(js_name = validateSpec)]
pub fn validate_spec(config: JsValue) -> Result<JsValue, JsError> {
    let problems = match parse_spec(config) {
        Ok(cfg) => cfg.problems(),
        Err(e) => e,
    };
    to_js(&problems)
}

/// The share-link fragment of a valid spec.
#[wasm_bindgen(js_name = encodeShare)]
pub fn encode_share(config: JsValue) -> Result<String, JsError> {
    let cfg = parse_spec(config).map_err(|e| js_err(&e[0]))?;
    cfg.validate().map_err(js_err)?;
    Ok(spec::encode_share(&cfg))
}

/// The spec in a share-link fragment, or an error saying why the link cannot be opened.
#[wasm_bindgen(js_name = decodeShare)]
pub fn decode_share(fragment: &str) -> Result<JsValue, JsError> {
    let cfg = spec::decode_share(fragment).map_err(js_err)?;
    to_js(&cfg)
}

/// One running experiment. Methods return promises; the worker keeps one call in flight, and a
/// second concurrent call is refused with "busy" instead of racing.
#[wasm_bindgen(js_name = Session)]
pub struct SessionHandle {
    inner: Rc<RefCell<Session>>,
}

fn busy() -> JsError {
    JsError::new("the session is busy with another request")
}

impl SessionHandle {
    fn wrap(session: Session) -> Self {
        Self {
            inner: Rc::new(RefCell::new(session)),
        }
    }
}

#[wasm_bindgen(js_class = Session)]
impl SessionHandle {
    /// Validate `config`, pick the backend (`"auto" | "cpu" | "webgpu"`) and build the session.
    pub async fn create(config: JsValue, backend: String) -> Result<SessionHandle, JsError> {
        let cfg = parse_spec(config).map_err(|e| js_err(&e[0]))?;
        let choice: BackendChoice = backend.parse().map_err(js_err)?;
        let device = ComputeDevice::select(choice).await.map_err(js_err)?;
        Ok(Self::wrap(Session::new(cfg, device).map_err(js_err)?))
    }

    /// A session continuing the experiment of a checkpoint file (its spec, weights and step
    /// count), on the chosen backend.
    pub async fn open(bytes: Vec<u8>, backend: String) -> Result<SessionHandle, JsError> {
        let choice: BackendChoice = backend.parse().map_err(js_err)?;
        let device = ComputeDevice::select(choice).await.map_err(js_err)?;
        Ok(Self::wrap(Session::open(&bytes, device).map_err(js_err)?))
    }

    /// `DeviceInfo` of the backend in use.
    pub fn device(&self) -> Result<JsValue, JsError> {
        to_js(self.inner.try_borrow().map_err(|_| busy())?.device().info())
    }

    /// The (validated) spec this session runs.
    pub fn spec(&self) -> Result<JsValue, JsError> {
        to_js(self.inner.try_borrow().map_err(|_| busy())?.config())
    }

    /// Steps done so far.
    pub fn steps(&self) -> Result<usize, JsError> {
        Ok(self.inner.try_borrow().map_err(|_| busy())?.steps())
    }

    /// Which panels apply (`PanelStatus[]`).
    pub fn panels(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.try_borrow().map_err(|_| busy())?.panels())
    }

    /// Run `n` steps; resolves to a `StepBatch`.
    pub fn step(&self, n: usize) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut s = inner.try_borrow_mut().map_err(|_| busy())?;
            #[allow(clippy::await_holding_refcell_ref)] // one call at a time; others get "busy"
            let r = s.step(n).await;
            Ok(to_js(&r)?)
        })
    }

    /// The policy density beside its target, of seed index `seed` (0 when absent) or, with
    /// `all_seeds`, of every seed pooled; resolves to a `DensityView`.
    pub fn density(
        &self,
        samples: Option<usize>,
        state: Option<Vec<f64>>,
        seed: Option<usize>,
        all_seeds: Option<bool>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        let view = crate::contract::DensityQuery {
            state: None,
            samples: None,
            seed,
            all_seeds,
        }
        .seed_view();
        wasm_bindgen_futures::future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| busy())?;
            #[allow(clippy::await_holding_refcell_ref)]
            let r = s.density_of(samples, state, view).await.map_err(js_err)?;
            Ok(to_js(&r)?)
        })
    }

    /// `count` flow paths from noise to action; resolves to `FlowPaths`.
    pub fn paths(&self, count: usize, state: Option<Vec<f64>>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| busy())?;
            #[allow(clippy::await_holding_refcell_ref)]
            let r = s.paths(count, state).await.map_err(js_err)?;
            Ok(to_js(&r)?)
        })
    }

    /// Estimator variance vs t; resolves to a `VarianceCurve`.
    pub fn variance(&self, state: Option<Vec<f64>>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| busy())?;
            #[allow(clippy::await_holding_refcell_ref)]
            let r = s.variance(state).await.map_err(js_err)?;
            Ok(to_js(&r)?)
        })
    }

    /// The weights as a checkpoint file's bytes; resolves to a `Uint8Array`.
    #[wasm_bindgen(js_name = saveWeights)]
    pub fn save_weights(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| busy())?;
            #[allow(clippy::await_holding_refcell_ref)]
            let bytes = s.save_weights().await.map_err(js_err)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Load compatible weights into this session's experiment and continue at the file's
    /// step count (the last good weights carried into a changed setting); returns that count.
    #[wasm_bindgen(js_name = resumeFrom)]
    pub fn resume_from(&self, bytes: &[u8]) -> Result<usize, JsError> {
        let mut s = self.inner.try_borrow_mut().map_err(|_| busy())?;
        s.resume_from(bytes).map_err(js_err)
    }

    /// After a step reported `deviceLost`: rebuild the experiment on the CPU from the last
    /// snapshot; returns the step count it continues from.
    #[wasm_bindgen(js_name = fallBackToCpu)]
    pub fn fall_back_to_cpu(&self) -> Result<usize, JsError> {
        let mut s = self.inner.try_borrow_mut().map_err(|_| busy())?;
        s.fall_back_to_cpu().map_err(js_err)
    }

    /// Test hook: make the next `step` meet a fault (`"nan-q" | "nan-weights" |
    /// "ess-collapse" | "exploding-targets" | "device-lost"`).
    #[doc(hidden)]
    #[wasm_bindgen(js_name = injectFault)]
    pub fn inject_fault(&self, kind: &str) -> Result<(), JsError> {
        let kind: FaultKind = kind.parse().map_err(js_err)?;
        let mut s = self.inner.try_borrow_mut().map_err(|_| busy())?;
        s.inject_fault(kind).map_err(js_err)
    }
}
