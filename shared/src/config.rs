//! The app config: everything a generic client needs to render an app and wire its
//! events, and nothing it must not see (no session or global values).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AppId, ComponentId, ListenerId};

/// One entry of the server's app list (the start page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    /// The app's URL name: its page is `/apps/{id}`, its API `/api/apps/{id}/...`.
    pub id: AppId,
    /// The app's name for people (the page heading).
    pub title: String,
    /// A sentence about the app; empty when the app gave none.
    pub description: String,
}

/// A complete app: components, layout and event listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppConfig {
    /// [`crate::PROTOCOL_VERSION`] of the server that produced this config.
    pub protocol_version: u32,
    /// The app's URL name, as in [`AppSummary::id`].
    pub id: AppId,
    /// The app's name for people (the page heading).
    pub title: String,
    /// A sentence about the app; empty when the app gave none.
    pub description: String,
    /// Every component, indexed by [`ComponentId`] (`components[i].id == ComponentId(i)`).
    pub components: Vec<ComponentConfig>,
    /// The top-level layout (an implicit column).
    pub layout: Vec<LayoutNode>,
    /// Every event listener, indexed by [`ListenerId`].
    pub listeners: Vec<ListenerConfig>,
}

impl AppConfig {
    /// The component (or state slot) with this id; `None` if the app has no such id.
    pub fn component(&self, id: ComponentId) -> Option<&ComponentConfig> {
        self.components.get(id.0 as usize)
    }

    /// The event listener with this id; `None` if the app has no such id.
    pub fn listener(&self, id: ListenerId) -> Option<&ListenerConfig> {
        self.listeners.get(id.0 as usize)
    }

    /// Listeners triggered by `event` on `component` (or on the app, for `None`).
    pub fn listeners(
        &self,
        component: Option<ComponentId>,
        event: EventKind,
    ) -> impl Iterator<Item = &ListenerConfig> {
        self.listeners.iter().filter(move |dep| {
            dep.triggers
                .iter()
                .any(|t| t.component == component && t.event == event)
        })
    }

    /// The listeners chained after `listener` (`.then`, `.success`), in the order
    /// they were declared.
    pub fn followers(&self, listener: ListenerId) -> impl Iterator<Item = &ListenerConfig> {
        self.listeners
            .iter()
            .filter(move |dep| dep.after.is_some_and(|after| after.listener == listener))
    }
}

/// One slot of an app: a component on the page, or a state, global or browser-state
/// slot that is never drawn but still has an id (so input positions line up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentConfig {
    /// Its index in [`AppConfig::components`].
    pub id: ComponentId,
    /// What it is, with the properties only that kind has.
    pub kind: ComponentKind,
    /// The properties every kind has (label, visibility, initial value...).
    pub props: ComponentProps,
}

/// The kind of a component, with the properties only that kind has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// Rendered Markdown text. Value: string (the Markdown source). The server sends
    /// it rendered as well, as sanitised HTML (`html` of [`ComponentProps`] and of
    /// [`crate::event::ComponentUpdate`]), which is what the page shows.
    Markdown,
    /// A text input. Value: string.
    Textbox {
        /// Plain text, password (typing hidden) or e-mail (the browser's checks).
        input_type: TextboxType,
        /// Visible lines; more than one renders a text area.
        lines: u32,
        /// Greyed hint shown while the box is empty; not a value.
        placeholder: Option<String>,
    },
    /// A number input. Value: number.
    Number {
        /// Lowest value the input offers (the HTML `min`); `None`: unbounded. A hint
        /// to the browser: the server does not enforce it.
        minimum: Option<f64>,
        /// Highest value the input offers (the HTML `max`); `None`: unbounded. Not
        /// enforced by the server either.
        maximum: Option<f64>,
        /// Increment of the input's arrows (the HTML `step`); `None`: any value.
        step: Option<f64>,
    },
    /// A button. Value: its caption (string).
    Button {
        /// How prominently it is drawn.
        variant: ButtonVariant,
    },
    /// A single checkbox. Value: bool.
    Checkbox,
    /// Several checkboxes. Value: the list of checked choices.
    CheckboxGroup {
        /// The choices offered, in display order; the value may only contain these.
        choices: Vec<String>,
    },
    /// A selection among choices. Value: a choice (string, or null when nothing is
    /// selected) or, with `multiselect`, a list of choices.
    Dropdown {
        /// The choices offered, in display order; the value may only be among these.
        choices: Vec<String>,
        /// Whether several choices may be selected (the value is then a list).
        multiselect: bool,
    },
    /// Arbitrary JSON, shown read-only. Value: any JSON.
    Json,
    /// A number chosen on a scale (`<input type="range">`). Value: number. The server
    /// refuses a value outside `[minimum, maximum]` (the step is a hint only).
    Slider {
        /// Lowest value (inclusive).
        minimum: f64,
        /// Highest value (inclusive); above `minimum`.
        maximum: f64,
        /// Increment of the scale (the HTML `step`); above 0.
        step: f64,
    },
    /// One choice among several, shown all at once (a radio group). Value: a choice
    /// (string), or null when none is picked.
    Radio {
        /// The choices offered, in display order; the value may only be among these.
        choices: Vec<String>,
    },
    /// HTML shown as it is, after the server has sanitised it. Value: string (the
    /// HTML source). The page shows only the server's clean copy (`html` of
    /// [`ComponentProps`] and of [`crate::event::ComponentUpdate`]).
    Html,
    /// A clock that runs its `tick` listeners every interval while a page shows the
    /// app. Never drawn; the page runs it. Value: the interval in seconds (number);
    /// clients never tick faster than [`MIN_TIMER_INTERVAL_SECS`], and skip a tick
    /// while the previous tick event of the timer is still on its way.
    Timer {
        /// Whether it ticks; an output changes it with
        /// [`crate::event::PropsUpdate::active`].
        active: bool,
    },
    /// A chat transcript. Value: a list of [`ChatMessage`]s (Gradio's "messages"
    /// format). The server sends it rendered as well, message by message (`items`
    /// beside the value): one element per message, its role as its accessible name,
    /// its content Markdown rendered to sanitised HTML.
    Chatbot,
    /// A session state slot. Never rendered; the server ignores what a client sends
    /// in its input position and never sends its value.
    State,
    /// A global value slot, shared by every session. Same rules as `State`.
    Global,
    /// A value kept in the browser's localStorage, sealed by the server (encrypted
    /// and authenticated with keys only the server holds). The client stores and sends
    /// back the sealed string; it can neither read nor forge the value.
    BrowserState(BrowserStateConfig),
}

impl ComponentKind {
    /// A short name of the kind, as API documentation shows it.
    pub fn name(&self) -> &'static str {
        match self {
            ComponentKind::Markdown => "markdown",
            ComponentKind::Textbox { .. } => "textbox",
            ComponentKind::Number { .. } => "number",
            ComponentKind::Button { .. } => "button",
            ComponentKind::Checkbox => "checkbox",
            ComponentKind::CheckboxGroup { .. } => "checkbox_group",
            ComponentKind::Dropdown { .. } => "dropdown",
            ComponentKind::Json => "json",
            ComponentKind::Slider { .. } => "slider",
            ComponentKind::Radio { .. } => "radio",
            ComponentKind::Html => "html",
            ComponentKind::Timer { .. } => "timer",
            ComponentKind::Chatbot => "chatbot",
            ComponentKind::State => "state",
            ComponentKind::Global => "global",
            ComponentKind::BrowserState(_) => "browser_state",
        }
    }

    /// The JSON type an API caller sends or receives for this slot.
    pub fn value_type(&self) -> &'static str {
        match self {
            ComponentKind::Markdown
            | ComponentKind::Textbox { .. }
            | ComponentKind::Button { .. }
            | ComponentKind::Html => "string",
            ComponentKind::Number { .. } | ComponentKind::Slider { .. } => "number",
            ComponentKind::Timer { .. } => "number (seconds)",
            ComponentKind::Checkbox => "boolean",
            ComponentKind::CheckboxGroup { .. } => "array of strings",
            ComponentKind::Dropdown {
                multiselect: true, ..
            } => "array of strings",
            ComponentKind::Dropdown { .. } | ComponentKind::Radio { .. } => "string or null",
            ComponentKind::Json => "any JSON",
            ComponentKind::Chatbot => "array of {role: \"user\" | \"assistant\", content: string}",
            ComponentKind::BrowserState(_) => {
                "sealed string from an earlier answer, or null (the default)"
            }
            ComponentKind::State | ComponentKind::Global => "null (held by the server)",
        }
    }

    /// Whether the value of this slot lives on the server (session or global).
    pub fn is_server_side(&self) -> bool {
        matches!(self, ComponentKind::State | ComponentKind::Global)
    }

    /// Whether the component is drawn on the page.
    pub fn is_rendered(&self) -> bool {
        !matches!(
            self,
            ComponentKind::State
                | ComponentKind::Global
                | ComponentKind::BrowserState(_)
                | ComponentKind::Timer { .. }
        )
    }

    /// Whether the page holds its value: drawn components, and timers (not drawn,
    /// but their interval and `active` flag live in the page, which runs them).
    pub fn is_page_value(&self) -> bool {
        self.is_rendered() || matches!(self, ComponentKind::Timer { .. })
    }
}

/// The shortest interval a [`ComponentKind::Timer`] ticks at, in seconds: a client
/// given a shorter one ticks at this one (a server also refuses to mount an app whose
/// timers together would use up more than half of a session's events per second).
pub const MIN_TIMER_INTERVAL_SECS: f64 = 0.05;

/// One message of a [`ComponentKind::Chatbot`]: who said it and what (Markdown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: ChatRole,
    /// What was said, as Markdown source.
    pub content: String,
}

impl ChatMessage {
    /// A message of the user's.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::User,
            content: content.into(),
        }
    }
    /// A message of the assistant's.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::Assistant,
            content: content.into(),
        }
    }
}

/// Who said a [`ChatMessage`]. On the wire: `"user"` or `"assistant"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// The person using the page.
    User,
    /// The app answering.
    Assistant,
}

/// The kind of text a [`ComponentKind::Textbox`] takes. On the wire: `"text"`,
/// `"password"` or `"email"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextboxType {
    /// Any text, shown as typed.
    Text,
    /// Any text, hidden while typed (events still carry it as plain JSON text).
    Password,
    /// An e-mail address: the browser checks its form and offers an address
    /// keyboard. The server does not check it.
    Email,
}

/// How a [`ComponentKind::Button`] is drawn. On the wire: `"primary"`, `"secondary"`
/// or `"stop"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonVariant {
    /// The page's main action, in the accent colour.
    Primary,
    /// An ordinary action (the default).
    Secondary,
    /// A destructive or cancelling action, in the error colour.
    Stop,
}

/// Where a browser-state slot is kept in the browser. Nothing else about it leaves the
/// server: no secret, no key material, not even its default value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowserStateConfig {
    /// The localStorage key (namespaced by the client with the app id).
    pub storage_key: String,
}

/// Properties shared by every component. Each may be changed by an event's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentProps {
    /// Text shown with the component and used as its accessible name; API clients
    /// also address outputs by it. `None`: no label is shown.
    pub label: Option<String>,
    /// Help text shown under the label.
    pub info: Option<String>,
    /// Whether it is drawn; a hidden component keeps its value and still takes part
    /// in events.
    pub visible: bool,
    /// Whether the user may edit it; `None` lets the client decide (inputs of some
    /// listener are interactive, pure outputs are not).
    pub interactive: Option<bool>,
    /// Initial value (null for state slots).
    pub value: Value,
    /// The initial value rendered to HTML, for kinds the server renders (Markdown,
    /// Html); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// A Chatbot's initial messages, each rendered to HTML; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// What names the component across re-renders of a rendered region
    /// ([`crate::render`]); every component of a region has one (positional when the
    /// app gave none). Absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Default for ComponentProps {
    fn default() -> Self {
        ComponentProps {
            label: None,
            info: None,
            visible: true,
            interactive: None,
            value: Value::Null,
            html: None,
            items: Vec::new(),
            key: None,
        }
    }
}

/// The page layout: rows, columns, tabs and accordions of components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutNode {
    /// Children side by side (`{"row": {"children": [...]}}`).
    Row {
        /// What the row holds, left to right.
        children: Vec<LayoutNode>,
    },
    /// Children one under the other (`{"column": {"children": [...]}}`).
    Column {
        /// What the column holds, top to bottom.
        children: Vec<LayoutNode>,
    },
    /// Tabs: one [`LayoutNode::Tab`] child per tab, the first one shown at first
    /// (`{"tabs": {"children": [...]}}`).
    Tabs {
        /// The tabs, in order; each is a [`LayoutNode::Tab`].
        children: Vec<LayoutNode>,
    },
    /// One tab of a [`LayoutNode::Tabs`]: its label and what it shows.
    Tab {
        /// The tab's name, on its button.
        label: String,
        /// What the tab shows, top to bottom.
        children: Vec<LayoutNode>,
    },
    /// A section that can be opened and closed, under a label.
    Accordion {
        /// Shown on the section's toggle.
        label: String,
        /// Whether it is open at first.
        open: bool,
        /// What it shows, top to bottom.
        children: Vec<LayoutNode>,
    },
    /// A drawn component (`{"component": {"id": 3}}`). Slots that are not drawn
    /// (states, globals, browser states) never appear in the layout.
    Component {
        /// The component, an index in [`AppConfig::components`].
        id: ComponentId,
    },
    /// A region laid out by a function of session state (`{"render": {...}}`): in
    /// the config, as rendered from the state's default; an event that changes the
    /// state answers with the region's new contents
    /// ([`crate::event::EventResult::regions`]).
    Render(RenderedRegion),
}

impl LayoutNode {
    /// The nodes a container holds, in order; none for a component or a region (whose
    /// contents are its render's, not part of this layout).
    pub fn children(&self) -> &[LayoutNode] {
        match self {
            LayoutNode::Row { children }
            | LayoutNode::Column { children }
            | LayoutNode::Tabs { children }
            | LayoutNode::Tab { children, .. }
            | LayoutNode::Accordion { children, .. } => children,
            LayoutNode::Component { .. } | LayoutNode::Render(_) => &[],
        }
    }
}

/// What one render of a region lays out: in the config (rendered from the state's
/// default) as [`LayoutNode::Render`], and in an event's answer
/// ([`crate::event::EventResult::regions`]) whenever the event changed the state the
/// region is rendered from; the page replaces the region's contents with it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RenderedRegion {
    /// Which region of the app (in the order the app declared them).
    pub region: u32,
    /// The components the render made; each has a key
    /// ([`crate::config::ComponentProps::key`]).
    pub components: Vec<ComponentConfig>,
    /// How they are laid out (an implicit column).
    pub layout: Vec<LayoutNode>,
    /// The listeners of the region's components; each is triggered by one of them.
    pub listeners: Vec<ListenerConfig>,
}

impl RenderedRegion {
    /// The component of this region with this id.
    pub fn component(&self, id: ComponentId) -> Option<&ComponentConfig> {
        self.components.iter().find(|c| c.id == id)
    }
}

/// An event listener: which events trigger it, what it reads and what it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerConfig {
    /// Its index in [`AppConfig::listeners`]; what an [`crate::event::EventRequest`]
    /// names to run it.
    pub id: ListenerId,
    /// The events that run it; any one of them does.
    pub triggers: Vec<Trigger>,
    /// Input slots, in the order the client sends values for them.
    pub inputs: Vec<ComponentId>,
    /// Output slots, in the order of the handler's results.
    pub outputs: Vec<ComponentId>,
    /// Name under which API clients may call it.
    pub api_name: Option<String>,
    /// What it does, for API clients (the endpoints page, Gradio's API info, the
    /// description of an MCP tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A chained listener (`.then`, `.success`): the listener it runs after. Such a
    /// listener has no triggers of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<After>,
    /// Whether its handler streams (Gradio's generator): a client may ask for its
    /// event's answer as a stream of partial updates then the final result
    /// ([`crate::api::RunEventStreamed`]); the plain events route answers only the
    /// final result, for every listener.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub streams: bool,
    /// The streaming listeners whose running events an event of this one stops
    /// (Gradio's `cancels`; a Stop button). A page sends such an event at once, not
    /// after the events it has queued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancels: Vec<ListenerId>,
    /// Its events (and what they set off) read and write no session value: the
    /// server runs them beside the session's other events (a streaming reply, say)
    /// rather than after them, and a page sends them in an order of their own. Set
    /// by the server.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub concurrent: bool,
}

/// Where a chained listener runs: after another, once that one has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct After {
    /// The listener it follows.
    pub listener: ListenerId,
    /// `.success`: only if that listener succeeded; `.then`: whatever its outcome.
    pub success_only: bool,
    /// The server runs it within the event of the listener it follows, in the same
    /// round trip (it reads only server-side values: states, globals). Otherwise
    /// the client runs it as an event of its own, with the page's values, once it
    /// has applied the result of the listener it follows; and a client also runs
    /// the `.then` listeners of a request that failed as a whole, since the server
    /// ran nothing of it.
    pub by_server: bool,
}

/// An event on a component, or on the app itself (`component: None`: load, unload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Trigger {
    /// The component the event happens on; `None` for app events (load, unload).
    pub component: Option<ComponentId>,
    /// What happens.
    pub event: EventKind,
}

/// What happened to trigger a listener. On the wire: `"click"`, `"change"`,
/// `"submit"`, `"load"`, `"unload"` or `"tick"` (as [`EventKind::as_str`] spells
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A button was clicked.
    Click,
    /// The value changed, by the user or by an output. For session states the server
    /// fires it itself; for browser states and components the client does.
    Change,
    /// Enter pressed in a textbox.
    Submit,
    /// The page (re)loaded and a session started.
    Load,
    /// The client went away (its stream ended). Fired by the server.
    Unload,
    /// A [`ComponentKind::Timer`]'s interval passed while it was active. Fired by the
    /// page, which runs the app; the listener runs on the server like any other.
    Tick,
}

impl EventKind {
    /// Its name on the wire, e.g. `"click"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Click => "click",
            EventKind::Change => "change",
            EventKind::Submit => "submit",
            EventKind::Load => "load",
            EventKind::Unload => "unload",
            EventKind::Tick => "tick",
        }
    }
}
