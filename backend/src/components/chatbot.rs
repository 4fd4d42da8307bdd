//! The Chatbot component: [`Chatbot`].

use keepsake_shared::config::{ChatMessage, ChatRole, ComponentKind, ComponentProps};
use serde::Deserialize as _;
use serde_json::{Value, json};

use super::{Component, with_value};

/// The chat transcript component (Gradio's `gr.Chatbot` with `type="messages"`).
///
/// Its value is a list of [`ChatMessage`]s: a role (`user` or `assistant`) and
/// Markdown content. The server renders the transcript: one `<article>`
/// per message (sent message by message, so a reply growing at the end of a long
/// transcript costs that message only), named by its role for assistive technology, its content rendered and
/// sanitised as a Markdown component's is ([`crate::components::markdown_to_html`]); the page only sets
/// that HTML, so it renders no Markdown itself.
///
/// ```
/// use keepsake::{Blocks, State, Streaming};
/// use keepsake::components::{Button, ChatMessage, Chatbot, Textbox};
///
/// let mut app = Blocks::new("echo", "Echo");
/// let history = app.state(State::new(Vec::<ChatMessage>::new()));
/// let chat = app.add(Chatbot::new().label("Conversation"));
/// let message = app.add(Textbox::new().label("Message"));
/// let send = app.add(Button::new("Send"));
/// // The reply streams word by word; the history keeps the final transcript.
/// app.click(send, (message, history), (chat, history), |text: String, mut past: Vec<ChatMessage>| {
///     past.push(ChatMessage::user(text.clone()));
///     let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
///     Streaming::new(futures::stream::iter((1..=words.len()).map(move |n| {
///         let mut shown = past.clone();
///         shown.push(ChatMessage::assistant(words[..n].join(" ")));
///         (shown.clone(), shown)
///     })))
/// });
/// app.build()?;
/// # Ok::<(), keepsake::BuildError>(())
/// ```
///
/// A chat transcript: messages with roles, Markdown content.
#[derive(Debug, Clone)]
pub struct Chatbot {
    props: ComponentProps,
}

impl Default for Chatbot {
    fn default() -> Self {
        Chatbot::new()
    }
}

impl Chatbot {
    /// An empty transcript.
    pub fn new() -> Self {
        Chatbot {
            props: with_value(Value::Array(Vec::new())),
        }
    }
    /// Starts with `messages`.
    pub fn value(mut self, messages: Vec<ChatMessage>) -> Self {
        self.props.value = json!(messages);
        self
    }
    common_props!();
}

impl Component for Chatbot {
    type Value = Vec<ChatMessage>;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (ComponentKind::Chatbot, self.props)
    }
}

/// Checks a transcript a client sent: a list of `{role, content}` objects.
pub(crate) fn validate(value: &Value) -> Result<(), String> {
    let Value::Array(messages) = value else {
        return Err("expected a list of messages".to_owned());
    };
    for message in messages {
        let role = message.get("role").and_then(Value::as_str);
        if !matches!(role, Some("user" | "assistant")) {
            return Err("each message needs a role, \"user\" or \"assistant\"".to_owned());
        }
        if !message.get("content").is_some_and(Value::is_string) {
            return Err("each message needs a string content".to_owned());
        }
    }
    Ok(())
}

/// The JSON schema API clients see for a transcript.
pub(crate) fn json_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "role": { "type": "string", "enum": ["user", "assistant"] },
                "content": { "type": "string" }
            },
            "required": ["role", "content"]
        }
    })
}

/// The transcript as the page shows it: one `<article>` per message, its role as its
/// accessible name and class, its content as sanitised HTML. A value that is not a
/// transcript shows nothing.
pub(crate) fn to_html(value: &Value) -> Vec<String> {
    match value {
        Value::Array(messages) if validate(value).is_ok() => {
            messages.iter().map(message_html).collect()
        }
        _ => Vec::new(),
    }
}

/// One message as the page shows it (nothing if it is not a message).
pub(crate) fn message_html(message: &Value) -> String {
    let Ok(message) = ChatMessage::deserialize(message) else {
        return String::new();
    };
    let (class, name) = match message.role {
        ChatRole::User => ("user", "User"),
        ChatRole::Assistant => ("assistant", "Assistant"),
    };
    format!(
        "<article class=\"message {class}\" aria-label=\"{name}\"><div class=\"message-content\">{}</div></article>",
        crate::markdown::to_html(&message.content)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_render_as_named_articles_with_sanitised_content() {
        let value = json!([
            { "role": "user", "content": "**hi** <script>alert(1)</script>" },
            { "role": "assistant", "content": "hello" }
        ]);
        let html = to_html(&value).concat();
        assert!(html.starts_with("<article class=\"message user\" aria-label=\"User\">"));
        assert!(html.contains("<strong>hi</strong>"));
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("aria-label=\"Assistant\""));
        assert!(to_html(&json!("not a transcript")).is_empty());
        assert_eq!(to_html(&value).len(), 2);
    }

    #[test]
    fn only_transcripts_pass_validation() {
        assert!(validate(&json!([{ "role": "user", "content": "x" }])).is_ok());
        assert!(validate(&json!([{ "role": "system", "content": "x" }])).is_err());
        assert!(validate(&json!([{ "role": "user" }])).is_err());
        assert!(validate(&json!("x")).is_err());
    }
}
