//! In-process measurements with the counting allocator: memory per session,
//! latency at scale and the expiry sweep's cost.

use std::time::{Duration, Instant};

use keepsake::protocol::event::EventRequest;
use keepsake::protocol::{ListenerId, SessionId};
use keepsake::{Server, Settings, demos};
use serde_json::{Value, json};

use bytes::Bytes;

use crate::ALLOCATOR;
use crate::load::{Connection, path, per_round};
use crate::support::counter_app;

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
        listener: ListenerId(0),
        inputs: vec![Value::Null],
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
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
    let body = Bytes::from(r#"{"listener":0,"inputs":[null]}"#);
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

pub(crate) async fn engine(large: usize) -> Result<(), Box<dyn std::error::Error>> {
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
            listener: ListenerId(0),
            inputs: vec![items, Value::Null],
            held: Vec::new(),
            rendered: None,
            shown: Vec::new(),
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
