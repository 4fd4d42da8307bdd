//! The fourth flagship demo: a chat whose history is a session `State`, with a reply
//! that streams word by word ([`crate::Streaming`]).

use std::time::Duration;

use futures::StreamExt;

use crate::blocks::declared::{Clickable as _, Submittable as _};
use crate::components::{Button, ChatMessage, Chatbot, Markdown, Textbox};
use crate::{App, Blocks, BuildError, State, Streaming};

/// The pause before each word of the reply: slow enough to see it grow.
pub const CHAT_WORD_DELAY: Duration = Duration::from_millis(40);

/// Session state plus a streaming handler: each page load has its own conversation,
/// kept on the server; the reply grows on the page as it is written, and the history
/// holds it once it is complete.
pub fn chat() -> Result<App, BuildError> {
    let mut app = Blocks::new("chat", "Chat").description(
        "Session state and a streaming reply: the conversation lives on the server, one per page load; replies appear word by word.",
    );
    app.add(Markdown::new(
        "Write a message and press **Send** or Enter. The history is a session \
         `State`: a refresh starts a new chat, another tab has its own. The reply \
         streams in word by word; what the state keeps is the finished reply.",
    ));
    let history = app.state(State::new(Vec::<ChatMessage>::new()));
    let chat = app.add(Chatbot::new().label("Conversation"));
    let message = app.add(Textbox::new().label("Message").placeholder("Say something"));
    let send = app.add(Button::new("Send").primary());
    app.on(
        [send.clicked(), message.submitted()],
        (message, history),
        (chat, history, message),
        reply,
    )
    .api_name("send")
    .api_description("Sends a message; returns the conversation with the assistant's reply.");
    app.build()
}

/// The assistant's answer to `text`: deterministic, no model involved.
pub fn answer_to(text: &str) -> String {
    let words = text.split_whitespace().count();
    format!(
        "You wrote {words} word{}: \u{201c}{}\u{201d}. This reply is streamed word by word, \
         and the chat history keeps it once it is complete.",
        if words == 1 { "" } else { "s" },
        text.trim()
    )
}

type ChatOutputs = (Vec<ChatMessage>, Vec<ChatMessage>, String);

fn reply(text: String, mut history: Vec<ChatMessage>) -> Streaming<ChatOutputs> {
    if text.trim().is_empty() {
        // Nothing to answer: the conversation stays as it is.
        return Streaming::new(futures::stream::iter([(
            history.clone(),
            history,
            String::new(),
        )]));
    }
    history.push(ChatMessage::user(text.trim()));
    let words: Vec<String> = answer_to(&text).split(' ').map(str::to_owned).collect();
    let written = words.len();
    // First the user's message alone (the textbox clears), then one word more each
    // time; the last item, the whole reply, is what the history keeps.
    let items = futures::stream::iter(0..=written).then(move |count| {
        let mut shown = history.clone();
        let reply = words[..count].join(" ");
        async move {
            if count > 0 {
                tokio::time::sleep(CHAT_WORD_DELAY).await;
                shown.push(ChatMessage::assistant(reply));
            }
            (shown.clone(), shown, String::new())
        }
    });
    Streaming::new(items)
}
