//! Changes, not copies, on the wire: a streamed chat reply costs about the same at
//! the thirtieth turn of a conversation as at the first, because each partial
//! carries what changed (and the first one, what follows what the page says it
//! shows), and a Chatbot's HTML comes message by message. Measured on the Chat
//! demo's own route, as the page drives it.

#![allow(clippy::unwrap_used)]

mod support;

use keepsake::demos;
use keepsake::protocol::diff::Shown;
use keepsake::protocol::event::{EventRequest, StreamedEvent};
use keepsake::protocol::holding::Holding;
use keepsake::protocol::{ComponentId, ListenerId, SessionId};
use serde_json::{Value, json};
use std::time::Duration;
use support::{TestServer, component, fast_settings, listener_named};

/// What a page holds: the chat's value and its messages' HTML, the textbox's value.
struct Page {
    chat: (ComponentId, Value, Vec<String>),
    message: (ComponentId, Value),
}

/// Sends `text` as the page does (naming what it shows when `name_shown`), applies
/// the answer as the page does, and returns the bytes of the answer's body.
async fn turn(
    server: &TestServer,
    session: &SessionId,
    send: ListenerId,
    page: &mut Page,
    text: &str,
    name_shown: bool,
) -> usize {
    let (chat, message) = (page.chat.0, page.message.0);
    let mut holding = Holding::default();
    let shown = if name_shown {
        holding.show(chat, page.chat.1.clone(), page.chat.2.clone());
        holding.show(message, page.message.1.clone(), Vec::new());
        vec![
            Shown::of(chat, &page.chat.1),
            Shown::of(message, &page.message.1),
        ]
    } else {
        Vec::new()
    };
    let request = EventRequest {
        listener: send,
        inputs: vec![json!(text), Value::Null],
        held: Vec::new(),
        rendered: None,
        shown,
    };
    let response = server.send_streamed("chat", session, &request).await;
    assert!(response.status().is_success());
    let body = response.text().await.unwrap();
    for line in body.lines() {
        let updates = match serde_json::from_str(line).unwrap() {
            StreamedEvent::Partial(partial) => partial.updates,
            StreamedEvent::Done(result) => result.updates,
            StreamedEvent::Failed(error) => panic!("the turn failed: {error:?}"),
        };
        for mut update in updates {
            holding.resolve(&mut update).expect("changes that apply");
            let value = update.value.unwrap();
            if update.component == chat {
                page.chat.1 = value;
                page.chat.2 = update.items.into_iter().map(|item| item.html).collect();
            } else if update.component == message {
                page.message.1 = value;
            }
        }
    }
    body.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_at_turn_thirty_costs_at_most_one_and_a_half_times_turn_one() {
    let server = TestServer::start(
        fast_settings(),
        vec![demos::chat_paced(Duration::ZERO).unwrap()],
    )
    .await;
    let config = server.config("chat").await;
    let send = listener_named(&config, "send");
    let chat = component(&config, "Conversation");
    let mut page = Page {
        chat: (chat, json!([]), Vec::new()),
        message: (component(&config, "Message"), json!("")),
    };
    let session = server.start_session("chat").await;
    let mut bytes = Vec::new();
    for n in 1..=30 {
        let text = format!("Message number {n} of this conversation");
        bytes.push(turn(&server, &session, send, &mut page, &text, true).await);
    }
    // The page holds the whole conversation, rendered, as the plain route gives it.
    let messages = page.chat.1.as_array().unwrap();
    assert_eq!(messages.len(), 60);
    assert_eq!(
        messages[59]["content"],
        json!(demos::answer_to("Message number 30 of this conversation"))
    );
    assert_eq!(page.chat.2.len(), 60);
    assert!(
        page.chat.2[59].contains("Message number 30"),
        "{}",
        page.chat.2[59]
    );
    eprintln!("bytes per reply, turns 1 to 30: {bytes:?}");
    let (first, last) = (bytes[0], bytes[29]);
    assert!(
        last * 2 <= first * 3,
        "turn 30 took {last} bytes, turn 1 {first}: {bytes:?}"
    );

    // Without naming what it shows, the first partial carries the whole history:
    // the same turn costs more than the changes do.
    let whole = turn(&server, &session, send, &mut page, "One more", false).await;
    let changes = turn(&server, &session, send, &mut page, "And one more", true).await;
    eprintln!("turn 32: {changes} bytes; turn 31, the page naming nothing: {whole}");
    assert!(
        whole > changes + 10_000,
        "whole first partial {whole} bytes, changes {changes}"
    );
    server.stop().await;
}
