//! Compute-device selection and readback: the only module that knows how a burn [`Device`] is
//! made (WebGPU needs an async init before any tensor op in a browser) and how data comes back
//! (every readback is async, because synchronous reads panic on WebGPU).
//!
//! - [`ComputeDevice::select`] picks WebGPU or the flex CPU backend, falling back to the CPU
//!   with a stated reason when WebGPU is wanted but missing (`Auto`), or failing loudly when it is
//!   demanded (`Webgpu`).
//! - [`read_f32`] / [`read_f32_pair`] / [`read_scalar`] / [`read_scalar_pair`] read tensors back
//!   without blocking.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// WebGPU when it initialises, else the CPU.
    #[default]
    Auto,
    /// The flex CPU backend (pure Rust, deterministic).
    Cpu,
    /// WebGPU or an error; never a silent fallback.
    Webgpu,
}

impl FromStr for BackendChoice {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "webgpu" | "gpu" => Ok(Self::Webgpu),
            other => Err(DeviceError::UnknownBackend(other.to_string())),
        }
    }
}

/// What actually runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Webgpu,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Webgpu => "webgpu",
        })
    }
}

/// A description of the device for people: shown in the page and printed by the CLI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    pub kind: BackendKind,
    /// Adapter description, e.g. `"flex (pure-Rust CPU)"` or the WebGPU adapter's vendor/name.
    pub adapter: String,
    /// Why WebGPU was not used, when `Auto` fell back to the CPU.
    pub fallback_reason: Option<String>,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown backend '{0}' (expected auto, cpu or webgpu)")]
    UnknownBackend(String),
    #[error("WebGPU is not available: {0}")]
    WebGpuUnavailable(String),
    #[error("reading a tensor back from the device failed: {0}")]
    Readback(String),
}

/// A burn device plus what it is.
#[derive(Clone, Debug)]
pub struct ComputeDevice {
    device: Device,
    info: DeviceInfo,
}

impl ComputeDevice {
    /// The flex CPU backend. Always available; deterministic for a given seed.
    pub fn cpu() -> Self {
        Self {
            device: Device::flex(),
            info: DeviceInfo {
                kind: BackendKind::Cpu,
                adapter: cpu_adapter(),
                fallback_reason: None,
            },
        }
    }

    /// The WebGPU device, initialised asynchronously (once per page; later calls reuse it).
    pub async fn webgpu() -> Result<Self, DeviceError> {
        webgpu_impl().await
    }

    /// Select a device for `choice`. `Auto` falls back to the CPU and records why.
    pub async fn select(choice: BackendChoice) -> Result<Self, DeviceError> {
        match choice {
            BackendChoice::Cpu => Ok(Self::cpu()),
            BackendChoice::Webgpu => Self::webgpu().await,
            BackendChoice::Auto => match Self::webgpu().await {
                Ok(d) => Ok(d),
                Err(e) => {
                    let mut d = Self::cpu();
                    d.info.fallback_reason = Some(e.to_string());
                    Ok(d)
                }
            },
        }
    }

    /// The device for inference tensors (no gradient tape).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The same device with autodiff, for trainable modules.
    pub fn autodiff(&self) -> Device {
        self.device.clone().autodiff()
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    pub fn kind(&self) -> BackendKind {
        self.info.kind
    }

    /// Whether this device runs the crate's own CubeCL kernels (`nets::fused`): WebGPU in a
    /// build with the `webgpu` feature (the WebGPU module; native wgpu for the parity tests).
    pub fn runs_custom_kernels(&self) -> bool {
        cfg!(feature = "webgpu") && self.info.kind == BackendKind::Webgpu
    }
}

/// The CPU backend in words, with what this build adds in the browser (relaxed SIMD, threads).
fn cpu_adapter() -> String {
    let mut extras = String::new();
    if cfg!(all(target_arch = "wasm32", feature = "relaxed-simd")) {
        extras.push_str(", relaxed SIMD");
    }
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    extras.push_str(&format!(", {} threads", rayon::current_num_threads()));
    format!("flex (pure-Rust CPU{extras})")
}

#[cfg(all(not(target_arch = "wasm32"), not(feature = "webgpu")))]
async fn webgpu_impl() -> Result<ComputeDevice, DeviceError> {
    Err(DeviceError::WebGpuUnavailable(
        "native builds train on the CPU (flex); WebGPU is used in the browser (build with \
         --features webgpu for native wgpu)"
            .to_string(),
    ))
}

/// Native wgpu (Vulkan, Metal, DX12 or GL; e.g. Mesa's lavapipe on a machine without a GPU):
/// the WebGPU module's kernels outside the browser, for the parity tests and the benches.
#[cfg(all(not(target_arch = "wasm32"), feature = "webgpu"))]
#[allow(clippy::await_holding_lock)]
async fn webgpu_impl() -> Result<ComputeDevice, DeviceError> {
    use std::sync::Mutex;
    // burn registers one wgpu runtime per process; a second init is an error, so keep it, and
    // hold the lock through the init so that concurrent first callers (parallel tests) wait
    // for the one init instead of racing it. Native only, where callers block on this future.
    static WGPU: Mutex<Option<ComputeDevice>> = Mutex::new(None);
    let mut slot = WGPU.lock().expect("wgpu device lock");
    if let Some(d) = slot.clone() {
        return Ok(d);
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| DeviceError::WebGpuUnavailable(e.to_string()))?;
    let a = setup.adapter.get_info();
    let d = ComputeDevice {
        device,
        info: DeviceInfo {
            kind: BackendKind::Webgpu,
            adapter: format!("wgpu: {} ({:?}, {:?})", a.name, a.backend, a.device_type),
            fallback_reason: None,
        },
    };
    *slot = Some(d.clone());
    Ok(d)
}

/// The CPU-only module (the page's default download) has no WebGPU runtime: the page loads the
/// WebGPU module for that.
#[cfg(all(target_arch = "wasm32", not(feature = "webgpu")))]
async fn webgpu_impl() -> Result<ComputeDevice, DeviceError> {
    Err(DeviceError::WebGpuUnavailable(
        "this is the CPU-only module; WebGPU runs in the WebGPU module".to_string(),
    ))
}

/// Whether this build carries the WebGPU runtime (the page asks which module it loaded).
pub const HAS_WEBGPU: bool = cfg!(feature = "webgpu");

#[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
async fn webgpu_impl() -> Result<ComputeDevice, DeviceError> {
    use std::cell::RefCell;
    thread_local! {
        // burn registers one wgpu runtime per page; a second init is an error, so keep it.
        static WEBGPU: RefCell<Option<ComputeDevice>> = const { RefCell::new(None) };
    }
    if let Some(d) = WEBGPU.with(|w| w.borrow().clone()) {
        return Ok(d);
    }
    let gpu = js_sys::global()
        .dyn_ref::<js_sys::Object>()
        .and_then(|g| js_sys::Reflect::get(g, &"navigator".into()).ok())
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .filter(|g| !g.is_undefined() && !g.is_null());
    if gpu.is_none() {
        return Err(DeviceError::WebGpuUnavailable(
            "this browser exposes no navigator.gpu".to_string(),
        ));
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| DeviceError::WebGpuUnavailable(e.to_string()))?;
    let a = setup.adapter.get_info();
    // wgpu's web backend leaves the adapter name empty; the browser's GPUAdapterInfo says more.
    let adapter = match browser_adapter_info(gpu.as_ref().unwrap()).await {
        Some(info) => format!("WebGPU: {info}"),
        None => format!("WebGPU ({:?})", a.device_type),
    };
    let d = ComputeDevice {
        device,
        info: DeviceInfo {
            kind: BackendKind::Webgpu,
            adapter,
            fallback_reason: None,
        },
    };
    WEBGPU.with(|w| *w.borrow_mut() = Some(d.clone()));
    Ok(d)
}

#[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
use wasm_bindgen::JsCast as _;

/// `vendor architecture (description)` from `navigator.gpu.requestAdapter()`'s `info`, when the
/// browser provides it.
#[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
async fn browser_adapter_info(gpu: &wasm_bindgen::JsValue) -> Option<String> {
    use js_sys::{Function, Promise, Reflect};
    let request: Function = Reflect::get(gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: Promise = request.call0(gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = Reflect::get(&adapter, &"info".into()).ok()?;
    let field = |k: &str| {
        Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|v| !v.is_empty())
    };
    let mut parts: Vec<String> = ["vendor", "architecture"]
        .iter()
        .filter_map(|k| field(k))
        .collect();
    if let Some(d) = field("description") {
        parts.push(format!("({d})"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Read a float tensor back to the host without blocking (safe on every backend).
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, DeviceError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| DeviceError::Readback(format!("{e:?}")))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| DeviceError::Readback(format!("{e:?}")))
}

/// Read two float tensors back in one transfer (flattened and joined on the device, split on
/// the host): on WebGPU every readback is a queue flush and a `mapAsync` round trip, so
/// values needed together cross together.
pub async fn read_f32_pair<const A: usize, const B: usize>(
    a: Tensor<A>,
    b: Tensor<B>,
) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
    let len_a = a.shape().num_elements();
    let want = len_a + b.shape().num_elements();
    let mut both = read_f32(crate::nets::concat(vec![
        a.flatten::<1>(0, A - 1),
        b.flatten::<1>(0, B - 1),
    ]))
    .await?;
    if both.len() != want {
        return Err(DeviceError::Readback(format!(
            "expected {want} values, got {}",
            both.len()
        )));
    }
    let tail = both.split_off(len_a);
    Ok((both, tail))
}

/// Read a one-element tensor back as a scalar without blocking.
pub async fn read_scalar(t: Tensor<1>) -> Result<f32, DeviceError> {
    first(&read_f32(t).await?)
}

/// Two one-element tensors back as scalars in one transfer ([`read_f32_pair`]).
pub async fn read_scalar_pair(a: Tensor<1>, b: Tensor<1>) -> Result<(f32, f32), DeviceError> {
    let (a, b) = read_f32_pair(a, b).await?;
    Ok((first(&a)?, first(&b)?))
}

/// The first value read back, or a readback error.
fn first(v: &[f32]) -> Result<f32, DeviceError> {
    v.first()
        .copied()
        .ok_or_else(|| DeviceError::Readback("expected one element, got none".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_choices() {
        assert_eq!("cpu".parse::<BackendChoice>().unwrap(), BackendChoice::Cpu);
        assert_eq!(
            "webgpu".parse::<BackendChoice>().unwrap(),
            BackendChoice::Webgpu
        );
        let e = "tpu".parse::<BackendChoice>().unwrap_err().to_string();
        assert!(e.contains("tpu") && e.contains("expected"), "{e}");
    }

    #[test]
    #[cfg(not(feature = "webgpu"))]
    fn native_webgpu_is_refused_and_auto_falls_back() {
        let e = pollster::block_on(ComputeDevice::select(BackendChoice::Webgpu)).unwrap_err();
        assert!(matches!(e, DeviceError::WebGpuUnavailable(_)));
        let d = pollster::block_on(ComputeDevice::select(BackendChoice::Auto)).unwrap();
        assert_eq!(d.kind(), BackendKind::Cpu);
        assert!(d.info().fallback_reason.is_some());
    }

    #[test]
    fn readback_roundtrip() {
        let d = ComputeDevice::cpu();
        let t = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], d.device());
        let v = pollster::block_on(read_f32(t.clone())).unwrap();
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
        // Two tensors of different ranks in one transfer, each back in its own row-major order.
        let b = Tensor::<1>::from_floats([5.0, 6.0, 7.0], d.device());
        let (x, y) = pollster::block_on(read_f32_pair(t.clone().transpose(), b.clone())).unwrap();
        assert_eq!((x, y), (vec![1.0, 3.0, 2.0, 4.0], vec![5.0, 6.0, 7.0]));
        let one = Tensor::<1>::from_floats([8.0], d.device());
        let (x, y) = pollster::block_on(read_f32_pair(one.clone(), t)).unwrap();
        assert_eq!((x, y), (vec![8.0], vec![1.0, 2.0, 3.0, 4.0]));
        let pair = pollster::block_on(read_scalar_pair(one, b.sum())).unwrap();
        assert_eq!(pair, (8.0, 18.0));
    }
}
