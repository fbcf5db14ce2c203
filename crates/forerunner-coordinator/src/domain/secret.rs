//! Secret tokens: generation in GitLab's formats and the SHA-256 digest that
//! is the only form the store keeps.
//!
//! A [`Secret`] never prints its value through `Debug` or `Display`; logs get
//! the short form from `forerunner_protocol::tokens::short_token`.

use std::fmt;

use forerunner_protocol::tokens::short_token;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Number of random characters after a token's prefix (GitLab's
/// `Devise.friendly_token` length).
const RANDOM_LEN: usize = 20;

/// A token in clear text, as handed to a client once.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token received from a client or the environment.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh random token: `prefix` followed by 20 alphanumeric characters.
    pub fn generate(prefix: &str) -> Self {
        let random: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_LEN)
            .map(char::from)
            .collect();
        Self(format!("{prefix}{random}"))
    }

    /// The clear value, for the one response or file that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest the store keeps.
    pub fn digest(&self) -> String {
        digest(&self.0)
    }

    /// The short, loggable form (`t3_TgbhXF`).
    pub fn short(&self) -> String {
        short_token(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}…)", self.short())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.short())
    }
}

/// Lowercase hex SHA-256 of a token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_prefix_and_never_print_in_full() {
        let s = Secret::generate("glrt-t2_");
        assert!(s.expose().starts_with("glrt-t2_"));
        assert_eq!(s.expose().len(), "glrt-t2_".len() + RANDOM_LEN);
        assert!(!format!("{s:?} {s}").contains(s.expose()));
        assert_eq!(s.digest().len(), 64);
        assert_ne!(
            Secret::generate("x").expose(),
            Secret::generate("x").expose()
        );
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
