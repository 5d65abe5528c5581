//! The share-link codec: an [`ExperimentSpec`] (never weights) in the URL fragment,
//!
//! ```text
//! v1.<base64url(JSON)>.<crc32 of the JSON, 8 hex digits>
//! ```
//!
//! The version prefix lets later releases change the payload; the checksum catches truncated
//! or hand-edited links. [`decode_share`] never panics: a malformed, tampered or future-version
//! link is a [`ShareError`] whose message says what is wrong, and the caller falls back to
//! the defaults. Fields a link lacks take the defaults of its mode.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{ConfigErrors, ExperimentSpec};

/// The share-link format version this build writes (and the newest it reads).
pub const SHARE_VERSION: u32 = 1;

/// Longest fragment accepted, in bytes (a spec is ~500; this bounds the work on junk).
pub const MAX_FRAGMENT_LEN: usize = 8 * 1024;

/// Why a share link could not be opened. Each message is one plain line for the page.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShareError {
    #[error("the link holds no experiment settings")]
    Empty,
    #[error("the link is too long ({0} bytes; at most {MAX_FRAGMENT_LEN})")]
    TooLong(usize),
    #[error("the link's settings are not in a format this playground knows")]
    UnknownFormat,
    #[error(
        "the link was made by a newer playground (format v{0}; this one reads up to v{SHARE_VERSION})"
    )]
    FutureVersion(u32),
    #[error("the link is damaged: {0}")]
    Damaged(String),
    #[error("the link's settings are not valid JSON: {0}")]
    Json(String),
    #[error("the link's settings are out of range: {0}")]
    Invalid(ConfigErrors),
}

/// Encode a config as a share-link fragment (without the leading `#`).
pub fn encode_share(cfg: &ExperimentSpec) -> String {
    let json = serde_json::to_string(cfg).expect("a ExperimentSpec always serialises");
    let crc = crc32fast::hash(json.as_bytes());
    format!(
        "v{SHARE_VERSION}.{}.{crc:08x}",
        URL_SAFE_NO_PAD.encode(json.as_bytes())
    )
}

/// Decode and validate a share-link fragment (a leading `#` is ignored).
pub fn decode_share(fragment: &str) -> Result<ExperimentSpec, ShareError> {
    let s = fragment.trim().trim_start_matches('#');
    if s.is_empty() {
        return Err(ShareError::Empty);
    }
    if s.len() > MAX_FRAGMENT_LEN {
        return Err(ShareError::TooLong(s.len()));
    }
    let mut parts = s.split('.');
    let (Some(version), Some(payload), Some(crc), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ShareError::UnknownFormat);
    };
    let version: u32 = version
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .ok_or(ShareError::UnknownFormat)?;
    if version > SHARE_VERSION {
        return Err(ShareError::FutureVersion(version));
    }
    if version == 0 {
        return Err(ShareError::UnknownFormat);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| ShareError::Damaged(format!("bad encoding ({e})")))?;
    let expected = u32::from_str_radix(crc, 16)
        .ok()
        .filter(|_| crc.len() == 8)
        .ok_or_else(|| ShareError::Damaged("bad checksum field".to_string()))?;
    if crc32fast::hash(&bytes) != expected {
        return Err(ShareError::Damaged(
            "checksum mismatch (edited or cut short?)".to_string(),
        ));
    }
    let json =
        std::str::from_utf8(&bytes).map_err(|_| ShareError::Damaged("not UTF-8".to_string()))?;
    let cfg = ExperimentSpec::from_json(json)?;
    cfg.validate().map_err(ShareError::Invalid)?;
    Ok(cfg)
}
