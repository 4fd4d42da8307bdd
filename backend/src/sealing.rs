//! Sealing browser-state values: the server encrypts and authenticates every value a
//! browser keeps for it, with keys that never leave the server. A browser (or anyone
//! holding a copy of its profile) sees an opaque string it can neither read nor forge,
//! and a string moved to another slot or app does not open there.
//!
//! - Key: AES-256-GCM, derived per slot with HKDF-SHA256 from the app's secret (or the
//!   per-start random seed), salted with the format version and bound by its info to
//!   the app id and the storage key.
//! - Key id: 8 bytes from the same HKDF under another info, so a reader picks the
//!   right key during a rotation without the id telling anything about the key.
//! - Nonce: 96 fresh random bits per seal (the thread-local CSPRNG, seeded by the OS).
//! - Associated data: the purpose, the app id and the storage key, so a value sealed
//!   for one slot fails authentication in any other.
//! - Plaintext: the value's type version (u32, big-endian), its expiry in Unix seconds
//!   (u64, big-endian; 0 for none) and its JSON. The expiry is sealed inside, so it
//!   cannot be extended by anyone but the server.
//! - Format: `v2.{key id, 16 hex digits}.{base64url(nonce || ciphertext || tag)}`.
//!   (`v1` was the earlier, client-side format; such values no longer open.)
//!
//! # Threat model
//!
//! The server seals every BrowserState value before a browser stores it: AES-256-GCM
//! with a fresh 96-bit nonce, under a key derived per app and storage key with
//! HKDF-SHA256 from the app's secret; the app id, the storage key and the purpose are
//! authenticated with it, and the format carries a version and a key id (for rotation).
//! The browser holds an opaque string and sends it back with each event that reads the
//! slot; the server opens it and seals what the handler writes. Neither the config nor
//! any answer carries a secret or key material (tested: `backend/tests/sealed_answers.rs`
//! collects every answer of a full session of each demo and tries each string in them as
//! the secret, to open and to forge).
//!
//! What this protects against:
//! - reading a copy of the browser profile (a stolen laptop, a synced or backed-up
//!   profile, a shared computer) offline: the values cannot be decrypted without the
//!   server's secret;
//! - other apps on the same origin, and anyone editing localStorage: a value cannot be
//!   forged, and one moved to another slot or app, edited, truncated, expired or sealed
//!   under a key the server no longer has reads as the default and is removed;
//! - replay into another slot or app (bound by the key and the associated data).
//!
//! What it cannot protect against: a sealed string is a bearer token. Whoever holds a
//! copy can put it in any browser's storage for the app and the server will open it, so
//! it gets whatever the app shows from it (the saved-login demo shows the saved password
//! back: a real app should not keep secrets in browser state, or not show them). And a
//! script running in the page can drive the app's own events, and so read what the app
//! shows and write what the app lets it write. Hence
//! the second half: pages are served with a strict Content-Security-Policy (`Settings::content_security_policy`), so a
//! foreign script is hard to get in. It also cannot stop the holder of a profile from
//! sending back an older value it copied earlier (a value is genuine, not fresh; use
//! `.max_age` to bound how old). The demo's secret is in its source: a real app reads
//! its secret from its environment.
//!
//! Without a fixed storage key and secret, the keys come from a random seed made at
//! start-up (values from before a restart read as the default, as in Gradio); with
//! `--store redis://...` the seed is kept in Redis under the namespace, so every instance
//! seals and opens alike behind a load balancer (if Redis cannot give it, events that
//! touch browser state fail with `store_unavailable` until it can: an instance never
//! seals with keys of its own). There the seed lives as long as the namespace's data, so
//! values survive restarts of the instances; such keys are also bound to the slot's type
//! and default, so a slot named by its position does not read what another slot held
//! there before a change of the app. The seed must not be evicted (no `allkeys-*`
//! eviction policy on that Redis): an instance reads it once, so after a flush restart
//! every instance. Anyone who can read that Redis can forge values, as anyone who can
//! read a fixed secret can. An empty secret is refused when the app is built.

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::Sha256;

/// Version tag of the sealed format.
pub const FORMAT: &str = "v2";
const HKDF_SALT: &[u8] = b"keepsake/browser-state/v2";
const PURPOSE: &[u8] = b"keepsake browser state";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_ID_LEN: usize = 8;
const HEADER_LEN: usize = 4 + 8;

/// Why a sealed string did not open. Messages name no key and no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not this format (or an earlier one).
    #[error("not a sealed value of this format")]
    UnknownFormat,
    /// The right prefix, but not the right shape.
    #[error("malformed sealed value")]
    Malformed,
    /// Too short to hold a nonce and a tag.
    #[error("truncated sealed value")]
    Truncated,
    /// Sealed under a key this server does not have (another app start, a removed
    /// secret, another slot).
    #[error("sealed under a key this server does not have")]
    UnknownKey,
    /// Edited, or moved from another slot or app.
    #[error("sealed value failed authentication")]
    Authentication,
}

/// What a sealed string held.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The type version the value was sealed under.
    pub version: u32,
    /// When it expires (Unix seconds), if it does.
    pub expires_at: Option<u64>,
    /// The value's JSON text.
    pub json: Vec<u8>,
    /// Which key opened it: 0 is the newest; more means it should be sealed again.
    pub key_index: usize,
}

/// One derived key, ready to use (the AES key schedule is computed once).
struct SlotKey {
    cipher: Aes256Gcm,
    id: String,
}

/// The keys of one browser-state slot, newest first: seals with the first, opens
/// with any.
pub struct Sealer {
    keys: Vec<SlotKey>,
    associated_data: Vec<u8>,
}

impl fmt::Debug for Sealer {
    // Key material must never reach logs or panic messages; ids are public.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish()
    }
}

impl Sealer {
    /// The sealer of slot `storage_key` of app `app`, from `secrets` (newest first;
    /// at least one).
    pub fn new<S: AsRef<[u8]>>(app: &str, storage_key: &str, secrets: &[S]) -> Sealer {
        let binding = [app.as_bytes(), b"\0", storage_key.as_bytes()].concat();
        let keys = secrets
            .iter()
            .map(|secret| {
                let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.as_ref());
                let mut key = [0u8; 32];
                let mut id = [0u8; KEY_ID_LEN];
                // HKDF-SHA256 can expand to 255 * 32 bytes: 32 and 8 always fit.
                let key_ok = hkdf
                    .expand_multi_info(&[b"aes-256-gcm key\0", &binding], &mut key)
                    .is_ok();
                let id_ok = hkdf
                    .expand_multi_info(&[b"key id\0", &binding], &mut id)
                    .is_ok();
                debug_assert!(key_ok && id_ok);
                SlotKey {
                    cipher: Aes256Gcm::new(&key.into()),
                    id: hex(&id),
                }
            })
            .collect();
        let associated_data = [
            PURPOSE,
            b"\0",
            FORMAT.as_bytes(),
            b"\0",
            app.as_bytes(),
            b"\0",
            storage_key.as_bytes(),
        ]
        .concat();
        Sealer {
            keys,
            associated_data,
        }
    }

    /// The public id of the key values are sealed with.
    pub fn key_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// Seals `json` (a value's JSON text) with its type `version` and optional expiry
    /// (Unix seconds), under the newest key and a fresh nonce.
    pub fn seal(&self, version: u32, expires_at: Option<u64>, json: &[u8]) -> Option<String> {
        let key = self.keys.first()?;
        // One buffer, sealed in place: nonce || header || value, then the tag.
        let mut body = Vec::with_capacity(NONCE_LEN + HEADER_LEN + json.len() + TAG_LEN);
        body.resize(NONCE_LEN, 0);
        rand::rng().fill_bytes(&mut body[..NONCE_LEN]);
        body.extend_from_slice(&version.to_be_bytes());
        body.extend_from_slice(&expires_at.unwrap_or(0).to_be_bytes());
        body.extend_from_slice(json);
        let (nonce, plaintext) = body.split_at_mut(NONCE_LEN);
        let tag = key
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(nonce), &self.associated_data, plaintext)
            .ok()?;
        body.extend_from_slice(&tag);
        let mut sealed =
            String::with_capacity(FORMAT.len() + 2 + 2 * KEY_ID_LEN + body.len().div_ceil(3) * 4);
        sealed.push_str(FORMAT);
        sealed.push('.');
        sealed.push_str(&key.id);
        sealed.push('.');
        URL_SAFE_NO_PAD.encode_string(&body, &mut sealed);
        Some(sealed)
    }

    /// Opens a sealed string: checks its format, finds its key by id, and
    /// authenticates it against this slot. The expiry is returned, not checked.
    pub fn open(&self, sealed: &str) -> Result<Opened, OpenError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(format), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::UnknownFormat);
        };
        if format != FORMAT {
            return Err(OpenError::UnknownFormat);
        }
        if key_id.len() != 2 * KEY_ID_LEN {
            return Err(OpenError::Malformed);
        }
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if body.len() < NONCE_LEN + TAG_LEN + HEADER_LEN {
            return Err(OpenError::Truncated);
        }
        let key_index = self
            .keys
            .iter()
            .position(|key| key.id == key_id)
            .ok_or(OpenError::UnknownKey)?;
        let mut body = body;
        let tag = Tag::clone_from_slice(&body[body.len() - TAG_LEN..]);
        body.truncate(body.len() - TAG_LEN);
        let (nonce, ciphertext) = body.split_at_mut(NONCE_LEN);
        self.keys[key_index]
            .cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &self.associated_data,
                ciphertext,
                &tag,
            )
            .map_err(|_| OpenError::Authentication)?;
        // Authenticated, so written by this server: the header is there.
        let plaintext = &ciphertext[..];
        let mut version = [0u8; 4];
        let mut expiry = [0u8; 8];
        version.copy_from_slice(&plaintext[..4]);
        expiry.copy_from_slice(&plaintext[4..HEADER_LEN]);
        let expires_at = u64::from_be_bytes(expiry);
        let json = plaintext[HEADER_LEN..].to_vec();
        Ok(Opened {
            version: u32::from_be_bytes(version),
            expires_at: (expires_at != 0).then_some(expires_at),
            json,
            key_index,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(secrets: &[&str]) -> Sealer {
        Sealer::new("app", "slot", secrets)
    }

    fn flip(sealed: &str, at_from_end: usize) -> String {
        let mut bytes = sealed.as_bytes().to_vec();
        let i = bytes.len() - at_from_end;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("ascii")
    }

    #[test]
    fn a_sealed_value_opens_with_its_version_and_expiry() {
        let s = sealer(&["secret one, long enough for a real app"]);
        let sealed = s
            .seal(3, Some(1_900_000_000), br#"{"a":1}"#)
            .expect("seals");
        assert!(sealed.starts_with("v2."));
        assert!(!sealed.contains("\"a\""));
        let opened = s.open(&sealed).expect("opens");
        assert_eq!(opened.version, 3);
        assert_eq!(opened.expires_at, Some(1_900_000_000));
        assert_eq!(opened.json, br#"{"a":1}"#);
        assert_eq!(opened.key_index, 0);
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let s = sealer(&["k"]);
        assert_ne!(s.seal(0, None, b"1"), s.seal(0, None, b"1"));
    }

    #[test]
    fn tampered_truncated_and_foreign_values_do_not_open() {
        let s = sealer(&["k"]);
        let sealed = s.seal(0, None, b"\"value\"").expect("seals");
        assert_eq!(s.open(&flip(&sealed, 3)), Err(OpenError::Authentication));
        for cut in 0..sealed.len() {
            assert!(s.open(&sealed[..cut]).is_err(), "cut at {cut} opened");
        }
        let short = format!("v2.{}.{}", s.key_id().expect("key"), "A".repeat(40));
        assert_eq!(s.open(&short), Err(OpenError::Truncated));
        assert_eq!(s.open("v1.00.AAAA"), Err(OpenError::UnknownFormat));
        assert_eq!(s.open("nonsense"), Err(OpenError::UnknownFormat));
        assert_eq!(s.open("v2.xyz.AAAA"), Err(OpenError::Malformed));
        assert_eq!(
            s.open(&format!("{}!", &sealed)),
            Err(OpenError::Malformed),
            "not base64url"
        );
        assert_eq!(
            sealer(&["another"]).open(&sealed),
            Err(OpenError::UnknownKey)
        );
        // Same secret, another slot or app: another key, so another id...
        assert_eq!(
            Sealer::new("app", "other-slot", &["k"]).open(&sealed),
            Err(OpenError::UnknownKey)
        );
        assert_eq!(
            Sealer::new("other-app", "slot", &["k"]).open(&sealed),
            Err(OpenError::UnknownKey)
        );
    }

    #[test]
    fn a_forged_key_id_still_fails_authentication() {
        // An attacker who copies a valid key id onto another slot's value gains
        // nothing: the associated data and the key differ.
        let here = sealer(&["k"]);
        let there = Sealer::new("app", "other-slot", &["k"]);
        let sealed = there.seal(0, None, b"1").expect("seals");
        let body = sealed.rsplit('.').next().expect("body");
        let forged = format!("v2.{}.{body}", here.key_id().expect("key"));
        assert_eq!(here.open(&forged), Err(OpenError::Authentication));
    }

    #[test]
    fn rotation_opens_with_an_old_secret_and_says_so() {
        let old = sealer(&["old secret"]);
        let rotated = sealer(&["new secret", "old secret"]);
        let sealed = old.seal(0, None, b"7").expect("seals");
        let opened = rotated.open(&sealed).expect("opens");
        assert_eq!(opened.key_index, 1);
        let resealed = rotated.seal(0, None, &opened.json).expect("seals");
        assert_eq!(rotated.open(&resealed).expect("opens").key_index, 0);
        assert_eq!(old.open(&resealed), Err(OpenError::UnknownKey));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let text = format!("{:?}", sealer(&["top secret"]));
        assert!(!text.contains("top secret"));
        assert!(text.contains("key_ids"));
    }
}
