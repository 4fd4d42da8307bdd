//! Browser-test harness: a real Keepsake server (in process, serving the client built
//! into it) and headless Chromium driven through chromedriver.
//!
//! Servers can be restarted on the same port, so the page origin (and with it the
//! browser's localStorage) stays the same across a backend restart; browsers can be
//! started on a persistent profile directory, to test a browser restart.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use keepsake::{App, Server, Settings};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

mod proxy;

pub use proxy::CutProxy;

/// How long a test waits for something a person would see.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A Keepsake server running in this process.
pub struct RunningServer {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// Serves `apps` and the built client on 127.0.0.1:`port`.
    pub async fn start(port: u16, apps: Vec<App>) -> RunningServer {
        RunningServer::start_with(RunningServer::settings(port), apps).await
    }

    /// The settings [`RunningServer::start`] serves with.
    pub fn settings(port: u16) -> Settings {
        Settings {
            addr: ([127, 0, 0, 1], port).into(),
            // The client built into the server (scripts/test builds it first).
            static_dir: None,
            heartbeat: Duration::from_secs(2),
            sweep_interval: Duration::from_millis(100),
            ..Settings::default()
        }
    }

    /// Serves `apps` with `settings` (on the port of their address).
    pub async fn start_with(settings: Settings, apps: Vec<App>) -> RunningServer {
        let port = settings.addr.port();
        let server = Server::new(settings, apps).expect("apps mount");
        // The port may still be held by a server that was just stopped.
        let deadline = Instant::now() + PATIENCE;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => break listener,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot bind 127.0.0.1:{port}: {error}"),
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(keepsake::run(listener, server, async move {
            let _ = stopped.await;
        }));
        RunningServer {
            port,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The Content-Security-Policy violations browsers have reported so far, as
    /// `/metrics` counts them (process-wide: every server of this test binary).
    pub async fn csp_violations(&self) -> u64 {
        let metrics = reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("keepsake_csp_violations_total "))
            .unwrap_or_else(|| panic!("no keepsake_csp_violations_total in /metrics"))
            .trim()
            .parse()
            .expect("a count")
    }

    /// Stops the server and waits until it is gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = tokio::time::timeout(PATIENCE, task).await;
            assert!(stopped.is_ok(), "server did not stop in time");
        }
    }
}

/// Headless Chromium behind its own chromedriver.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: Option<PathBuf>,
}

impl Browser {
    /// Starts a browser. With `profile`, it keeps its data (localStorage) there, so a
    /// later browser on the same profile is "the same browser, restarted".
    pub async fn launch(profile: Option<&Path>) -> Browser {
        Browser::launch_with(profile, &[]).await
    }

    /// A browser whose pages prefer a dark colour scheme (`prefers-color-scheme: dark`).
    pub async fn launch_dark() -> Browser {
        Browser::launch_with(None, &["--force-dark-mode"]).await
    }

    async fn launch_with(profile: Option<&Path>, extra_args: &[&str]) -> Browser {
        let port = free_port();
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1200,900".to_owned(),
        ];
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        if let Some(profile) = profile {
            args.push(format!("--user-data-dir={}", profile.display()));
        }
        let mut options = serde_json::json!({ "args": args });
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = "/usr/bin/chromium".into();
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        Browser {
            client,
            driver,
            profile: profile.map(Path::to_path_buf),
        }
    }

    /// Closes the browser (flushing its profile) and its driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        // Chromium lets go of its profile a moment after the driver says it quit; a
        // browser restarted on the profile before then cannot start.
        if let Some(profile) = &self.profile {
            let lock = profile.join("SingletonLock");
            let deadline = Instant::now() + PATIENCE;
            while lock.symlink_metadata().is_ok() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Uses the page at `path` (the start page or a demo) briefly, as a person
    /// would, waiting for the server's answer.
    pub async fn use_page(&self, path: &str) {
        match path {
            "/" => {
                self.find("//a[contains(normalize-space(.), 'Shopping cart')]")
                    .await;
            }
            "/apps/shopping-cart" => {
                self.add_to_cart(&["Milk"], 1.0).await;
            }
            "/apps/visitor-counter" => {
                self.wait_value("Total Visitors", |v| v.parse::<u64>().is_ok(), "a count")
                    .await;
            }
            "/apps/saved-login" => {
                self.type_into("Username", "csp").await;
                // The change listener's answer: encrypted, stored, and shown as Markdown.
                self.wait_text("Saved to local storage at").await;
            }
            "/apps/todo" => {
                self.type_into("New item", "Water the plants").await;
                self.button("Add").await.click().await.expect("click");
                // The rendered row: its checkbox and its delete button.
                self.checkbox("Water the plants").await;
                self.find("//button[@aria-label='Delete Water the plants']")
                    .await;
            }
            "/apps/chat" => {
                self.type_into("Message", "Hello").await;
                self.button("Send").await.click().await.expect("click");
                // The streamed reply, complete.
                self.wait_text("keeps it once it is complete").await;
            }
            // A demo added later: its page renders (the client ran), at least.
            _ => {
                self.find("//h1").await;
            }
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// Waits for an element matching the XPath.
    pub async fn find(&self, xpath: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("no element {xpath}: {e}"))
    }

    /// A button, by its accessible name (its text).
    pub async fn button(&self, name: &str) -> Element {
        self.find(&format!(
            "//button[normalize-space(.)={}]",
            xpath_literal(name)
        ))
        .await
    }

    /// The form control labelled `label` (input, textarea or select).
    pub async fn labelled(&self, label: &str) -> Element {
        let label_el = self
            .find(&format!(
                "//label[normalize-space(.)={}]",
                xpath_literal(label)
            ))
            .await;
        let target = label_el
            .attr("for")
            .await
            .expect("label attribute")
            .unwrap_or_else(|| panic!("label {label} has no `for`"));
        self.find(&format!("//*[@id={}]", xpath_literal(&target)))
            .await
    }

    /// The checkbox labelled `label` (a choice of a checkbox group).
    pub async fn checkbox(&self, label: &str) -> Element {
        self.find(&format!(
            "//label[normalize-space(.)={0}]//input[@type='checkbox'] | //input[@type='checkbox'][@aria-label={0}]",
            xpath_literal(label)
        ))
        .await
    }

    /// The current value of a form control.
    pub async fn value_of(&self, element: &Element) -> String {
        element
            .prop("value")
            .await
            .expect("value property")
            .unwrap_or_default()
    }

    /// Waits until `check` holds for the value of the control labelled `label`.
    pub async fn wait_value(
        &self,
        label: &str,
        check: impl Fn(&str) -> bool,
        what: &str,
    ) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let element = self.labelled(label).await;
            let value = self.value_of(&element).await;
            if check(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{label}: expected {what}, still {value:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page shows `text` somewhere.
    pub async fn wait_text(&self, text: &str) -> Element {
        self.find(&format!(
            "//*[contains(normalize-space(.), {})]",
            xpath_literal(text)
        ))
        .await
    }

    /// Replaces the text of a textbox the way a person would (select all, type).
    pub async fn type_into(&self, label: &str, text: &str) {
        let element = self.labelled(label).await;
        element.clear().await.expect("clear");
        element.send_keys(text).await.expect("typing");
    }

    /// Ticks `items` in the shopping cart demo, clicks "Add Items" and waits until
    /// the cart holds `expected_size` items.
    pub async fn add_to_cart(&self, items: &[&str], expected_size: f64) {
        for item in items {
            let checkbox = self.checkbox(item).await;
            if !checkbox.is_selected().await.expect("checked state") {
                checkbox.click().await.expect("check");
            }
        }
        self.button("Add Items").await.click().await.expect("click");
        self.wait_value(
            "Cart Size",
            |v| v.trim().parse::<f64>().ok() == Some(expected_size),
            &format!("{expected_size}"),
        )
        .await;
    }

    /// Tries to run an inline script, as an injected one would; whether it ran.
    pub async fn inline_script_runs(&self) -> bool {
        self.script(
            "const s = document.createElement('script');
             s.textContent = 'window.cspControlRan = true;';
             document.head.appendChild(s);
             return window.cspControlRan === true;",
        )
        .await
            == serde_json::Value::Bool(true)
    }

    /// Runs a script in the page.
    pub async fn script(&self, code: &str) -> serde_json::Value {
        self.client.execute(code, vec![]).await.expect("script")
    }
}

/// Quotes text for XPath.
pub fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else {
        format!("\"{text}\"")
    }
}

/// A fresh, empty directory under the system temporary directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    // Under the system's temporary directory, by an absolute path without `..`:
    // Chromium does not start on a profile path it has to resolve.
    let dir = std::env::temp_dir()
        .join("keepsake-e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The repository's root directory.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `cargo build --quiet` with `args` from the repository's root, into the target
/// directory the tests run from (`CARGO_TARGET_DIR`, or the workspace's), so
/// dependencies are shared. Returns that directory.
pub fn cargo_build(args: &[&std::ffi::OsStr], what: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("target"));
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(repository())
        .args(["build", "--quiet"])
        .args(args)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "{what} builds");
    target
}

/// A child process (a server binary under test), killed when dropped, so a failed
/// test leaves nothing running.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
