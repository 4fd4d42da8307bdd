//! The saved-login demo's secret: never in the library. `keepsake-demo` takes one
//! (`--secret`, `KEEPSAKE_SECRET`) or makes one on its first start and keeps it in a
//! file only its user can read, so that "restart the server, the saved login is
//! still there" holds without any secret anyone else could know.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng as _;

/// The name of the file the secret is kept in, in the data directory.
pub const SECRET_FILE: &str = "demo-secret";

/// The secret kept in `dir` ([`SECRET_FILE`]): read when it is there, else made
/// (256 random bits, as 64 hex digits) and written, readable by its owner only
/// (mode 0600 on Unix), the directory made if needed. Returns the secret and the
/// file's path (which `keepsake-demo` prints; the secret it never prints).
pub fn kept_secret(dir: &Path) -> std::io::Result<(String, PathBuf)> {
    let path = dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(kept) if kept.trim().len() >= 32 => return Ok((kept.trim().to_owned(), path)),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} holds less than the 32 characters a secret needs: delete it to make a new one",
                path.display()
            )));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    std::fs::create_dir_all(dir)?;
    let bytes: [u8; 32] = rand::rng().random();
    let secret: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    // `create_new`: two first starts at once cannot both write; the loser reads.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            Ok((secret, path))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => kept_secret(dir),
        Err(error) => Err(error),
    }
}

/// Where `keepsake-demo` keeps its data unless told (`--data-dir`): the user's data
/// directory (`$XDG_DATA_HOME`, `~/.local/share` on Linux), under `keepsake`.
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("keepsake"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_made_once_kept_and_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("keepsake-secret-{}", rand::random::<u64>()));
        let (made, path) = kept_secret(&dir).expect("made");
        assert_eq!(made.len(), 64);
        assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        let (again, _) = kept_secret(&dir).expect("read");
        assert_eq!(again, made, "a restart keeps it");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let other = std::env::temp_dir().join(format!("keepsake-secret-{}", rand::random::<u64>()));
        assert_ne!(kept_secret(&other).expect("made").0, made, "random");
        std::fs::write(&path, "short").expect("overwrite");
        let refused = kept_secret(&dir).expect_err("a short secret is refused");
        assert!(refused.to_string().contains("delete it"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
    }
}
