//! A streamed chat, side by side with Gradio: bytes on the wire per reply at each turn
//! of one 30-turn conversation, and the server's CPU time per partial.
//!
//! - `serve --addr A`: Keepsake's Chat demo with no pause between words and no
//!   coalescing, so that each word is one partial, as in Gradio (mimalloc and
//!   keepsake's runtime, as `keepsake-demo`).
//! - `drive --keepsake URL --keepsake-pid P --gradio URL --gradio-pid P`: one
//!   conversation against each, each through its own streaming protocol: Keepsake's
//!   page route (`events/stream`, naming what the page shows, as the page does),
//!   Gradio's queue (`queue/join`, then the `queue/data` stream, as its page and
//!   `gradio_client` do; `benches/gradio/chat.py`). Bytes are the answers' bodies;
//!   CPU time is the server process's (all its threads, `/proc/PID/task/*/schedstat`)
//!   during the turn, divided by the turn's partials.

use std::time::Duration;

use clap::{Parser, Subcommand};
use keepsake::protocol::api::{Endpoint as _, GetConfig, RunEventStreamed, StartSession};
use keepsake::protocol::config::AppConfig;
use keepsake::protocol::diff::Shown;
use keepsake::protocol::event::{EventRequest, SessionStarted, StreamedEvent};
use keepsake::protocol::holding::Holding;
use keepsake::protocol::{AppId, ComponentId, ListenerId, SessionId};
use keepsake::{Server, Settings, demos};
use serde_json::{Value, json};

// The allocator `keepsake-demo` serves with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the Chat demo for the benchmark.
    Serve {
        #[arg(long)]
        addr: std::net::SocketAddr,
    },
    /// One conversation against each server.
    Drive {
        #[arg(long)]
        keepsake: String,
        #[arg(long)]
        keepsake_pid: u32,
        #[arg(long)]
        gradio: String,
        #[arg(long)]
        gradio_pid: u32,
        #[arg(long, default_value_t = 30)]
        turns: usize,
    },
}

/// One turn as measured: body bytes, partials, CPU nanoseconds of the server.
#[derive(Debug, Clone, Copy)]
struct Turn {
    bytes: usize,
    partials: usize,
    cpu_ns: u64,
}

/// CPU time the process has used so far, all threads, in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn text(n: usize) -> String {
    format!("Message number {n} of this conversation")
}

/// The JSON answer of `request`.
async fn json_of<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// Keepsake's page as it drives a turn: what it shows, held.
struct KeepsakePage {
    http: reqwest::Client,
    url: String,
    session: SessionId,
    send: ListenerId,
    chat: ComponentId,
    message: ComponentId,
    shown_chat: (Value, Vec<String>),
    shown_message: Value,
}

impl KeepsakePage {
    async fn open(url: &str) -> Result<Self, String> {
        let http = reqwest::Client::new();
        let app = AppId("chat".into());
        let config: AppConfig =
            json_of(http.get(format!("{url}{}", GetConfig::path(&app)))).await?;
        let started: SessionStarted =
            json_of(http.post(format!("{url}{}", StartSession::path(&app)))).await?;
        let labelled = |label: &str| {
            config
                .components
                .iter()
                .find(|c| c.props.label.as_deref() == Some(label))
                .map(|c| c.id)
                .ok_or(format!("no {label}"))
        };
        let send = config
            .listeners
            .iter()
            .find(|l| l.api_name.as_deref() == Some("send"))
            .map(|l| l.id)
            .ok_or("no send listener")?;
        Ok(KeepsakePage {
            http,
            url: url.to_owned(),
            session: started.session_id,
            send,
            chat: labelled("Conversation")?,
            message: labelled("Message")?,
            shown_chat: (json!([]), Vec::new()),
            shown_message: json!(""),
        })
    }

    async fn turn(&mut self, text: &str, pid: u32) -> Result<Turn, String> {
        let mut holding = Holding::default();
        holding.show(
            self.chat,
            self.shown_chat.0.clone(),
            self.shown_chat.1.clone(),
        );
        holding.show(self.message, self.shown_message.clone(), Vec::new());
        let request = EventRequest {
            listener: self.send,
            inputs: vec![json!(text), Value::Null],
            held: Vec::new(),
            rendered: None,
            shown: vec![
                Shown::of(self.chat, &self.shown_chat.0),
                Shown::of(self.message, &self.shown_message),
            ],
        };
        let before = cpu_ns(pid);
        let body = self
            .http
            .post(format!(
                "{}{}",
                self.url,
                RunEventStreamed::path(&(AppId("chat".into()), self.session))
            ))
            .json(&request)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let cpu = cpu_ns(pid) - before;
        let mut partials = 0;
        for line in body.lines() {
            let updates = match serde_json::from_str(line).map_err(|e| e.to_string())? {
                StreamedEvent::Partial(partial) => {
                    partials += 1;
                    partial.updates
                }
                StreamedEvent::Done(result) => result.updates,
                StreamedEvent::Failed(error) => return Err(error.message),
            };
            for mut update in updates {
                holding
                    .resolve(&mut update)
                    .map_err(|_| "changes that do not apply")?;
                let value = update.value.unwrap_or_default();
                if update.component == self.chat {
                    let items = update.items.into_iter().map(|item| item.html).collect();
                    self.shown_chat = (value, items);
                } else if update.component == self.message {
                    self.shown_message = value;
                }
            }
        }
        Ok(Turn {
            bytes: body.len(),
            partials,
            cpu_ns: cpu,
        })
    }
}

/// One Gradio turn: the join, then the session's event stream until it closes.
async fn gradio_turn(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    text: &str,
    pid: u32,
) -> Result<Turn, String> {
    let before = cpu_ns(pid);
    http.post(format!("{url}/gradio_api/queue/join"))
        .json(
            &json!({"data": [text, null], "fn_index": 0, "session_hash": session,
            "event_data": null, "trigger_id": null}),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body = http
        .get(format!(
            "{url}/gradio_api/queue/data?session_hash={session}"
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let cpu = cpu_ns(pid) - before;
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    if !messages
        .iter()
        .any(|m| m["msg"] == "process_completed" && m["success"] == true)
    {
        return Err(format!("Gradio's turn did not complete: {body}"));
    }
    let partials = messages
        .iter()
        .filter(|m| m["msg"] == "process_generating")
        .count();
    Ok(Turn {
        bytes: body.len(),
        partials,
        cpu_ns: cpu,
    })
}

/// CPU time per partial over some turns (one turn's is too few ticks of work to
/// compare alone).
fn cpu_per_partial_us(turns: &[Turn]) -> f64 {
    let cpu: u64 = turns.iter().map(|t| t.cpu_ns).sum();
    let partials: usize = turns.iter().map(|t| t.partials).sum();
    cpu as f64 / 1000.0 / partials.max(1) as f64
}

/// CPU per partial over the first three turns and over the last three.
fn cpu_first_last(turns: &[Turn]) -> (f64, f64) {
    let three = 3.min(turns.len());
    (
        cpu_per_partial_us(&turns[..three]),
        cpu_per_partial_us(&turns[turns.len() - three..]),
    )
}

fn row(label: &str, turns: &[Turn]) -> String {
    let (first, last) = (turns[0], turns[turns.len() - 1]);
    let total: usize = turns.iter().map(|t| t.bytes).sum();
    let (cpu_first, cpu_last) = cpu_first_last(turns);
    format!(
        "| {label} | {} | {} | {:.2}x | {} | {:.0} µs | {:.0} µs | {:.2}x |",
        first.bytes,
        last.bytes,
        last.bytes as f64 / first.bytes as f64,
        total,
        cpu_first,
        cpu_last,
        cpu_last / cpu_first,
    )
}

async fn drive(
    keepsake: &str,
    keepsake_pid: u32,
    gradio: &str,
    gradio_pid: u32,
    turns: usize,
) -> Result<(), String> {
    let mut page = KeepsakePage::open(keepsake).await?;
    let http = reqwest::Client::new();
    let session = format!("chatbench{}", std::process::id());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for n in 1..=turns {
        // Turn by turn, alternating, so both see the same machine.
        ours.push(page.turn(&text(n), keepsake_pid).await?);
        theirs.push(gradio_turn(&http, gradio, &session, &text(n), gradio_pid).await?);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = |turns: &[Turn]| turns.iter().map(|t| t.bytes).sum::<usize>() as f64;
    let (ks_first, ks_last) = (ours[0].bytes as f64, ours[turns - 1].bytes as f64);
    let ratio = total(&ours) / total(&theirs);
    let (cpu_first, cpu_last) = cpu_first_last(&ours);
    let cpu_ratio = cpu_last / cpu_first;
    println!(
        "| server | reply bytes, turn 1 | turn {turns} | turn {turns} / turn 1 | the conversation's total bytes | CPU per partial, turns 1-3 | turns {}-{turns} | last / first |",
        turns - 2
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    println!("{}", row("Gradio", &theirs));
    println!("{}", row("Keepsake", &ours));
    println!();
    let verdict = |met: bool| if met { "met" } else { "missed" };
    println!(
        "Targets: Keepsake's turn-{turns} reply at most 1.5x its turn-1 reply: **{:.2}x**, {}; the conversation's total at most a third of Gradio's: **{:.0}%** of it, {}; CPU per partial at the conversation's end within 1.5x of its start: **{:.2}x**, {}.",
        ks_last / ks_first,
        verdict(ks_last <= 1.5 * ks_first),
        100.0 * ratio,
        verdict(ratio <= 1.0 / 3.0),
        cpu_ratio,
        verdict(cpu_ratio <= 1.5),
    );
    println!();
    println!(
        "Partials per reply: Keepsake {}, Gradio {}. Per turn, bytes: Keepsake {:?}; Gradio {:?}.",
        ours[0].partials,
        theirs[0].partials,
        ours.iter().map(|t| t.bytes).collect::<Vec<_>>(),
        theirs.iter().map(|t| t.bytes).collect::<Vec<_>>(),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Serve { addr } => keepsake::runtime_builder().build()?.block_on(async {
            let settings = Settings {
                // One partial per word, as Gradio sends them.
                max_partials_per_second: 1_000_000,
                max_events_per_second: 1_000_000,
                ..Settings::default()
            };
            let server = Server::new(settings, vec![demos::chat_paced(Duration::ZERO)?])?;
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("serving on http://{}", listener.local_addr()?);
            keepsake::run(listener, server, std::future::pending()).await?;
            Ok(())
        }),
        Command::Drive {
            keepsake,
            keepsake_pid,
            gradio,
            gradio_pid,
            turns,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drive(&keepsake, keepsake_pid, &gradio, gradio_pid, turns))?;
            Ok(())
        }
    }
}
