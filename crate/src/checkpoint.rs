//! The one checkpoint format: a versioned JSON file holding the experiment spec that built the
//! networks, the step count and every parameter tensor named by its path in the networks. The
//! page's "Save weights" writes it, `rfm train --save FILE` writes it, `rfm eval --load FILE`
//! and the page's "Load weights" open either.
//!
//! ```json
//! {"format": "rfm-checkpoint", "version": 2, "spec": {…}, "steps": 1200,
//!  "tensors": [{"name": "actor.…", "shape": [64, 64], "data": […]}, …]}
//! ```
//!
//! Version 1 (`rfm-playground-weights`, tensors named by position) is refused with a message
//! saying so. JSON, so a person can see what a file holds.

use serde::{Deserialize, Serialize};

use crate::spec::{ConfigErrors, ExperimentSpec};
use crate::trainer::NamedTensor;

/// The `format` tag.
pub const FORMAT: &str = "rfm-checkpoint";
/// The version this build writes and reads.
pub const VERSION: u32 = 2;
/// The tag of the previous, unversioned-spec format (refused with an explanation).
const OLD_FORMAT: &str = "rfm-playground-weights";

/// A saved experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always [`FORMAT`].
    pub format: String,
    pub version: u32,
    /// The experiment that built the networks (and that a resumed run continues).
    pub spec: ExperimentSpec,
    /// Steps done when it was written (RL: env steps; sampler: updates).
    pub steps: usize,
    pub tensors: Vec<NamedTensor>,
}

/// Why a file is not a usable checkpoint; each message is one plain line.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a checkpoint file ({0})")]
    NotJson(String),
    #[error("this is a {0} file, not an RFM Playground checkpoint")]
    WrongFormat(String),
    #[error(
        "this file was saved by an older version of the playground (weights file v1); it cannot be opened by this one: train again and save"
    )]
    Old,
    #[error("this checkpoint was written by a newer playground (v{0}; this one reads v{VERSION})")]
    Future(u32),
    #[error("its experiment settings are not valid: {0}")]
    Spec(ConfigErrors),
    #[error("{0} holds NaN or infinite values")]
    NonFinite(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl Checkpoint {
    pub fn new(spec: ExperimentSpec, steps: usize, tensors: Vec<NamedTensor>) -> Self {
        Self {
            format: FORMAT.to_string(),
            version: VERSION,
            spec,
            steps,
            tensors,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a checkpoint serialises")
    }

    /// Parse and check a file's bytes: format, version, a valid spec, finite tensors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| CheckpointError::NotJson(e.to_string()))?;
        let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if format == OLD_FORMAT {
            return Err(CheckpointError::Old);
        }
        if format != FORMAT {
            let what = if format.is_empty() {
                "JSON".to_string()
            } else {
                format!("'{format}'")
            };
            return Err(CheckpointError::WrongFormat(what));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == VERSION as u64 => {}
            Some(v) if v > VERSION as u64 => return Err(CheckpointError::Future(v as u32)),
            _ => return Err(CheckpointError::Old),
        }
        let spec_value = value.get("spec").cloned().unwrap_or_default();
        let spec = ExperimentSpec::from_value(spec_value)
            .map_err(|e| CheckpointError::NotJson(format!("spec: {e}")))?;
        spec.validate().map_err(CheckpointError::Spec)?;
        let ck = Checkpoint {
            spec,
            ..serde_json::from_value(value).map_err(|e| CheckpointError::NotJson(e.to_string()))?
        };
        if let Some(t) = ck
            .tensors
            .iter()
            .find(|t| t.data.iter().any(|v| !v.is_finite()))
        {
            return Err(CheckpointError::NonFinite(t.name.clone()));
        }
        Ok(ck)
    }

    /// Write to `path` (native only: the page downloads the bytes).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: &std::path::Path) -> Result<(), CheckpointError> {
        let io = |e: std::io::Error| CheckpointError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, self.to_bytes()).map_err(io)
    }

    /// Read from `path` (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|e| CheckpointError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Mode;

    fn tiny() -> Checkpoint {
        Checkpoint::new(
            ExperimentSpec::defaults(Mode::Sampler),
            7,
            vec![NamedTensor {
                name: "policy.out.bias".into(),
                shape: vec![2],
                data: vec![0.5, -1.0],
            }],
        )
    }

    #[test]
    fn round_trips() {
        let c = tiny();
        let back = Checkpoint::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!((&back.spec, back.steps), (&c.spec, c.steps));
        assert_eq!(back.tensors[0].name, c.tensors[0].name);
        assert_eq!(back.tensors[0].data, c.tensors[0].data);
    }

    #[test]
    fn bad_files_say_why() {
        let msg = |b: &[u8]| Checkpoint::from_bytes(b).unwrap_err().to_string();
        assert!(
            msg(b"hello").starts_with("not a checkpoint file"),
            "{}",
            msg(b"hello")
        );
        assert!(msg(br#"{"a": 1}"#).contains("not an RFM Playground checkpoint"));
        let old = br#"{"format": "rfm-playground-weights", "version": 1, "tensors": []}"#;
        assert!(msg(old).contains("older version"), "{}", msg(old));
        let mut v: serde_json::Value = serde_json::from_slice(&tiny().to_bytes()).unwrap();
        v["version"] = 9.into();
        assert!(msg(&serde_json::to_vec(&v).unwrap()).contains("newer"));
        let mut v: serde_json::Value = serde_json::from_slice(&tiny().to_bytes()).unwrap();
        v["spec"]["k"] = 0.into();
        assert!(msg(&serde_json::to_vec(&v).unwrap()).contains("k = 0"));
        let mut v: serde_json::Value = serde_json::from_slice(&tiny().to_bytes()).unwrap();
        v["tensors"][0]["data"][0] = serde_json::Value::Null;
        let m = msg(&serde_json::to_vec(&v).unwrap());
        assert!(m.contains("not a checkpoint") || m.contains("NaN"), "{m}");
    }
}
