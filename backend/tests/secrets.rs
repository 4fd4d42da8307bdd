//! Mistakes with a BrowserState's secret are refused when the app is built, loudly,
//! rather than warned about in a log a developer may never see: an empty secret, a
//! short one, and a secret without a storage key (which would be ignored).

#![allow(clippy::unwrap_used)]

use keepsake::{Blocks, BrowserState};

const SECRET: &str = "vault secret: thirty-two bytes or more, fixed for tests";

#[test]
fn an_empty_secret_is_refused_at_build() {
    let mut app = Blocks::new("empty", "Empty secret");
    app.browser_state(BrowserState::new(0u32).storage_key("n").secret(""));
    let error = app.build().expect_err("refused");
    assert!(error.to_string().contains("secret is empty"), "{error}");
}

/// Mistakes a log line would have whispered are refused at build, loudly.
#[test]
fn a_short_secret_or_one_without_a_storage_key_is_refused_at_build() {
    const SHORT: &str = "tooshort-but-secret";
    let mut app = Blocks::new("short", "Short secret");
    app.browser_state(BrowserState::new(0u32).storage_key("n").secret(SHORT));
    let error = app
        .build()
        .expect_err("a short secret is refused")
        .to_string();
    assert!(
        error.contains("19 bytes") && error.contains("at least 32"),
        "{error}"
    );
    assert!(
        !error.contains(SHORT),
        "the secret never reaches a message: {error}"
    );
    // Short among several (a rotation) is refused too.
    let mut app = Blocks::new("rotated", "Rotated secrets");
    app.browser_state(
        BrowserState::new(0u32)
            .storage_key("n")
            .secrets([SECRET, SHORT]),
    );
    assert!(app.build().is_err());

    let mut app = Blocks::new("keyless", "Secret without a key");
    app.browser_state(BrowserState::new(0u32).secret(SECRET));
    let error = app
        .build()
        .expect_err("an ignored secret is refused")
        .to_string();
    assert!(error.contains("no storage key"), "{error}");

    // The control: both given, or neither, build.
    let mut app = Blocks::new("fixed", "Fixed keys");
    app.browser_state(BrowserState::new(0u32).storage_key("n").secret(SECRET));
    app.build().expect("a storage key and a long secret build");
    let mut app = Blocks::new("random", "Random keys");
    app.browser_state(BrowserState::new(0u32));
    app.build().expect("neither builds, on random keys");
}
