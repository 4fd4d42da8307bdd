//! Sessions and events: what a client sends to run a listener and what comes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorBody;
use crate::{ComponentId, ListenerId, SessionId};

/// Answer to "start a session": a fresh id issued by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStarted {
    /// The new session's id, for the session's event and stream paths.
    pub session_id: SessionId,
    /// How long the server keeps the session after the client's stream ends, in
    /// seconds.
    pub retention_secs: u64,
}

/// Answer to "is my session still alive?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// The session asked about.
    pub session_id: SessionId,
    /// Streams (open pages) attached to it now. With none, the session ends once its
    /// retention has passed.
    pub connected_feeds: u32,
}

/// Run one event listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRequest {
    /// The listener to run (see [`crate::config::ListenerConfig::id`]).
    pub listener: ListenerId,
    /// One value per input slot of the listener, in order. Browser-state slots carry
    /// the sealed string the client holds (or `null` when it holds none); server-side
    /// slots (state, global) carry anything, conventionally `null`, which the server
    /// ignores.
    pub inputs: Vec<Value>,
    /// The sealed strings the client holds for browser-state slots the listener does
    /// not read (it, or a state `.change` listener the server runs after it, may
    /// write them), so the server can tell whether an output changes them: an equal
    /// value is not rewritten (no needless write, no echo between tabs). A slot left
    /// out is unknown: whatever is written to it is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<SealedValue>,
    /// For a listener of a rendered region's component: the region and the
    /// component's key ([`crate::render`]); absent for the config's listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<crate::render::RenderedTarget>,
    /// For a streamed answer ([`crate::api::RunEventStreamed`]): what the client shows
    /// of the listener's outputs, so that even the first partial can carry only what
    /// changed ([`crate::diff`]). Optional: an output not named comes whole first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shown: Vec<crate::diff::Shown>,
}

/// A browser-state slot's sealed string, as the client keeps it in localStorage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedValue {
    /// The browser-state slot.
    pub component: ComponentId,
    /// The sealed string exactly as an answer gave it (opaque to the client).
    pub sealed: String,
}

/// The outcome of an event: the listener's outputs followed by the outputs of every
/// listener the server ran because a session state changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventResult {
    /// Updates in the order they were produced; later ones win.
    pub updates: Vec<ComponentUpdate>,
    /// Listeners run, the requested one first, then `.change` listeners of states.
    pub ran: Vec<ListenerId>,
    /// Failures of `.change` listeners the server ran after the requested listener
    /// succeeded (that listener's own writes stand; the failed one's do not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ListenerError>,
    /// What the client must store for its browser-state slots: at most one write per
    /// slot, the final one of the event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub browser_state: Vec<BrowserStateWrite>,
    /// Messages the listeners gave the user (`Notifier::info`, `::warning`), in the
    /// order given, of the listeners that succeeded; the page shows them as
    /// dismissable notices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// The new contents of every rendered region whose state the event changed,
    /// rendered from the value it committed; the page replaces those regions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<crate::render::RenderedRegion>,
}

/// A message for the user from a listener that succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The listener that gave it.
    pub listener: ListenerId,
    /// How it is shown.
    pub level: NoticeLevel,
    /// The text, shown as it is (not Markdown, not HTML).
    pub message: String,
}

/// How a notice is shown. On the wire: `"info"` or `"warning"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeLevel {
    /// Something went as asked (Gradio's `gr.Info`).
    Info,
    /// Something the user should know; the event still applied (`gr.Warning`).
    Warning,
}

/// A new sealed string for one browser-state slot, or the order to remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserStateWrite {
    /// The browser-state slot to write.
    pub component: ComponentId,
    /// The sealed string to store; `None` removes the stored one (it could not be
    /// opened: edited, truncated, under a key this server no longer has, expired, or
    /// of a shape the app no longer reads), so the slot reads as its default.
    pub sealed: Option<String>,
    /// Whether the value changed: the slot's change listeners run. `false` when only
    /// the sealing changed (a rotated secret, a migrated version, a removed bad value).
    pub changed: bool,
}

/// A listener that failed while the server ran it as a consequence of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerError {
    /// The listener that failed.
    pub listener: ListenerId,
    /// Why, as a request failing that way would have answered.
    pub error: ErrorBody,
}

/// A new value and/or new properties for one component.
///
/// Never addresses a state, global or browser-state slot: the first two stay on the
/// server, browser states come back as [`BrowserStateWrite`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentUpdate {
    /// The component to update.
    pub component: ComponentId,
    /// Its new value, of the JSON type its kind takes; absent (`None`) keeps the
    /// current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The new value rendered to HTML, for kinds the server renders (Markdown and
    /// Html: see [`crate::config::ComponentKind::Markdown`] and
    /// [`crate::config::ComponentKind::Html`]); sent with every new value of such a
    /// component, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Only in a streamed answer, instead of `value`: the edits that turn the value
    /// the client holds (what the answer sent before, or what the request said it
    /// shows) into the new one ([`crate::diff`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<crate::diff::Edit>,
    /// A Chatbot's messages rendered to HTML, each one that changed (all of them
    /// with a whole value); the others stay as the client has them. The value's
    /// length says how many messages there are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemHtml>,
    /// Properties to change; absent when none change.
    #[serde(default, skip_serializing_if = "PropsUpdate::is_empty")]
    pub props: PropsUpdate,
}

/// One item of a component rendered by the server as a list (a Chatbot's message):
/// its new HTML is the first `keep` bytes of what the client holds for it, then
/// `html`. `keep` is 0 for a new item, and in an answer's edits it only refers to HTML
/// the same answer sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemHtml {
    /// The item's index.
    pub index: u32,
    /// How many bytes of the held HTML stay (a character boundary).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keep: u32,
    /// What follows them.
    pub html: String,
}

impl ItemHtml {
    /// Applies this to `items`, the HTML the client holds per item: all or nothing
    /// (an index beyond the end or a `keep` that is not a character boundary of the
    /// held item changes nothing).
    pub fn apply(&self, items: &mut Vec<String>) -> Result<(), crate::diff::Mismatch> {
        let (index, keep) = (self.index as usize, self.keep as usize);
        if index == items.len() && keep == 0 {
            items.push(self.html.clone());
            return Ok(());
        }
        let item = items.get_mut(index).ok_or(crate::diff::Mismatch)?;
        if !item.is_char_boundary(keep) {
            return Err(crate::diff::Mismatch);
        }
        item.truncate(keep);
        item.push_str(&self.html);
        Ok(())
    }

    /// Every item of `rendered`, whole.
    pub fn whole(rendered: impl IntoIterator<Item = String>) -> Vec<ItemHtml> {
        rendered
            .into_iter()
            .enumerate()
            .map(|(index, html)| ItemHtml {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                keep: 0,
                html,
            })
            .collect()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Properties an output may change, each optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PropsUpdate {
    /// A new label ([`crate::config::ComponentProps::label`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Shows (`true`) or hides (`false`) the component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    /// Lets the user edit it (`true`) or not (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// New choices of a checkbox group or dropdown, replacing the old ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    /// Starts (`true`) or stops (`false`) a timer ([`crate::config::ComponentKind::Timer`]);
    /// other kinds ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

impl PropsUpdate {
    /// Whether it changes nothing (then it is left out of the JSON).
    pub fn is_empty(&self) -> bool {
        self == &PropsUpdate::default()
    }
}

/// One line of a streamed event answer ([`crate::api::RunEventStreamed`]): partial
/// updates as the handler yields them, then exactly one `done` or `failed`, last.
///
/// On the wire (one JSON object per line): `{"partial": {"updates": [...]}}`,
/// `{"done": {...EventResult}}`, `{"failed": {...ErrorBody}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamedEvent {
    /// What the listener yielded so far, its component outputs only: shown as it
    /// comes, never stored (states, globals and browser states are written only by
    /// the final item, with the `done` result).
    Partial(PartialUpdate),
    /// The event's result, exactly as the plain events route answers it: the final
    /// item's outputs, committed.
    Done(EventResult),
    /// The event failed after the answer began: nothing of it was written.
    Failed(ErrorBody),
}

/// What a client holds of a streamed answer it resumes ([`crate::api::ResumeReply`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// How many of the answer's lines it has whole (a line cut short counts not).
    pub after: u64,
}

/// The component outputs of one item a streaming listener yielded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PartialUpdate {
    /// Updates in output order.
    pub updates: Vec<ComponentUpdate>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn streamed_answer_lines_are_externally_tagged() {
        let lines = [
            (
                StreamedEvent::Partial(PartialUpdate::default()),
                json!({"partial": {"updates": []}}),
            ),
            (
                StreamedEvent::Done(EventResult::default()),
                json!({"done": {"updates": [], "ran": []}}),
            ),
            (
                StreamedEvent::Failed(ErrorBody {
                    error: ErrorKind::Timeout,
                    message: "late".into(),
                }),
                json!({"failed": {"error": "timeout", "message": "late"}}),
            ),
        ];
        for (message, wire) in lines {
            assert_eq!(serde_json::to_value(&message).unwrap(), wire);
            assert_eq!(
                serde_json::from_value::<StreamedEvent>(wire).unwrap(),
                message
            );
        }
    }
}
