//! The bridges' cost (run by `scripts/bench` against `keepsake-demo`): the cart's
//! "Add Items" round trip through Keepsake's own API, through the Gradio-compatible
//! API as `gradio_client`'s `predict` makes it (`queue/join`, then the
//! `queue/data` stream until `close_stream`), and as an MCP `tools/call`.
//!
//! `--concurrency` workers (50) each keep one keep-alive connection and one session
//! (a fresh one every 20 calls, as the HTTP benchmark does), for `--rounds` rounds
//! of `--seconds` per bridge, the bridges taking turns. Prints Markdown.
//!
//! `--gradio URL` (a Gradio server of the state guide's cart,
//! `benches/gradio/cart.py`): instead, the Gradio queue path (`queue/join` +
//! `queue/data`) against that server and against Keepsake's Gradio-compatible bridge,
//! the same requests from the same client, rounds alternating. `--fill N --route
//! URL`: instead, N calls of Gradio's queue-free route, each under a session_hash
//! of its own (a new session each), for the memory-per-session comparison.

use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Parser)]
struct Cli {
    /// keepsake-demo's base URL (its bridges are open).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// A Gradio server of the cart: compare its queue path with Keepsake's bridge.
    #[arg(long)]
    gradio: Option<String>,
    /// Make this many sessions through the queue-free route `--route`, then stop.
    #[arg(long, requires = "route")]
    fill: Option<usize>,
    /// A queue-free route (`.../gradio_api/run/add_items`), for `--fill`.
    #[arg(long)]
    route: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Bridge {
    Native,
    Gradio,
    Mcp,
}

impl Bridge {
    fn label(self) -> &'static str {
        match self {
            Bridge::Native => "Keepsake API (`POST .../events`)",
            Bridge::Gradio => "Gradio API (`queue/join` + `queue/data`, as `predict`)",
            Bridge::Mcp => "MCP (`tools/call`, streamable HTTP)",
        }
    }
}

const CALLS_PER_SESSION: usize = 20;

/// One worker's session on one bridge.
struct Worker {
    http: reqwest::Client,
    base: String,
    /// The app's root: Keepsake's `{base}/apps/shopping-cart`, or a Gradio server's.
    app: String,
    bridge: Bridge,
    /// The native session id, the Gradio session_hash, or the MCP session id.
    session: String,
    calls: usize,
}

fn fresh_name() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON answer of `request`.
async fn json_of(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// The text answer of `request`.
async fn text_of(request: reqwest::RequestBuilder) -> Result<String, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    response.text().await.map_err(|e| e.to_string())
}

/// The `data:` payloads of a server-sent event body.
fn sse_data(body: &str) -> impl Iterator<Item = Value> + '_ {
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter(|data| !data.trim().is_empty())
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
}

impl Worker {
    async fn start_session(&mut self) -> Result<(), String> {
        self.calls = 0;
        let cart = self.app.clone();
        // An MCP client closes the session it is done with, as the SDKs do; left open,
        // each would hold one of the app's places for live MCP sessions until idle.
        if matches!(self.bridge, Bridge::Mcp) && !self.session.is_empty() {
            let close = self
                .http
                .delete(format!("{cart}/mcp"))
                .header("mcp-session-id", &self.session);
            close.send().await.map_err(|e| e.to_string())?;
        }
        self.session = match self.bridge {
            Bridge::Native => {
                let started = json_of(
                    self.http
                        .post(format!("{}/api/apps/shopping-cart/sessions", self.base)),
                )
                .await?;
                started["session_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            }
            Bridge::Gradio => fresh_name(),
            Bridge::Mcp => {
                let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"}}});
                let response = self.mcp_post(&format!("{cart}/mcp"), None, &init).await?;
                let session = response
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                    .ok_or("no Mcp-Session-Id")?
                    .to_owned();
                response.text().await.map_err(|e| e.to_string())?;
                let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
                self.mcp_post(&format!("{cart}/mcp"), Some(&session), &initialized)
                    .await?;
                session
            }
        };
        Ok(())
    }

    async fn mcp_post(
        &self,
        url: &str,
        session: Option<&str>,
        body: &Value,
    ) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        request.send().await.map_err(|e| e.to_string())
    }

    /// One "Add Items" call, which must succeed; through Keepsake's bridges, the cart
    /// size it answered. (Gradio answers no size: its page asks for it with a second
    /// event, the state's `.change`, which Keepsake runs within the first.)
    async fn call(&mut self) -> Result<(), String> {
        if self.session.is_empty() || self.calls == CALLS_PER_SESSION {
            self.start_session().await?;
        }
        self.calls += 1;
        let cart = self.app.clone();
        let size = match self.bridge {
            Bridge::Native => {
                let result = json_of(
                    self.http
                        .post(format!(
                            "{}/api/apps/shopping-cart/sessions/{}/events",
                            self.base, self.session
                        ))
                        .json(&json!({"listener": 0, "inputs": [["Milk"], null]})),
                )
                .await?;
                result["updates"][0]["value"].as_f64()
            }
            Bridge::Gradio => {
                let joined = json_of(self
                    .http
                    .post(format!("{cart}/gradio_api/queue/join"))
                    .json(&json!({"data": [["Milk"], null], "fn_index": 0, "session_hash": self.session}))
                    ).await?;
                let event_id = joined["event_id"].clone();
                let body = text_of(self.http.get(format!(
                    "{cart}/gradio_api/queue/data?session_hash={}",
                    self.session
                )))
                .await?;
                let done = sse_data(&body)
                    .find(|m| m["msg"] == "process_completed" && m["event_id"] == event_id);
                match done {
                    Some(done) if done["success"] == true => return Ok(()),
                    _ => None,
                }
            }
            Bridge::Mcp => {
                let call = json!({"jsonrpc": "2.0", "id": self.calls, "method": "tools/call",
                    "params": {"name": "add_items", "arguments": {"items": ["Milk"]}}});
                let body = self
                    .mcp_post(&format!("{cart}/mcp"), Some(&self.session.clone()), &call)
                    .await?
                    .text()
                    .await
                    .map_err(|e| e.to_string())?;
                sse_data(&body).find_map(|m| m["result"]["structuredContent"]["cart_size"].as_f64())
            }
        };
        size.map(drop)
            .ok_or_else(|| format!("no cart size from {:?}", self.bridge))
    }
}

struct Round {
    calls: u64,
    errors: u64,
    latencies: Histogram<u64>,
    seconds: f64,
}

async fn round(cli: &Cli, app: &str, bridge: Bridge, length: Duration) -> Round {
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..cli.concurrency {
        let mut worker = Worker {
            // One keep-alive connection per worker.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("an HTTP client"),
            base: cli.url.trim_end_matches('/').to_owned(),
            app: app.trim_end_matches('/').to_owned(),
            bridge,
            session: String::new(),
            calls: 0,
        };
        workers.spawn(async move {
            let mut latencies =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut calls, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let sent = Instant::now();
                match worker.call().await {
                    Ok(_) => {
                        calls += 1;
                        let _ = latencies.record((sent.elapsed().as_micros() as u64).max(1));
                    }
                    Err(_) => errors += 1,
                }
            }
            (calls, errors, latencies)
        });
    }
    let mut total = Round {
        calls: 0,
        errors: 0,
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        seconds: 0.0,
    };
    while let Some(Ok((calls, errors, latencies))) = workers.join_next().await {
        total.calls += calls;
        total.errors += errors;
        let _ = total.latencies.add(latencies);
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

/// Rounds of `targets` (label, app root, bridge), taking turns after a warm-up.
async fn rounds(cli: &Cli, targets: &[(&str, String, Bridge)]) -> Vec<Vec<Round>> {
    // Warm-up: connections, lazily built tables.
    for (_, app, bridge) in targets {
        round(cli, app, *bridge, Duration::from_secs(1)).await;
    }
    let mut rounds: Vec<Vec<Round>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..cli.rounds {
        for (i, (_, app, bridge)) in targets.iter().enumerate() {
            rounds[i].push(round(cli, app, *bridge, Duration::from_secs(cli.seconds)).await);
        }
    }
    rounds
}

fn median_rate(rounds: &[Round]) -> f64 {
    let mut rates: Vec<f64> = rounds.iter().map(|r| r.calls as f64 / r.seconds).collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// One table row per target: calls/s, p50, p99 (all rounds pooled), errors, and the
/// share of the first target's rate.
fn print_rows(labels: &[&str], rounds: &[Vec<Round>], against: &str) {
    println!("| bridge | calls/s (median round) | p50 | p99 | errors | {against} |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let reference = median_rate(&rounds[0]);
    for (label, rounds) in labels.iter().zip(rounds) {
        let mut all =
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        for round in rounds {
            let _ = all.add(&round.latencies);
        }
        let rate = median_rate(rounds);
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.0}% |",
            label,
            rate,
            all.value_at_quantile(0.5) as f64 / 1000.0,
            all.value_at_quantile(0.99) as f64 / 1000.0,
            rounds.iter().map(|r| r.errors).sum::<u64>(),
            100.0 * rate / reference
        );
    }
    println!();
}

/// `n` calls of the queue-free route, each in a session of its own (50 at a time).
async fn fill(route: &str, n: usize) -> Result<(), String> {
    let http = reqwest::Client::new();
    let run = fresh_name();
    let mut calls = futures::stream::iter(0..n)
        .map(|i| {
            let body = json!({"data": [["Cereal", "Milk", "Orange Juice", "Water"], null],
                "fn_index": 0, "session_hash": format!("fill-{run}-{i}")});
            let request = http.post(route).json(&body);
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                match response.status().as_u16() {
                    200 => Ok(()),
                    status => Err(format!("the route answered {status}")),
                }
            }
        })
        .buffer_unordered(50);
    while let Some(outcome) = calls.next().await {
        outcome?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let cli = Cli::parse();
    let keepsake = format!("{}/apps/shopping-cart", cli.url.trim_end_matches('/'));
    if let (Some(n), Some(route)) = (cli.fill, &cli.route) {
        return fill(route, n).await;
    }
    if let Some(gradio) = &cli.gradio {
        let targets = [
            ("Gradio", gradio.clone(), Bridge::Gradio),
            (
                "Keepsake (its Gradio-compatible bridge)",
                keepsake,
                Bridge::Gradio,
            ),
        ];
        let rounds = rounds(&cli, &targets).await;
        println!(
            "Gradio's queue path (`queue/join` + the `queue/data` stream until `close_stream`, as `gradio_client`'s `predict` and Gradio's page make a call), {} workers, {} rounds of {} s, alternating:",
            cli.concurrency, cli.rounds, cli.seconds
        );
        println!();
        let labels: Vec<&str> = targets.iter().map(|t| t.0).collect();
        print_rows(&labels, &rounds, "vs Gradio");
        return Ok(());
    }
    let bridges = [Bridge::Native, Bridge::Gradio, Bridge::Mcp];
    let targets: Vec<(&str, String, Bridge)> = bridges
        .iter()
        .map(|bridge| (bridge.label(), keepsake.clone(), *bridge))
        .collect();
    let rounds = rounds(&cli, &targets).await;
    println!(
        "### Bridges: one \"Add Items\" round trip per bridge ({} workers, {} rounds of {} s each, alternating)",
        cli.concurrency, cli.rounds, cli.seconds
    );
    println!();
    let labels: Vec<&str> = targets.iter().map(|t| t.0).collect();
    print_rows(&labels, &rounds, "vs Keepsake API");
    println!(
        "Each worker is one client on one keep-alive connection (reqwest), with a session per 20 calls: a Keepsake session, a Gradio `session_hash`, an MCP session (`initialize` and the closing of the one before counted in the calls' time). A Gradio call is two requests (the join and its event stream), as `gradio_client` makes it."
    );
    println!();
    Ok(())
}
