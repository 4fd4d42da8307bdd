//! Identifiers that appear on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Index of a component (including state slots) within one app's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ComponentId(pub u32);

/// Index of an event listener (a "dependency", as Gradio calls it) within one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListenerId(pub u32);

/// A streamed reply, as a client names it to resume it after a dropped connection
/// ([`crate::api::ResumeReply`]). Random, below 2^53 so that any JSON reader holds it
/// exactly; not a secret (resuming also takes the session's id, which is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplyId(pub u64);

impl fmt::Display for ReplyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ReplyId {
    type Err = std::num::ParseIntError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(ReplyId)
    }
}

/// URL-safe name of an app mounted on a server, e.g. `shopping-cart`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppId(pub String);

/// Lets maps keyed by `AppId` be searched with a `&str` (a request path) without
/// allocating; the derived `Hash` and `Eq` agree with `str`'s.
impl std::borrow::Borrow<str> for AppId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session id: 128 random bits issued by the server, written as 32 lowercase hex digits.
///
/// Parsing only checks the *form*; whether the server issued the id is the server's
/// business. Display prints the full id (it is needed on the wire); use
/// [`SessionId::short`] in logs so that a full id never lands there.
///
/// The digits are held inline (no heap allocation): the server keeps two copies per
/// live session, and a lookup compares ids without following a pointer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId([u8; SESSION_ID_HEX_LEN]);

/// Length of a session id in hex digits (128 bits).
pub const SESSION_ID_HEX_LEN: usize = 32;

impl SessionId {
    /// Builds an id from 16 random bytes. The caller is responsible for the randomness.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; SESSION_ID_HEX_LEN];
        for (i, b) in bytes.into_iter().enumerate() {
            digits[2 * i] = HEX[usize::from(b >> 4)];
            digits[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        SessionId(digits)
    }

    /// The full id, as sent on the wire.
    pub fn as_str(&self) -> &str {
        // Every constructor checks or writes ASCII hex digits, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The first 8 hex digits: enough to correlate log lines, useless to an attacker.
    pub fn short(&self) -> &str {
        self.as_str().get(..8).unwrap_or_default()
    }
}

/// Why a string is not a session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdError;

impl fmt::Display for SessionIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a session id is {SESSION_ID_HEX_LEN} lowercase hexadecimal digits"
        )
    }
}

impl std::error::Error for SessionIdError {}

impl FromStr for SessionId {
    type Err = SessionIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = s.len() == SESSION_ID_HEX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(SessionIdError);
        }
        let mut digits = [0u8; SESSION_ID_HEX_LEN];
        digits.copy_from_slice(s.as_bytes());
        Ok(SessionId(digits))
    }
}

impl TryFrom<String> for SessionId {
    type Error = SessionIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.as_str().to_owned()
    }
}

impl fmt::Debug for SessionId {
    // Debug output ends up in logs; keep it short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.short())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_round_trips_and_rejects_bad_forms() {
        let id = SessionId::from_bytes([0xab; 16]);
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(id.as_str().parse::<SessionId>(), Ok(id));
        assert_eq!(id.short(), "abababab");
        for bad in ["", "xyz", &"A".repeat(32), &"a".repeat(31), &"a".repeat(33)] {
            assert!(bad.parse::<SessionId>().is_err(), "{bad:?} accepted");
        }
        let json = serde_json::to_string(&id).expect("serialises");
        assert_eq!(serde_json::from_str::<SessionId>(&json).ok(), Some(id));
        assert!(serde_json::from_str::<SessionId>("\"nope\"").is_err());
    }

    #[test]
    fn debug_never_prints_the_full_id() {
        let id = SessionId::from_bytes([0x12; 16]);
        assert!(!format!("{id:?}").contains(id.as_str()));
    }
}
