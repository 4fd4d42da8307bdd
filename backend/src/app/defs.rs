//! What a plan is made of: how each slot is read and written, the definitions of
//! states, globals and browser states, and each listener with its erased handler.
//! Apart from the [`super::App`] that holds them, so the builders of rendered
//! regions and chained listeners use them without depending on the app itself.

use std::sync::Arc;
use std::time::Duration;

use keepsake_shared::ComponentId;
use keepsake_shared::config::ListenerConfig;
use serde_json::Value;

use crate::app::inline::SyncPace;
use crate::handler::{HandlerCall, HandlerError, SlotRef};
use crate::state::{DeleteCallback, Factory, JsonMigration};
use crate::value::{AnyValue, Codec, DynValue};

/// How a handler's output becomes JSON for the client, read by reference.
pub(crate) type Encode = fn(&(dyn std::any::Any + Send)) -> Result<Value, String>;

/// How the engine reads and writes one slot.
pub(crate) enum SlotDef {
    /// A component: the value comes from (and goes to) the client.
    Client {
        decode: fn(Value) -> Result<AnyValue, String>,
        encode: Encode,
    },
    State(u32),
    Global(u32),
    /// A browser state: the client holds it sealed ([`BrowserStateDef`]).
    Browser(u32),
}

/// How a browser state is kept: what the engine needs to open what a client sends
/// and seal what a handler writes ([`crate::engine`]'s `browser` room).
pub(crate) struct BrowserStateDef {
    pub(crate) component: ComponentId,
    pub(crate) storage_key: String,
    /// What else keys from the random seed are bound to: the type and the default.
    pub(crate) binding: String,
    /// The app author's secrets, newest first, when both the storage key and a secret
    /// were fixed; `None`: keys from the store's per-start random seed.
    pub(crate) secrets: Option<Vec<String>>,
    pub(crate) default: Value,
    pub(crate) max_age: Option<Duration>,
    pub(crate) version: u32,
    pub(crate) migration: Option<JsonMigration>,
    pub(crate) decode: fn(Value) -> Result<AnyValue, String>,
    pub(crate) encode: Encode,
}

pub(crate) struct StateDef {
    pub(crate) component: ComponentId,
    pub(crate) factory: Factory,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) on_delete: Option<DeleteCallback>,
    pub(crate) accept: fn(AnyValue) -> Option<Box<dyn DynValue>>,
    pub(crate) codec: Codec,
}

pub(crate) type Render = Arc<dyn Fn(&dyn DynValue) -> Option<Value> + Send + Sync>;

pub(crate) struct GlobalDef {
    pub(crate) initial: Box<dyn DynValue>,
    pub(crate) accept: fn(AnyValue) -> Option<Box<dyn DynValue>>,
    pub(crate) codec: Codec,
    /// Components that show this global on every connected page.
    pub(crate) bindings: Vec<(ComponentId, Render)>,
}

pub(crate) type ErasedHandler =
    Arc<dyn Fn(Vec<AnyValue>) -> Result<HandlerCall, HandlerError> + Send + Sync>;

pub(crate) struct ListenerDef {
    pub(crate) config: ListenerConfig,
    pub(crate) inputs: Vec<SlotRef>,
    pub(crate) handler: ErasedHandler,
    /// Every global an event of this listener may write: its own global outputs and
    /// those of the `.change` listeners its state writes can set off, transitively.
    /// Sorted: the engine locks them in this order before any handler runs.
    pub(crate) globals_written: Vec<u32>,
    /// How quick its handler has been, if it is sync: where it runs next.
    pub(crate) pace: Arc<SyncPace>,
    /// A stopped stream of it lands with its last item (`true`, the default) or
    /// writes nothing ([`crate::ListenerRef::discard_when_stopped`]).
    pub(crate) keeps_when_stopped: bool,
    /// A streamed reply of it whose page left and did not come back within the
    /// resume window is stopped ([`crate::ListenerRef::stop_when_abandoned`]);
    /// by default it runs on and lands.
    pub(crate) stops_when_abandoned: bool,
}
