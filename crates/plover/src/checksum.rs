//! A migration file's checksum: SHA-256 of its bytes.
//!
//! Must not: import any other plover module (errors and plans name checksums).

use std::fmt;

use sha2::{Digest, Sha256};

/// SHA-256 of a migration file's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum(pub(crate) [u8; 32]);

impl Checksum {
    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> Checksum {
        Checksum(Sha256::digest(bytes).into())
    }

    /// The 32 bytes, as stored in the history table.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as stored and shown.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A checksum written as [`Checksum::to_hex`] writes it; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Checksum> {
        Checksum::from_slice(&hex::decode(text).ok()?)
    }

    /// A checksum read back from the history table; `None` when it is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Checksum> {
        Some(Checksum(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_hex())
    }
}

impl fmt::Display for Checksum {
    /// The first 12 hex digits, enough to tell two versions of a file apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..12])
    }
}
