//! The HTTP load generator: keep-alive connections, alternating rounds against
//! Keepsake and the bare baseline, and the store comparison's rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use keepsake::protocol::event::EventResult;
use serde_json::Value;

/// A client's keep-alive HTTP/1.1 connection to one server, as a browser tab holds
/// one. Requests go straight down it: no pool to check out from and no URL to parse
/// per request. With hyper's pooled client the load generator spent as much CPU per
/// request as the server did, and its own queueing went into every latency measured.
pub(crate) struct Connection {
    address: String,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// Connects to `base` (`http://host:port`).
    pub(crate) async fn open(base: &str) -> Result<Self, String> {
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
    pub(crate) async fn post(&mut self, path: &Uri, body: Bytes) -> Result<(u16, Bytes), String> {
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
pub(crate) fn path(path: &str) -> Uri {
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
            Bytes::from(r#"{"listener":0,"inputs":[["Milk"],null]}"#),
        ),
        Target::Global => (
            path("/api/apps/visitor-counter/sessions"),
            |s| format!("/api/apps/visitor-counter/sessions/{s}/events"),
            Bytes::from(r#"{"listener":0,"inputs":[null]}"#),
        ),
        Target::Bare => (
            path("/bare/sessions"),
            |_| "/bare/events".to_owned(),
            Bytes::from(r#"{"listener":0,"inputs":[["Milk"],null]}"#),
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
pub(crate) fn per_round(
    values: impl Iterator<Item = f64>,
    format: impl Fn(f64) -> String,
) -> String {
    values.map(format).collect::<Vec<_>>().join(", ")
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub(crate) async fn http(
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
pub(crate) async fn store_row(
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
