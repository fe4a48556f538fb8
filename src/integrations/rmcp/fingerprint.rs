//! [`Fingerprint`]: what the logs show instead of a session id.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::SessionId;

/// A short, non-reversible name for a session in logs: the first 8 hex
/// digits of the SHA-256 of the id's canonical text (the `Mcp-Session-Id`
/// value). Logs never carry the id itself (for an unbound session it is
/// the only credential) nor the principal.
///
/// Enough to follow one session through the logs (creation, refusals,
/// close); 32 bits cannot be turned back into the 122 random bits of the
/// id. An operator who holds an id finds its lines with
/// `printf %s "$ID" | sha256sum | cut -c1-8`.
///
/// # Examples
///
/// ```
/// use mcp_session_core::SessionId;
/// use mcp_session_core::integrations::rmcp::Fingerprint;
///
/// let id = SessionId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap();
/// let fingerprint = Fingerprint::of(&id).to_string();
/// assert_eq!(fingerprint.len(), 8);
/// assert!(!id.to_string().contains(&fingerprint));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    /// The fingerprint of `id`.
    pub fn of(id: &SessionId) -> Self {
        let digest = Sha256::digest(id.to_string().as_bytes());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_sha256_prefix_of_the_id_text() {
        // printf %s 0f8fad5b-d9cb-469f-a165-70867728950e | sha256sum
        let id = SessionId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap();
        assert_eq!(Fingerprint::of(&id).to_string(), "c812e1ed");
        let other = SessionId::parse("0f8fad5b-d9cb-469f-a165-70867728950f").unwrap();
        assert_ne!(Fingerprint::of(&id), Fingerprint::of(&other));
    }
}
