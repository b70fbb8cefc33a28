//! Secrets and tokens: wiped from memory when dropped, never printed.

use std::fmt;

use zeroize::Zeroizing;

/// An entity's secret (password). The bytes are zeroized on drop and `Debug`
/// prints `<redacted>`; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(Zeroizing::new(secret.into()))
    }

    /// The secret in clear, for putting it on the wire. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Secret::new(secret)
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Secret::new(secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A NetAuth token (a JWT the client treats as opaque). Zeroized on drop;
/// `Debug` prints `<redacted token>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(Zeroizing::new(token.into()))
    }

    /// The token in clear, for the `authorization` header or the token cache.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Token {
    fn from(token: String) -> Self {
        Token::new(token)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted token>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_or_token() {
        let secret = Secret::new("hunter2-very-secret");
        let token = Token::new("eyJhbGciOiJSUzI1NiJ9.payload.sig");
        let shown = format!("{secret:?} {token:?} {:#?}", (&secret, &token));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("<redacted token>"));
        assert_eq!(secret.expose(), "hunter2-very-secret");
        assert_eq!(token.expose(), "eyJhbGciOiJSUzI1NiJ9.payload.sig");
    }
}
