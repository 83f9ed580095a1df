//! The confirmation claim (`cnf`, RFC 7800) of a sender-constrained token: the
//! key a DPoP-bound access token is bound to (RFC 9449 §6), as the token and the
//! introspection answer carry it.

use serde::{Deserialize, Serialize};

/// `{"jkt": "<base64url SHA-256 thumbprint of the key (RFC 7638)>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shape_is_pinned() {
        let cnf = Confirmation {
            jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into(),
        };
        assert_eq!(
            serde_json::to_string(&cnf).unwrap(),
            r#"{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#
        );
    }
}
