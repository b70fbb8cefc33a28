//! Tokens: JWT-shaped (`header.claims.signature`, base64url), HMAC-SHA256
//! signed with a key made per server. NetAuth signs with RSA; clients treat
//! tokens as opaque strings, so the algorithm does not matter to them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use netauth_proto::Capability;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "EntityID")]
    pub entity_id: String,
    /// Capability names, e.g. `GLOBAL_ROOT`.
    #[serde(rename = "Capabilities")]
    pub capabilities: Vec<String>,
    /// Expiry, seconds since the epoch (the JWT convention).
    pub exp: u64,
    /// Expiry in milliseconds: what validation uses, so tests may use
    /// lifetimes below one second.
    pub exp_ms: u64,
    pub iat: u64,
    pub iss: String,
}

impl Claims {
    /// GLOBAL_ROOT satisfies every capability check.
    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities
            .iter()
            .any(|c| c == cap.as_str_name() || c == Capability::GlobalRoot.as_str_name())
    }
}

pub(crate) struct TokenService {
    key: [u8; 32],
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl TokenService {
    pub(crate) fn new() -> TokenService {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the OS random source works");
        TokenService { key }
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    pub(crate) fn issue(&self, entity_id: &str, caps: &[Capability], lifetime: Duration) -> String {
        let now = now_ms();
        let exp_ms = now.saturating_add(lifetime.as_millis() as u64);
        let claims = Claims {
            entity_id: entity_id.to_string(),
            capabilities: caps.iter().map(|c| c.as_str_name().to_string()).collect(),
            exp: exp_ms / 1000,
            exp_ms,
            iat: now / 1000,
            iss: "netauth-testserver".to_string(),
        };
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize to JSON"));
        let signed = format!("{header}.{body}");
        let sig = URL_SAFE_NO_PAD.encode(self.sign(signed.as_bytes()));
        format!("{signed}.{sig}")
    }

    /// Signature and expiry; the holder's current state (lock, existence)
    /// is not consulted, as with NetAuth's self-contained tokens.
    pub(crate) fn validate(&self, token: &str) -> Option<Claims> {
        let (signed, sig) = token.rsplit_once('.')?;
        let (_, body) = signed.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        if claims.exp_ms <= now_ms() {
            return None;
        }
        Some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_validate_and_tampered_ones_do_not() {
        let svc = TokenService::new();
        let t = svc.issue(
            "alice",
            &[Capability::CreateEntity],
            Duration::from_secs(60),
        );
        let c = svc.validate(&t).expect("valid");
        assert_eq!(c.entity_id, "alice");
        assert!(c.has(Capability::CreateEntity));
        assert!(!c.has(Capability::DestroyEntity));
        let mut bad = t.clone();
        bad.push('x');
        assert!(svc.validate(&bad).is_none());
        assert!(TokenService::new().validate(&t).is_none(), "other key");
        assert!(svc.validate("garbage").is_none());
    }

    #[test]
    fn expired_tokens_fail_and_root_satisfies_all() {
        let svc = TokenService::new();
        let t = svc.issue("root", &[Capability::GlobalRoot], Duration::ZERO);
        assert!(svc.validate(&t).is_none());
        let t = svc.issue("root", &[Capability::GlobalRoot], Duration::from_secs(5));
        assert!(svc.validate(&t).unwrap().has(Capability::DestroyGroup));
    }
}
