//! Handles to what an app declared (components, states, globals, browser states,
//! resources), and the events a listener can be attached to.
//!
//! A handle is a typed id: `Handle<Number>` names a Number component, so a
//! listener's handler is checked against its value type ([`crate::handler`]).

use std::marker::PhantomData;

use keepsake_shared::ComponentId;
use keepsake_shared::config::{EventKind, Trigger};

use crate::components::{Button, Component, Textbox, Timer};

macro_rules! copy_handle {
    ($name:ident) => {
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<T> Copy for $name<T> {}
        impl<T> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.id)
            }
        }
    };
}

/// A component placed on the page.
pub struct Handle<C> {
    pub(crate) id: ComponentId,
    pub(crate) _type: PhantomData<fn() -> C>,
}
copy_handle!(Handle);

/// A session state slot.
pub struct StateHandle<T> {
    pub(crate) id: ComponentId,
    pub(crate) _type: PhantomData<fn() -> T>,
}
copy_handle!(StateHandle);

/// A global value.
pub struct GlobalHandle<T> {
    pub(crate) id: ComponentId,
    pub(crate) _type: PhantomData<fn() -> T>,
}
copy_handle!(GlobalHandle);

/// A browser state slot.
pub struct BrowserStateHandle<T> {
    pub(crate) id: ComponentId,
    pub(crate) _type: PhantomData<fn() -> T>,
}
copy_handle!(BrowserStateHandle);

/// A per-session resource.
pub struct ResourceHandle<T> {
    pub(crate) id: u32,
    pub(crate) _type: PhantomData<fn() -> T>,
}
copy_handle!(ResourceHandle);

impl<C> Handle<C> {
    /// The component's id in the app's config: how the wire protocol (updates,
    /// [`keepsake_shared::config::AppConfig::component`]) names it.
    pub fn id(&self) -> ComponentId {
        self.id
    }
}

/// An event of a component, to pass to [`crate::Blocks::on`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTrigger(pub(crate) Trigger);

impl EventTrigger {
    pub(crate) fn new(component: Option<ComponentId>, event: EventKind) -> Self {
        EventTrigger(Trigger { component, event })
    }
}

/// Components that can be clicked.
pub trait Clickable: Copy {
    /// The click event of this component.
    fn clicked(&self) -> EventTrigger;
}
/// Slots whose value can change (by the user or by an output).
pub trait Changeable: Copy {
    /// The change event of this slot.
    fn changed(&self) -> EventTrigger;
}
/// Components on which Enter submits.
pub trait Submittable: Copy {
    /// The submit (Enter) event of this component.
    fn submitted(&self) -> EventTrigger;
}

impl Clickable for Handle<Button> {
    fn clicked(&self) -> EventTrigger {
        EventTrigger::new(Some(self.id), EventKind::Click)
    }
}
impl Submittable for Handle<Textbox> {
    fn submitted(&self) -> EventTrigger {
        EventTrigger::new(Some(self.id), EventKind::Submit)
    }
}
impl<C: Component> Changeable for Handle<C> {
    fn changed(&self) -> EventTrigger {
        EventTrigger::new(Some(self.id), EventKind::Change)
    }
}
impl<T> Changeable for StateHandle<T> {
    fn changed(&self) -> EventTrigger {
        EventTrigger::new(Some(self.id), EventKind::Change)
    }
}
impl<T> Changeable for BrowserStateHandle<T> {
    fn changed(&self) -> EventTrigger {
        EventTrigger::new(Some(self.id), EventKind::Change)
    }
}

/// Components whose ticks can run a listener ([`crate::Blocks::tick`]).
pub trait Tickable: Copy {
    /// The tick event of this component.
    fn ticked(&self) -> EventTrigger;
}

impl Tickable for Handle<Timer> {
    fn ticked(&self) -> EventTrigger {
        EventTrigger::new(Some(self.id), EventKind::Tick)
    }
}
