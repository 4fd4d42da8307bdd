//! Finds the built browser client for `src/http/client_files.rs` to embed.
//!
//! The client is built by trunk (`scripts/install.sh`'s `build_client`), which copies
//! it into `backend/client/`; a packaged `keepsake` carries that directory. Without it
//! (a fresh clone before the first client build) the crate still compiles, embedding
//! nothing, and says so: the API works, pages answer 503 with a sentence saying why.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let client = manifest.join("client");
    // By its absolute path: the directory this script hands on is absolute, so a
    // checkout elsewhere sharing the target directory must run it again.
    println!("cargo:rerun-if-changed={}", client.display());
    let dir = if client.join("index.html").is_file() {
        client
    } else {
        println!(
            "cargo:warning=no built client in {}: pages will not work until it is built (./scripts/run builds it)",
            client.display()
        );
        let empty =
            PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("no-client");
        if let Err(error) = std::fs::create_dir_all(&empty) {
            println!("cargo:warning=cannot create {}: {error}", empty.display());
        }
        empty
    };
    println!("cargo:rustc-env=KEEPSAKE_CLIENT_DIR={}", dir.display());
}
