//! The fourth flagship demo: a chat whose history is a session `State`, with a reply
//! that streams word by word ([`crate::Streaming`]) and a Stop button that ends it,
//! keeping what was written so far.

use std::time::Duration;

use futures::StreamExt;

use crate::blocks::declared::{Clickable as _, Submittable as _};
use crate::components::{Button, ChatMessage, Chatbot, Markdown, Textbox};
use crate::{App, Blocks, BuildError, State, Streaming};

/// The pause before each word of the reply: slow enough to see it grow (and to stop
/// it), about five seconds for a reply.
pub const CHAT_WORD_DELAY: Duration = Duration::from_millis(30);

/// Session state plus a streaming handler: each page load has its own conversation,
/// kept on the server; the reply grows on the page as it is written, and the history
/// holds it once it is complete.
pub fn chat() -> Result<App, BuildError> {
    chat_paced(CHAT_WORD_DELAY)
}

/// The Chat demo with `delay` before each word of a reply (benchmarks and tests
/// that need no readable pace).
pub fn chat_paced(delay: Duration) -> Result<App, BuildError> {
    let mut app = Blocks::new("chat", "Chat").description(
        "Session state and a streaming reply: the conversation lives on the server, one per page load; replies appear word by word.",
    );
    app.add(Markdown::new(
        "Write a message and press **Send** or Enter. The history is a session \
         `State`: a refresh starts a new chat, another tab has its own. The reply \
         streams in word by word; **Stop** ends it, and the history keeps what was \
         written so far.",
    ));
    let history = app.state(State::new(Vec::<ChatMessage>::new()));
    let chat = app.add(Chatbot::new().label("Conversation"));
    let message = app.add(Textbox::new().label("Message").placeholder("Say something"));
    let send = app.add(Button::new("Send").primary());
    let stop = app.add(Button::new("Stop"));
    let sending = app
        .on(
            [send.clicked(), message.submitted()],
            (message, history),
            (chat, history, message),
            move |text: String, history: Vec<ChatMessage>| reply(text, history, delay),
        )
        .api_name("send")
        .api_description("Sends a message; returns the conversation with the assistant's reply.")
        .id();
    // A Stop: the reply lands as far as it got.
    app.click(stop, (), (), || ()).cancels([sending]);
    app.build()
}

/// The assistant's answer to `text`, in Markdown: deterministic, no model involved,
/// long enough (about 180 words) to be worth stopping. Its emphasis and code marks
/// each wrap one word, so a word reaches the page whole, formatting included.
pub fn answer_to(text: &str) -> String {
    let words = text.split_whitespace().count();
    format!(
        "You wrote {words} word{}: \u{201c}{}\u{201d}. This reply is streamed word by word, \
         and the chat history keeps it once it is complete.\n\n\
         Here is what happens while you read it:\n\n\
         - each **word** reaches the page as a *change* to what it shows, not as a copy \
         of the whole conversation;\n\
         - the server renders only the message that grows, so a long chat costs no more \
         per word than a short one;\n\
         - the **Stop** button ends the reply at once, and the history keeps what was \
         written so far;\n\
         - a refresh starts a new chat, because the history is a session `State` held on \
         the server.\n\n\
         A real assistant would think here, and its words would come at the pace of a \
         model: a few dozen a second, merged by the server into at most thirty updates a \
         second so that a slow page is never flooded. Nothing of this reply is sent twice, \
         and nothing of it is kept until it is complete or stopped.\n\n\
         Write another message to see the history grow: each reply still costs only its \
         own words.",
        if words == 1 { "" } else { "s" },
        text.trim()
    )
}

type ChatOutputs = (Vec<ChatMessage>, Vec<ChatMessage>, String);

fn reply(text: String, mut history: Vec<ChatMessage>, delay: Duration) -> Streaming<ChatOutputs> {
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
                tokio::time::sleep(delay).await;
                shown.push(ChatMessage::assistant(reply));
            }
            (shown.clone(), shown, String::new())
        }
    });
    Streaming::new(items)
}

#[cfg(test)]
mod tests {
    /// The Gradio side of the streaming benchmark (`benches/gradio/chat.py`) answers
    /// with the same words; this is the text it must match.
    #[test]
    fn the_reply_is_the_one_the_gradio_benchmark_app_writes() {
        let script = include_str!("../../benches/gradio/chat.py");
        let reply = super::answer_to("hi there");
        assert_eq!(reply.split(' ').count(), 179, "{reply}");
        // Each line of the reply appears, escaped as Python writes it, in the script.
        for line in reply.split("\n\n").skip(1).flat_map(|p| p.split('\n')) {
            let start: String = line.chars().take(40).collect();
            assert!(script.contains(&start), "the Gradio app lacks {start:?}");
        }
    }
}
