//! Test support: a real server on 127.0.0.1:0 and a small typed client for it.

#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use keepsake::protocol::api::{self, Endpoint};
use keepsake::protocol::config::AppConfig;
use keepsake::protocol::error::{ErrorBody, ErrorKind};
use keepsake::protocol::event::{
    ComponentUpdate, EventRequest, EventResult, SessionStarted, StreamedEvent,
};
use keepsake::protocol::feed::FeedMessage;
use keepsake::protocol::holding::Holding;
use keepsake::protocol::{AppId, ComponentId, ListenerId, SessionId};
use keepsake::{App, Server, Settings};
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for tests: fast sweeps and heartbeats, and no practical limit on session
/// starts (every test client is 127.0.0.1; `abuse.rs` tests the limit).
pub fn fast_settings() -> Settings {
    Settings {
        sweep_interval: Duration::from_millis(20),
        heartbeat: Duration::from_millis(200),
        max_session_starts_per_minute: 1_000_000,
        // Tests of streams see every partial (items come closer than the default
        // 30 a second); `long_streams.rs` tries the coalescing itself.
        max_partials_per_second: 1_000_000,
        ..Settings::default()
    }
}

/// The store the suite runs against: memory, or the Redis at `KEEPSAKE_TEST_REDIS`
/// (the test command starts one). Each server gets its own key namespace, so tests
/// running in parallel on one Redis do not see each other's sessions.
pub fn with_test_store(mut settings: Settings) -> Settings {
    if let Ok(url) = std::env::var("KEEPSAKE_TEST_REDIS")
        && settings.store == "memory"
    {
        settings.store = url;
        settings.store_namespace = format!("test-{:016x}", rand_u64());
    }
    settings
}

/// Whether the suite runs against Redis.
pub fn on_redis() -> bool {
    std::env::var_os("KEEPSAKE_TEST_REDIS").is_some()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A fresh SipHash key per call: random enough to keep namespaces apart.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

impl TestServer {
    pub async fn start(settings: Settings, apps: Vec<App>) -> TestServer {
        let server = Server::new(with_test_store(settings), apps).expect("apps mount");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(keepsake::run(listener, server, async move {
            let _ = stopped.await;
        }));
        TestServer {
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has finished.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let finished = tokio::time::timeout(Duration::from_secs(10), task).await;
            assert!(finished.is_ok(), "server did not shut down in time");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn config(&self, app: &str) -> AppConfig {
        self.client
            .get(self.url(&api::GetConfig::path(&AppId(app.into()))))
            .send()
            .await
            .expect("config request")
            .json()
            .await
            .expect("config body")
    }

    pub async fn start_session(&self, app: &str) -> SessionId {
        let started: SessionStarted = self
            .client
            .post(self.url(&api::StartSession::path(&AppId(app.into()))))
            .send()
            .await
            .expect("session request")
            .json()
            .await
            .expect("session body");
        started.session_id
    }

    pub async fn event(
        &self,
        app: &str,
        session: &SessionId,
        listener: ListenerId,
        inputs: Vec<Value>,
    ) -> Result<EventResult, (u16, ErrorBody)> {
        let request = EventRequest {
            listener,
            inputs,
            held: Vec::new(),
            rendered: None,
            shown: Vec::new(),
        };
        self.send_event(app, session, &request).await
    }

    /// Runs an event request as given (e.g. with sealed browser-state values held).
    pub async fn send_event(
        &self,
        app: &str,
        session: &SessionId,
        request: &EventRequest,
    ) -> Result<EventResult, (u16, ErrorBody)> {
        let path = api::RunEvent::path(&(AppId(app.into()), *session));
        let response = self
            .client
            .post(self.url(&path))
            .json(request)
            .send()
            .await
            .expect("event request");
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(response.json().await.expect("event body"))
        } else {
            Err((status, response.json().await.expect("error body")))
        }
    }

    /// Runs an event request on the streamed route (`RunEventStreamed`); the response
    /// as it comes, for tests that read or drop it mid-stream.
    pub async fn send_streamed(
        &self,
        app: &str,
        session: &SessionId,
        request: &EventRequest,
    ) -> reqwest::Response {
        let path = api::RunEventStreamed::path(&(AppId(app.into()), *session));
        self.client
            .post(self.url(&path))
            .json(request)
            .send()
            .await
            .expect("streamed event request")
    }

    /// Runs an event request on the streamed route: its lines once the body ends
    /// (checked to be NDJSON), each made whole as a page makes it (the changes they
    /// carry applied to what came before, [`Holding`]), or the status and error body
    /// of a refusal.
    pub async fn stream_event(
        &self,
        app: &str,
        session: &SessionId,
        request: &EventRequest,
    ) -> Result<Vec<StreamedEvent>, (u16, ErrorBody)> {
        let response = self.send_streamed(app, session, request).await;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err((status, response.json().await.expect("error body")));
        }
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("a text content type")
            .to_owned();
        assert_eq!(content_type, "application/x-ndjson");
        let body = response.text().await.expect("streamed body");
        let mut holding = Holding::default();
        let mut whole = |updates: &mut Vec<ComponentUpdate>| {
            for update in updates {
                holding.resolve(update).expect("changes that apply");
            }
        };
        Ok(body
            .lines()
            .map(|line| {
                let mut line = serde_json::from_str(line).expect("a streamed line");
                match &mut line {
                    StreamedEvent::Partial(partial) => whole(&mut partial.updates),
                    StreamedEvent::Done(result) => whole(&mut result.updates),
                    StreamedEvent::Failed(_) => {}
                }
                line
            })
            .collect())
    }

    /// `GET /healthz`, as JSON.
    pub async fn health(&self) -> Value {
        self.client
            .get(self.url("/healthz"))
            .send()
            .await
            .expect("healthz request")
            .json()
            .await
            .expect("healthz body")
    }

    /// Opens a page's stream; drop the returned stream to close it.
    pub async fn open_feed(&self, app: &str, session: &SessionId) -> MessageStream {
        let response = self
            .client
            .get(self.url(&api::feed_path(&AppId(app.into()), session)))
            .send()
            .await
            .expect("stream request");
        assert!(
            response.status().is_success(),
            "stream refused: {}",
            response.status()
        );
        MessageStream {
            bytes: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }
}

/// The listener with this api name.
pub fn listener_named(config: &AppConfig, api_name: &str) -> ListenerId {
    config
        .listeners
        .iter()
        .find(|d| d.api_name.as_deref() == Some(api_name))
        .map(|d| d.id)
        .unwrap_or_else(|| panic!("no listener named {api_name}"))
}

/// The component with this label.
pub fn component(config: &AppConfig, label: &str) -> ComponentId {
    config
        .components
        .iter()
        .find(|c| c.props.label.as_deref() == Some(label))
        .map(|c| c.id)
        .unwrap_or_else(|| panic!("no component labelled {label}"))
}

/// The last value the result sets on `component`.
pub fn value_of(result: &EventResult, component: ComponentId) -> Option<Value> {
    result
        .updates
        .iter()
        .rev()
        .find(|u| u.component == component && u.value.is_some())
        .and_then(|u| u.value.clone())
}

pub fn assert_error(
    outcome: Result<EventResult, (u16, ErrorBody)>,
    status: u16,
    kind: ErrorKind,
) -> ErrorBody {
    match outcome {
        Ok(result) => panic!("expected {kind:?}, got success {result:?}"),
        Err((got_status, body)) => {
            assert_eq!((got_status, body.error), (status, kind), "{}", body.message);
            assert!(!body.message.is_empty());
            body
        }
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// A minimal SSE reader for `FeedMessage`s.
pub struct MessageStream {
    bytes: ByteStream,
    buffer: String,
}

impl MessageStream {
    /// The next message, or None if the stream ended or nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<FeedMessage> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data).expect("stream message is JSON"));
            }
            let chunk = tokio::time::timeout_at(deadline, self.bytes.next())
                .await
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }

    /// Skips heartbeats until a push arrives.
    pub async fn next_push(
        &mut self,
        wait: Duration,
    ) -> Option<keepsake::protocol::event::ComponentUpdate> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                FeedMessage::Push { update } => return Some(update),
                _ => continue,
            }
        }
    }
}

/// Waits until `check` holds, polling, or panics after `wait`.
pub async fn eventually(wait: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + wait;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub const ERR_SESSION: ErrorKind = ErrorKind::UnknownSession;

impl TestServer {
    /// A client for a server this test did not start (another process).
    pub fn external(base: String) -> TestServer {
        TestServer {
            base,
            client: reqwest::Client::new(),
            stop: None,
            task: None,
        }
    }
}

/// A redis-server of the test's own, on a free loopback port, with its data in a
/// scratch directory (append-only file, so that a restart keeps what was written).
pub struct RedisProcess {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl RedisProcess {
    pub fn start() -> RedisProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("keepsake-redis-{port}-{:x}", rand_u64()));
        std::fs::create_dir_all(&dir).expect("redis scratch dir");
        let mut redis = RedisProcess {
            child: None,
            port,
            dir,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops Redis abruptly (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts Redis on the same port and data directory, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/install.sh installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one command; the first line of the reply, or `None` if Redis is away.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut line = String::new();
        std::io::BufReader::new(stream).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
