//! How an event's cost grows with the size of the session state it appends to (run
//! by `scripts/bench`, which adds its tables to BENCHMARKS.md).
//!
//! The app is a chat history: a session `State` holding a list of messages, one
//! listener that appends a message, and a `.change` listener on the state that shows
//! its length (so the engine's comparison is in every figure). Each measured event
//! appends one message to a state of 10, 1,000 or 10,000; an untimed event then takes
//! it off again, so every sample sees the same size. The sizes take turns in rounds,
//! so all of them see the same machine.
//!
//! - `engine`: in process (`Server::run_event`), on a current-thread runtime.
//! - `serve --addr A`: the same apps served over HTTP (mimalloc, keepsake's runtime).
//! - `http --url U`: one client on one keep-alive connection against `serve`.

use std::time::Instant;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use keepsake::StateType;
use keepsake::components::{Button, Number, Textbox};
use keepsake::imbl;
use keepsake::protocol::event::{EventRequest, EventResult};
use keepsake::protocol::{ListenerId, SessionId};
use keepsake::{Blocks, Server, Settings, State};
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The state sizes measured, smallest first (the ratios are against it).
const SIZES: [usize; 3] = [10, 1_000, 10_000];

// The listeners, in the order `history_app` declares them.
const APPEND: ListenerId = ListenerId(0);
const FILL: ListenerId = ListenerId(1);
const POP: ListenerId = ListenerId(2);

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// In-process events.
    Engine {
        /// Timed events per size per round.
        #[arg(long, default_value_t = 400)]
        events: usize,
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
    /// Serves the apps over HTTP.
    Serve {
        #[arg(long, default_value = "127.0.0.1:7880")]
        addr: std::net::SocketAddr,
    },
    /// Events over HTTP against `serve`.
    Http {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 400)]
        events: usize,
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
}

/// A state type the benchmark can hold a chat history in.
trait History: StateType {
    /// What the table calls it.
    const NAME: &'static str;
    const APP: &'static str;
    fn filled(n: usize) -> Self;
    fn push(&mut self, message: String);
    fn pop(&mut self);
    fn len(&self) -> usize;
}

impl History for Vec<String> {
    const NAME: &'static str = "`Vec<String>`";
    const APP: &'static str = "history-vec";
    fn filled(n: usize) -> Self {
        (0..n).map(message).collect()
    }
    fn push(&mut self, message: String) {
        Vec::push(self, message);
    }
    fn pop(&mut self) {
        Vec::pop(self);
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl History for keepsake::List<String> {
    const NAME: &'static str = "`keepsake::List<String>`";
    const APP: &'static str = "history-list";
    fn filled(n: usize) -> Self {
        (0..n).map(message).collect()
    }
    fn push(&mut self, message: String) {
        self.push_back(message);
    }
    fn pop(&mut self) {
        self.pop_back();
    }
    fn len(&self) -> usize {
        imbl::Vector::len(self)
    }
}

/// A message of about the length of a short chat line.
fn message(i: usize) -> String {
    format!("message {i:05}: a short line of chat text")
}

fn history_app<H: History>() -> keepsake::App {
    let mut app = Blocks::new(H::APP, "History");
    let history = app.state(State::with_factory(|| H::filled(0)));
    let text = app.add(Textbox::new().label("Message"));
    let count = app.add(Number::new().label("Fill to"));
    let (append, fill, pop) = (
        app.add(Button::new("Append")),
        app.add(Button::new("Fill")),
        app.add(Button::new("Pop")),
    );
    let shown = app.add(Number::new().label("Messages"));
    app.click(
        append,
        (text, history),
        history,
        |text: String, mut h: H| {
            h.push(text);
            h
        },
    );
    app.click(fill, count, history, |n: f64| H::filled(n as usize));
    app.click(pop, history, history, |mut h: H| {
        h.pop();
        h
    });
    app.change(history, history, shown, |h: H| h.len() as f64);
    app.build().expect("the benchmark's app builds")
}

fn apps() -> Vec<keepsake::App> {
    vec![
        history_app::<Vec<String>>(),
        history_app::<keepsake::List<String>>(),
    ]
}

/// One row per state type; the names match `apps()`.
fn kinds() -> Vec<(&'static str, &'static str)> {
    vec![
        (<Vec<String>>::NAME, <Vec<String>>::APP),
        (
            <keepsake::List<String>>::NAME,
            <keepsake::List<String>>::APP,
        ),
    ]
}

fn settings() -> Settings {
    Settings {
        // One session sends every event of a size.
        max_events_per_second: 1_000_000,
        ..Settings::default()
    }
}

/// The request of one event: `APPEND` sends a message, `FILL` a count, `POP` nothing.
fn request(listener: ListenerId, argument: Value) -> EventRequest {
    let inputs = match listener {
        POP => vec![Value::Null],
        FILL => vec![argument],
        _ => vec![argument, Value::Null],
    };
    EventRequest {
        listener,
        inputs,
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
    }
}

/// The length the `.change` listener reported, to check each sample did what it says.
fn reported_length(result: &EventResult) -> Option<usize> {
    result
        .updates
        .last()
        .and_then(|u| u.value.as_ref())
        .and_then(Value::as_f64)
        .map(|n| n as usize)
}

/// Runs events somewhere: in process or over HTTP.
trait Target {
    async fn start(&mut self, app: &str) -> SessionId;
    async fn event(&mut self, app: &str, session: &SessionId, request: EventRequest)
    -> EventResult;
}

struct InProcess(Server);

impl Target for InProcess {
    async fn start(&mut self, app: &str) -> SessionId {
        self.0
            .start_session(app)
            .await
            .expect("session starts")
            .session_id
    }

    async fn event(
        &mut self,
        app: &str,
        session: &SessionId,
        request: EventRequest,
    ) -> EventResult {
        self.0
            .run_event(app, session, request)
            .await
            .unwrap_or_else(|e| panic!("event failed: {e}"))
    }
}

/// One keep-alive HTTP/1.1 connection, requests straight down it.
struct Http {
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
}

impl Http {
    async fn open(url: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let uri: hyper::Uri = url.parse()?;
        let authority = uri.authority().ok_or("no host in the URL")?.as_str();
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Http {
            host: HeaderValue::from_str(authority)?,
            sender,
        })
    }

    async fn post(&mut self, path: String, body: Vec<u8>) -> Bytes {
        let request = hyper::Request::post(path)
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        self.sender.ready().await.expect("connection ready");
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("request sent");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        assert!(status.is_success(), "status {status}: {body:?}");
        body
    }
}

impl Target for Http {
    async fn start(&mut self, app: &str) -> SessionId {
        let body = self
            .post(format!("/api/apps/{app}/sessions"), b"{}".to_vec())
            .await;
        let started: Value = serde_json::from_slice(&body).expect("JSON answer");
        serde_json::from_value(started["session_id"].clone()).expect("a session id")
    }

    async fn event(
        &mut self,
        app: &str,
        session: &SessionId,
        request: EventRequest,
    ) -> EventResult {
        let body = serde_json::to_vec(&request).expect("encodes");
        let answer = self
            .post(format!("/api/apps/{app}/sessions/{session}/events"), body)
            .await;
        serde_json::from_slice(&answer).expect("an event result")
    }
}

/// Median and p99 in microseconds.
fn median_and_p99(mut micros: Vec<f64>) -> (f64, f64) {
    micros.sort_by(f64::total_cmp);
    (micros[micros.len() / 2], micros[micros.len() * 99 / 100])
}

/// Measures every state type at every size on `target` and prints the table.
async fn measure(target: &mut impl Target, title: &str, events: usize, rounds: usize) {
    println!("### {title}");
    println!();
    println!(
        "{events} × {rounds} appends per size, the sizes taking turns; median (p99) per event."
    );
    println!();
    println!("| state | 10 items | 1,000 items | 10,000 items | 1,000 / 10 | 10,000 / 10 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut verdicts = Vec::new();
    for (name, app) in kinds() {
        let mut sessions = Vec::new();
        for size in SIZES {
            let session = target.start(app).await;
            target
                .event(app, &session, request(FILL, json!(size)))
                .await;
            sessions.push(session);
        }
        let mut samples = vec![Vec::with_capacity(events * rounds); SIZES.len()];
        for _ in 0..rounds {
            for (at, size) in SIZES.iter().enumerate() {
                let session = &sessions[at];
                for i in 0..events {
                    let append = request(APPEND, json!(message(i)));
                    let started = Instant::now();
                    let result = target.event(app, session, append).await;
                    samples[at].push(started.elapsed().as_secs_f64() * 1e6);
                    assert_eq!(reported_length(&result), Some(size + 1), "{name}: append");
                    let result = target.event(app, session, request(POP, Value::Null)).await;
                    assert_eq!(reported_length(&result), Some(*size), "{name}: pop");
                }
            }
        }
        let figures: Vec<(f64, f64)> = samples.into_iter().map(median_and_p99).collect();
        let cell = |(median, p99): (f64, f64)| format!("{median:.1} µs ({p99:.1})");
        println!(
            "| {name} | {} | {} | {} | {:.2}× | {:.2}× |",
            cell(figures[0]),
            cell(figures[1]),
            cell(figures[2]),
            figures[1].0 / figures[0].0,
            figures[2].0 / figures[0].0,
        );
        verdicts.push((name, figures[1].0 / figures[0].0));
    }
    println!();
    for (name, ratio) in verdicts {
        let verdict = if ratio <= 2.0 { "met" } else { "missed" };
        println!(
            "- {name}: an append to 1,000 items costs {ratio:.2}× one to 10 (target ≤ 2×: {verdict})."
        );
    }
    println!();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Engine { events, rounds } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut target = InProcess(Server::new(settings(), apps())?);
                let title = "State size: appending to a session state, in process";
                measure(&mut target, title, events, rounds).await;
                Ok(())
            })
        }
        Command::Serve { addr } => keepsake::runtime_builder().build()?.block_on(async {
            let server = Server::new(settings(), apps())?;
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("serving on http://{}", listener.local_addr()?);
            keepsake::run(listener, server, std::future::pending()).await?;
            Ok(())
        }),
        Command::Http {
            url,
            events,
            rounds,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut target = Http::open(&url).await?;
                let title = "State size: appending to a session state, over HTTP (one keep-alive connection)";
                measure(&mut target, title, events, rounds).await;
                Ok(())
            })
        }
    }
}
