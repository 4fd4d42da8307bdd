//! Keepsake's benchmark tool (run by `scripts/bench`, which writes BENCHMARKS.md).
//!
//! - `http --keepsake URL --bare URL`: a load generator (hyper, N concurrent sessions,
//!   each on its own keep-alive connection) that measures the cart's "Add Items" round
//!   trip against keepsake-demo and the bare baseline (`examples/bare.rs`), alternating
//!   rounds so both see the same machine, then global-state contention.
//! - `engine`: in-process measurements of memory per session, latency at scale and the
//!   expiry sweep's cost, with a counting allocator.
//!
//! Every section prints Markdown; figures are measured, never assumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cap::Cap;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use keepsake::protocol::event::{EventRequest, EventResult};
use keepsake::protocol::{DependencyId, SessionId};
use keepsake::{Server, Settings, demos};
use serde_json::{Value, json};

#[path = "../benches/support/mod.rs"]
mod support;
use support::counter_app;

// mimalloc, as in keepsake-demo; `Cap` counts the heap bytes the engine figures report.
#[global_allocator]
static ALLOCATOR: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP round trips against a running keepsake-demo and the bare baseline.
    Http {
        #[arg(long)]
        keepsake: String,
        #[arg(long)]
        bare: String,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Seconds per measured round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds per target (alternating).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Cart and global rounds against one deployment, each request to a random one
    /// of `--url` (repeat it for several instances): the store comparison.
    Store {
        /// What the row is called in the report.
        #[arg(long)]
        label: String,
        #[arg(long = "url", required = true)]
        urls: Vec<String>,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// In-process measurements: memory, scale, sweep.
    Engine {
        /// Sessions for the large-scale figures.
        #[arg(long, default_value_t = 1_000_000)]
        sessions: usize,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Http {
            keepsake,
            bare,
            concurrency,
            seconds,
            rounds,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(http(
                keepsake,
                bare,
                concurrency,
                Duration::from_secs(seconds),
                rounds,
            ))
        }
        Command::Store {
            label,
            urls,
            concurrency,
            seconds,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(store_row(
                label,
                urls,
                concurrency,
                Duration::from_secs(seconds),
            ))
        }
        Command::Engine { sessions } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(engine(sessions))
        }
    }
}

// ---------------------------------------------------------------- HTTP load

/// A client's keep-alive HTTP/1.1 connection to one server, as a browser tab holds
/// one. Requests go straight down it: no pool to check out from and no URL to parse
/// per request. With hyper's pooled client the load generator spent as much CPU per
/// request as the server did, and its own queueing went into every latency measured.
struct Connection {
    address: String,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// Connects to `base` (`http://host:port`).
    async fn open(base: &str) -> Result<Self, String> {
        let uri: Uri = base.parse().map_err(|e| format!("{base}: {e}"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{base}: no host"))?
            .as_str();
        let host = HeaderValue::from_str(authority).map_err(|e| e.to_string())?;
        let mut connection = Connection {
            address: authority.to_owned(),
            host,
            sender: None,
        };
        connection.sender().await?;
        Ok(connection)
    }

    /// The open connection, or a new one if the server closed it.
    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = tokio::net::TcpStream::connect(&self.address)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "not connected".to_owned())
    }

    /// POSTs a JSON `body` to `path`; the status and the response body.
    async fn post(&mut self, path: &Uri, body: Bytes) -> Result<(u16, Bytes), String> {
        let request = hyper::Request::post(path.clone())
            .header(header::HOST, self.host.clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let sender = self.sender().await?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let outcome = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, body))
        }
        .await;
        if outcome.is_err() {
            // Reconnect on the next request rather than reuse a broken connection.
            self.sender = None;
        }
        outcome
    }
}

/// Parses a request path built by the load generator.
fn path(path: &str) -> Uri {
    path.parse()
        .unwrap_or_else(|e| panic!("the bench built an invalid path {path}: {e}"))
}

#[derive(Clone, Copy)]
enum Target {
    Keepsake,
    Bare,
    Global,
}

struct Round {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Histogram<u64>,
    /// For the global round: the highest count any response reported.
    max_count: u64,
    /// Share of one core the load generator used: near 100%, its own queueing would
    /// be part of every latency it measures.
    load_cpu: f64,
}

/// One measured round: `concurrency` workers, each with its own session (renewed
/// every 20 events so carts stay small, as a person's would) and its own keep-alive
/// connection, for `length`.
async fn round(base: &str, target: Target, concurrency: usize, length: Duration) -> Round {
    round_over(&[base.to_owned()], target, concurrency, length).await
}

/// As [`round`], with every request (session start or event) sent to a randomly
/// chosen one of `bases`: instances of one deployment, no sticky sessions. Each worker
/// holds one connection per instance, opened before the clock starts.
async fn round_over(
    bases: &[String],
    target: Target,
    concurrency: usize,
    length: Duration,
) -> Round {
    let (start, events, body): (Uri, fn(&str) -> String, Bytes) = match target {
        Target::Keepsake => (
            path("/api/apps/shopping-cart/sessions"),
            |s| format!("/api/apps/shopping-cart/sessions/{s}/events"),
            Bytes::from(r#"{"dependency":0,"inputs":[["Milk"],null]}"#),
        ),
        Target::Global => (
            path("/api/apps/visitor-counter/sessions"),
            |s| format!("/api/apps/visitor-counter/sessions/{s}/events"),
            Bytes::from(r#"{"dependency":0,"inputs":[null]}"#),
        ),
        Target::Bare => (
            path("/bare/sessions"),
            |_| "/bare/events".to_owned(),
            Bytes::from(r#"{"dependency":0,"inputs":[["Milk"],null]}"#),
        ),
    };
    let mut workers = tokio::task::JoinSet::new();
    let mut ready = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut connections = Vec::with_capacity(bases.len());
        for base in bases {
            match Connection::open(base).await {
                Ok(connection) => connections.push(connection),
                Err(error) => panic!("cannot connect to {base}: {error}"),
            }
        }
        ready.push(connections);
    }
    let max_count = Arc::new(AtomicU64::new(0));
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let deadline = started + length;
    for mut connections in ready {
        let (start, body, max_count) = (start.clone(), body.clone(), max_count.clone());
        workers.spawn(async move {
            let instances = connections.len();
            let pick = move || rand::random_range(0..instances);
            let mut latencies =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut requests, mut errors) = (0u64, 0u64);
            'sessions: while Instant::now() < deadline {
                let Ok((200, started)) = connections[pick()].post(&start, Bytes::new()).await
                else {
                    errors += 1;
                    continue;
                };
                let started: Value = serde_json::from_slice(&started).unwrap_or_default();
                let session = started["session_id"].as_str().unwrap_or_default();
                let events = path(&events(session));
                for _ in 0..20 {
                    if Instant::now() >= deadline {
                        break 'sessions;
                    }
                    let connection = &mut connections[pick()];
                    let sent = Instant::now();
                    let outcome = connection.post(&events, body.clone()).await;
                    let micros = sent.elapsed().as_micros() as u64;
                    requests += 1;
                    match outcome {
                        Ok((200, response)) => {
                            let _ = latencies.record(micros.max(1));
                            if let Ok(result) = serde_json::from_slice::<EventResult>(&response) {
                                for update in &result.updates {
                                    let count = update
                                        .value
                                        .as_ref()
                                        .and_then(|v| {
                                            v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64())
                                        })
                                        .unwrap_or(0);
                                    max_count.fetch_max(count, Ordering::Relaxed);
                                }
                            }
                        }
                        _ => errors += 1,
                    }
                }
            }
            (requests, errors, latencies)
        });
    }
    let mut total = Round {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        load_cpu: 0.0,
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        max_count: 0,
    };
    while let Some(Ok((requests, errors, latencies))) = workers.join_next().await {
        total.requests += requests;
        total.errors += errors;
        let _ = total.latencies.add(latencies);
    }
    total.elapsed = started.elapsed();
    total.load_cpu = (process_cpu_seconds() - cpu_before) / total.elapsed.as_secs_f64();
    total.max_count = max_count.load(Ordering::Relaxed);
    total
}

fn rps(round: &Round) -> f64 {
    (round.requests - round.errors) as f64 / round.elapsed.as_secs_f64()
}

/// Per-round figures for a report line: each formatted, joined by ", ".
fn per_round(values: impl Iterator<Item = f64>, format: impl Fn(f64) -> String) -> String {
    values.map(format).collect::<Vec<_>>().join(", ")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn http(
    keepsake: String,
    bare: String,
    concurrency: usize,
    length: Duration,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    // Warm up both (allocator, caches).
    round(&bare, Target::Bare, concurrency, Duration::from_secs(1)).await;
    round(
        &keepsake,
        Target::Keepsake,
        concurrency,
        Duration::from_secs(1),
    )
    .await;

    let (mut bare_rounds, mut keepsake_rounds) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        bare_rounds.push(round(&bare, Target::Bare, concurrency, length).await);
        keepsake_rounds.push(round(&keepsake, Target::Keepsake, concurrency, length).await);
    }
    let bare_rps: Vec<f64> = bare_rounds.iter().map(rps).collect();
    let keepsake_rps: Vec<f64> = keepsake_rounds.iter().map(rps).collect();
    let ratios: Vec<f64> = keepsake_rps
        .iter()
        .zip(&bare_rps)
        .map(|(k, b)| k / b)
        .collect();
    let mut keepsake_latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut bare_latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for r in &keepsake_rounds {
        keepsake_latency.add(&r.latencies)?;
    }
    for r in &bare_rounds {
        bare_latency.add(&r.latencies)?;
    }
    let errors: u64 = keepsake_rounds
        .iter()
        .chain(&bare_rounds)
        .map(|r| r.errors)
        .sum();

    println!(
        "### Event round trip over HTTP (cart \"Add Items\", {concurrency} concurrent sessions)\n"
    );
    println!(
        "{rounds} alternating rounds of {}s per server; sessions renewed every 20 events.\n",
        length.as_secs()
    );
    // p99 per round, judged like throughput: on the median round, so that one round
    // during which this shared machine stalls does not decide the figure alone.
    let round_p99 = |rounds: &[Round]| -> Vec<f64> {
        rounds
            .iter()
            .map(|r| r.latencies.value_at_quantile(0.99) as f64)
            .collect()
    };
    let (bare_p99, keepsake_p99) = (round_p99(&bare_rounds), round_p99(&keepsake_rounds));
    println!(
        "| server | throughput (median of rounds) | p50 | p99 (median of rounds) | p99 of all rounds pooled | p99.9 pooled |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, values, p99s, hist) in [
        (
            "bare axum route, same body",
            &bare_rps,
            &bare_p99,
            &bare_latency,
        ),
        (
            "Keepsake cart event",
            &keepsake_rps,
            &keepsake_p99,
            &keepsake_latency,
        ),
    ] {
        println!(
            "| {name} | {:.0} req/s (rounds: {}) | {} µs | {:.0} µs (rounds: {}) | {} µs | {} µs |",
            median(values.clone()),
            per_round(values.iter().copied(), |v| format!("{v:.0}")),
            hist.value_at_quantile(0.5),
            median(p99s.clone()),
            per_round(p99s.iter().copied(), |v| format!("{v:.0}")),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
        );
    }
    let load_cpu = |rounds: &[Round]| median(rounds.iter().map(|r| r.load_cpu).collect());
    println!(
        "\nThe load generator (one thread, on its own core) was busy {:.0}% of the bare rounds and {:.0}% of Keepsake's (median of rounds).",
        load_cpu(&bare_rounds) * 100.0,
        load_cpu(&keepsake_rounds) * 100.0,
    );
    let ratio = median(ratios.clone());
    let p99 = median(keepsake_p99.clone()) / 1000.0;
    let verdict = |met: bool| if met { "met" } else { "missed" };
    println!(
        "\nThroughput ratio Keepsake / bare: **{:.0}%** (per round: {}; target ≥ 80%: {}). p99: **{:.2} ms** in the median round (target < 2 ms: {}); {:.2} ms over all rounds pooled. Errors: {errors}.\n",
        ratio * 100.0,
        per_round(ratios.iter().copied(), |r| format!("{:.0}%", r * 100.0)),
        verdict(ratio >= 0.8),
        p99,
        verdict(p99 < 2.0),
        keepsake_latency.value_at_quantile(0.99) as f64 / 1000.0,
    );

    // Global contention: every session increments the one visitor counter.
    let global = round(&keepsake, Target::Global, concurrency, length).await;
    let successes = global.requests - global.errors;
    println!("### Global-state contention ({concurrency} sessions incrementing one global)\n");
    // The server is fresh (scripts/bench starts it) and nothing else visits, so the
    // highest count seen must equal the number of acknowledged increments.
    println!(
        "| increments acknowledged | final count seen | lost updates | throughput | p50 | p99 |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| {successes} | {} | {} | {:.0} req/s | {} µs | {} µs |\n",
        global.max_count,
        successes.abs_diff(global.max_count),
        rps(&global),
        global.latencies.value_at_quantile(0.5),
        global.latencies.value_at_quantile(0.99),
    );
    Ok(())
}

/// One row of the store comparison table (the header is written by scripts/bench).
async fn store_row(
    label: String,
    urls: Vec<String>,
    concurrency: usize,
    length: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    round_over(&urls, Target::Keepsake, concurrency, Duration::from_secs(1)).await;
    let cart = round_over(&urls, Target::Keepsake, concurrency, length).await;
    let global = round_over(&urls, Target::Global, concurrency, length).await;
    let acknowledged = global.requests - global.errors;
    println!(
        "| {label} | {:.0} req/s | {} µs | {} µs | {} | {:.0} req/s | {acknowledged} | {} | {} |",
        rps(&cart),
        cart.latencies.value_at_quantile(0.5),
        cart.latencies.value_at_quantile(0.99),
        cart.errors,
        rps(&global),
        global.max_count,
        acknowledged.abs_diff(global.max_count),
    );
    Ok(())
}

// ---------------------------------------------------------------- in-process engine

/// CPU time this process has used, all threads, user and system.
fn process_cpu_seconds() -> f64 {
    // /proc/self/stat: utime and stime are the 12th and 13th fields after the
    // parenthesised command name, in USER_HZ ticks (100 per second in Linux's ABI).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn engine_settings(capacity: usize) -> Settings {
    Settings {
        session_capacity: capacity as u64 * 2,
        // Only explicit sweeps, so they can be timed.
        sweep_interval: Duration::from_secs(3600),
        ..Settings::default()
    }
}

async fn bump(server: &Server, session: &SessionId) {
    let request = EventRequest {
        dependency: DependencyId(0),
        inputs: vec![Value::Null],
        held: Vec::new(),
        rendered: None,
    };
    if let Err(error) = server.run_event("bench-counter", session, request).await {
        panic!("bump failed: {error}");
    }
}

/// A xorshift step: the same pseudo-random session order in every run.
fn next_index(state: &mut u64, len: usize) -> usize {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % len as u64) as usize
}

/// Appends `samples` in-process event latencies (ns) over random live sessions.
async fn latencies_in_process(
    server: &Server,
    sessions: &[SessionId],
    samples: usize,
    seed: &mut u64,
    nanos: &mut Vec<f64>,
) {
    for _ in 0..samples {
        // Copied before the clock starts: the bench's own array of a million ids is
        // not the engine's memory, and a cache miss on it is not the engine's cost.
        let session = sessions[next_index(seed, sessions.len())];
        let started = Instant::now();
        bump(server, &session).await;
        nanos.push(started.elapsed().as_nanos() as f64);
    }
}

/// Appends `samples` sequential event round trips (ns) over HTTP to random sessions.
async fn latencies_over_http(
    connection: &mut Connection,
    sessions: &[SessionId],
    samples: usize,
    seed: &mut u64,
    nanos: &mut Vec<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let body = Bytes::from(r#"{"dependency":0,"inputs":[null]}"#);
    for _ in 0..samples {
        let session = sessions[next_index(seed, sessions.len())];
        let events = path(&format!(
            "/api/apps/bench-counter/sessions/{session}/events"
        ));
        let started = Instant::now();
        let (status, _) = connection.post(&events, body.clone()).await?;
        if status != 200 {
            return Err(format!("status {status}").into());
        }
        nanos.push(started.elapsed().as_nanos() as f64);
    }
    Ok(())
}

/// Median and p99 of latencies in nanoseconds.
fn median_and_p99(mut nanos: Vec<f64>) -> (f64, f64) {
    nanos.sort_by(f64::total_cmp);
    (nanos[nanos.len() / 2], nanos[nanos.len() * 99 / 100])
}

/// One server of the scale comparison: its live sessions, served over HTTP too.
struct ScaleCase {
    live: usize,
    server: Server,
    sessions: Vec<SessionId>,
    connection: Connection,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    in_process: Vec<f64>,
    over_http: Vec<f64>,
    seed: u64,
}

impl ScaleCase {
    async fn start(live: usize) -> Result<Self, Box<dyn std::error::Error>> {
        let server = Server::new(engine_settings(live), [counter_app()])?;
        let sessions = start_sessions(&server, "bench-counter", live).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(keepsake::run(listener, server.clone(), async move {
            let _ = stopped.await;
        }));
        let connection = Connection::open(&base).await?;
        Ok(ScaleCase {
            live,
            server,
            sessions,
            connection,
            stop,
            serving,
            in_process: Vec::new(),
            over_http: Vec::new(),
            seed: 0x9e37_79b9_7f4a_7c15,
        })
    }

    async fn stop(self) {
        drop(self.connection);
        let _ = self.stop.send(());
        let _ = self.serving.await;
        self.server.shutdown();
    }
}

async fn start_sessions(server: &Server, app: &str, n: usize) -> Vec<SessionId> {
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        let started = server.start_session(app).await.expect("sessions start");
        sessions.push(started.session_id);
    }
    sessions
}

async fn engine(large: usize) -> Result<(), Box<dyn std::error::Error>> {
    println!("### Memory\n");
    // Idle sessions: no state touched yet, so everything measured is overhead.
    let idle = 100_000;
    {
        let server = Server::new(engine_settings(idle), [counter_app()])?;
        let before = ALLOCATOR.allocated();
        let sessions = start_sessions(&server, "bench-counter", idle).await;
        server.sweep_now().await;
        let per_session = (ALLOCATOR.allocated() - before) as f64 / idle as f64;
        println!(
            "- Idle session overhead: **{per_session:.0} bytes** per session ({idle} sessions, heap bytes counted by the allocator, including the id kept by the caller: {} bytes; target < 1024).",
            std::mem::size_of::<SessionId>() + 32
        );
        drop(sessions);
        server.shutdown();
    }

    // One million sessions each holding a 10-item cart.
    {
        let server = Server::new(engine_settings(large), [demos::shopping_cart()?])?;
        let rss_before = rss_bytes();
        let heap_before = ALLOCATOR.allocated();
        let started = Instant::now();
        let add = |items: Value| EventRequest {
            dependency: DependencyId(0),
            inputs: vec![items, Value::Null],
            held: Vec::new(),
            rendered: None,
        };
        let all = json!(["Cereal", "Milk", "Orange Juice", "Water"]);
        let two = json!(["Milk", "Water"]);
        for _ in 0..large {
            let session = server.start_session("shopping-cart").await?.session_id;
            for items in [&all, &all, &two] {
                server
                    .run_event("shopping-cart", &session, add(items.clone()))
                    .await?;
            }
        }
        server.sweep_now().await;
        let filled = started.elapsed();
        let rss = rss_bytes().saturating_sub(rss_before);
        let heap = ALLOCATOR.allocated() - heap_before;
        println!(
            "- {large} sessions × 10-item cart: **{:.2} GiB resident** growth ({:.2} GiB heap; {:.0} bytes per session; built in {:.1}s; target < 1.5 GiB).",
            rss as f64 / (1u64 << 30) as f64,
            heap as f64 / (1u64 << 30) as f64,
            heap as f64 / large as f64,
            filled.as_secs_f64(),
        );
        server.shutdown();
    }

    println!("\n### Scale\n");
    // Both servers live side by side and are measured in alternating rounds, so a
    // slower moment of this shared machine falls on both, not on one.
    const ROUNDS: usize = 6;
    let (in_process_round, http_round) = (4_000, 1_000);
    let mut small = ScaleCase::start(1000).await?;
    let mut big = ScaleCase::start(large).await?;
    let mut warm_up = Vec::new();
    for case in [&mut small, &mut big] {
        latencies_in_process(
            &case.server,
            &case.sessions,
            in_process_round,
            &mut case.seed,
            &mut warm_up,
        )
        .await;
        latencies_over_http(
            &mut case.connection,
            &case.sessions,
            http_round / 4,
            &mut case.seed,
            &mut warm_up,
        )
        .await?;
    }
    // Events to 1,000 of the million: tells the cost of a big index apart from the
    // cost of touching sessions that are not in the CPU caches.
    let mut hot_set = Vec::new();
    let mut round_ratios = Vec::new();
    for round in 0..ROUNDS {
        let mut round_medians = [(0.0, 0.0); 2];
        let mut cases: Vec<_> = [&mut small, &mut big]
            .into_iter()
            .zip(round_medians.iter_mut())
            .collect();
        // Which server goes first alternates too: the second of a pair runs warmer.
        if round % 2 == 1 {
            cases.reverse();
        }
        for (case, medians) in cases {
            let mut in_process = Vec::new();
            let mut over_http = Vec::new();
            latencies_in_process(
                &case.server,
                &case.sessions,
                in_process_round,
                &mut case.seed,
                &mut in_process,
            )
            .await;
            if case.live == large {
                latencies_in_process(
                    &case.server,
                    &case.sessions[..1000],
                    in_process_round,
                    &mut case.seed,
                    &mut hot_set,
                )
                .await;
            }
            latencies_over_http(
                &mut case.connection,
                &case.sessions,
                http_round,
                &mut case.seed,
                &mut over_http,
            )
            .await?;
            *medians = (
                median_and_p99(in_process.clone()).0,
                median_and_p99(over_http.clone()).0,
            );
            case.in_process.extend(in_process);
            case.over_http.extend(over_http);
        }
        round_ratios.push((
            round_medians[1].0 / round_medians[0].0,
            round_medians[1].1 / round_medians[0].1,
        ));
    }
    println!(
        "{ROUNDS} alternating rounds (which server goes first alternates too); per round and server {in_process_round} events in process, then {http_round} over HTTP, each to a random live session; on the big server, also {in_process_round} events in process to its first 1,000 sessions.\n"
    );
    println!(
        "| live sessions | median event latency in process | p99 | median round trip over HTTP (loopback, one client) | p99 |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let mut medians = Vec::new();
    for case in [&small, &big] {
        let in_process = median_and_p99(case.in_process.clone());
        let over_http = median_and_p99(case.over_http.clone());
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
            case.live,
            in_process.0 / 1e3,
            in_process.1 / 1e3,
            over_http.0 / 1e3,
            over_http.1 / 1e3
        );
        medians.push((in_process.0, over_http.0));
    }
    let hot = median_and_p99(hot_set);
    println!(
        "| {large}, events to 1,000 of them | {:.1} µs | {:.1} µs | | |",
        hot.0 / 1e3,
        hot.1 / 1e3
    );
    println!(
        "\nRatio {large} vs 1,000 sessions, event round trip over HTTP: **{:.2}×** (per round: {}; target ≤ 1.2×). The engine's step alone, in process: **{:.2}×** (per round: {}); it is {:.1} µs of a {:.0} µs round trip. Events to 1,000 of the {large} sessions, in process: **{:.2}×** the 1,000-session figure.\n",
        medians[1].1 / medians[0].1,
        per_round(round_ratios.iter().map(|r| r.1), |r| format!("{r:.2}")),
        medians[1].0 / medians[0].0,
        per_round(round_ratios.iter().map(|r| r.0), |r| format!("{r:.2}")),
        medians[1].0 / 1e3,
        medians[1].1 / 1e3,
        hot.0 / medians[0].0,
    );
    small.stop().await;
    big.stop().await;

    println!("### Expiry sweep\n");
    const BATCHES: usize = 5;
    const BATCH: usize = 1000;
    println!(
        "{BATCHES} batches of {BATCH} sessions, started 300 ms apart, expire among a growing number of live ones; each batch's sweep is timed (median, min, max), since one timing alone on this machine can land on a pause.\n"
    );
    println!(
        "| live sessions | expired per sweep | sweep time (median of {BATCHES}) | min | max |\n| --- | --- | --- | --- | --- |"
    );
    for live in [10_000usize, 100_000, large] {
        // The batches expire first; the others are started a second later, so at
        // every sweep they are all still within their retention. Starting a million
        // sessions takes seconds here: the retention leaves room for that.
        let retention = Duration::from_secs(8 + (live / 10_000) as u64);
        let settings = Settings {
            session_retention: retention,
            ..engine_settings(live)
        };
        let server = Server::new(settings, [counter_app()])?;
        let mut batches = Vec::with_capacity(BATCHES);
        let mut next_start = Instant::now();
        for _ in 0..BATCHES {
            tokio::time::sleep_until(next_start.into()).await;
            let sessions = start_sessions(&server, "bench-counter", BATCH).await;
            // Taken once the whole batch has started: its last deadline.
            let born = Instant::now();
            batches.push((born, sessions));
            next_start = born + Duration::from_millis(300);
        }
        tokio::time::sleep_until((next_start + Duration::from_millis(300)).into()).await;
        let kept = start_sessions(&server, "bench-counter", live).await;
        let mut times = Vec::with_capacity(BATCHES);
        let mut expired = Vec::with_capacity(BATCHES);
        for (born, _) in &batches {
            // Due once the retention and the deadline step have passed (the next
            // batch is due at least 300 ms later, the kept sessions 600 ms after the
            // last batch).
            let sweep_at = *born
                + retention
                + Settings::retention_slack(retention)
                + Duration::from_millis(20);
            assert!(Instant::now() < sweep_at, "starting sessions took too long");
            tokio::time::sleep_until(sweep_at.into()).await;
            let before = server.live_sessions("bench-counter").await?;
            let started = Instant::now();
            server.sweep_now().await;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            expired.push(before.saturating_sub(server.live_sessions("bench-counter").await?));
        }
        times.sort_by(f64::total_cmp);
        expired.sort_unstable();
        let expired = if expired.first() == expired.last() {
            expired[0].to_string()
        } else {
            format!("{} to {}", expired[0], expired[BATCHES - 1])
        };
        println!(
            "| {live} | {expired} | {:.2} ms | {:.2} ms | {:.2} ms |",
            times[BATCHES / 2],
            times[0],
            times[BATCHES - 1]
        );
        drop((batches, kept));
        server.shutdown();
    }
    println!();
    Ok(())
}
