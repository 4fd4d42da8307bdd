//! One binary to deploy: a release build of `keepsake-demo`, copied alone into an
//! empty directory, serves the demos to a browser. Prints its size and start-up time
//! (`scripts/bench` copies the line into BENCHMARKS.md).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use keepsake_e2e::{Browser, ChildGuard, cargo_build, scratch_dir};

fn build_release() -> PathBuf {
    let args = [
        "--release",
        "-p",
        "keepsake",
        "--features",
        "demo",
        "--bin",
        "keepsake-demo",
    ];
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    cargo_build(&args, "the release binary").join("release/keepsake-demo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_binary_copied_alone_serves_the_demos() {
    let built = build_release();
    let alone = scratch_dir("release-alone");
    let binary = alone.join("keepsake-demo");
    std::fs::copy(&built, &binary).expect("copy the binary");
    let size = std::fs::metadata(&binary).expect("binary").len();

    let started = Instant::now();
    let mut child = Command::new(&binary)
        .current_dir(&alone)
        .args(["--addr", "127.0.0.1:0"])
        // No secret given: it makes one and keeps it here (not in the home of
        // whoever runs the tests).
        .args([OsStr::new("--data-dir"), alone.as_os_str()])
        .env("RUST_LOG", "warn")
        .env_remove("KEEPSAKE_SECRET")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let _running = ChildGuard(child);
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the serving line");
    let mut kept = String::new();
    stdout.read_line(&mut kept).expect("the secret's line");
    let secret_file = alone.join(keepsake::demos::SECRET_FILE);
    assert_eq!(
        kept.trim(),
        format!(
            "The saved-login demo's secret is kept in {} (readable by you only)",
            secret_file.display()
        )
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .expect("the secret's file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let base = line
        .trim()
        .strip_prefix("Keepsake is serving on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let client = reqwest::Client::new();
    loop {
        if let Ok(answer) = client.get(format!("{base}/healthz")).send().await
            && answer.status().is_success()
        {
            break;
        }
        assert!(started.elapsed().as_secs() < 15, "no answer from {base}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let start_up = started.elapsed();
    println!(
        "| release keepsake-demo, copied alone | {:.1} MB ({size} bytes) | started and answering in {:.0} ms |",
        size as f64 / 1_000_000.0,
        start_up.as_secs_f64() * 1000.0
    );

    let browser = Browser::launch(None).await;
    browser.goto(&format!("{base}/apps/shopping-cart")).await;
    let milk = browser.checkbox("Milk").await;
    milk.click().await.expect("check");
    browser
        .button("Add Items")
        .await
        .click()
        .await
        .expect("click");
    browser
        .wait_value("Cart Size", |v| v.trim() == "1", "one item")
        .await;
    browser.goto(&format!("{base}/apps/saved-login")).await;
    browser.labelled("Username").await;
    browser.close().await;
}
