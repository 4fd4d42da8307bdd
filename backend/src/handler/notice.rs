//! Notices a handler gives: [`Notifier`].

use std::sync::{Arc, Mutex};

use keepsake_shared::event::NoticeLevel;

use crate::handler::{Input, SlotRef, sealed};

/// The most notices one run of a handler may give; more are dropped (a page is no
/// place for a log).
pub const MAX_NOTICES: usize = 16;

/// Messages for the user from a handler (Gradio's `gr.Info` and `gr.Warning`): a
/// handler that lists [`NOTIFY`] among its inputs gets a [`Notifier`], and what it
/// gives reaches the page, as dismissable notices, with the event's result.
///
/// Notices are kept only if the listener succeeds: a failed listener's message is
/// its error, which the page shows instead (return `Err("...")` for Gradio's
/// `gr.Error`: the event fails, nothing is written, the user sees that message).
/// Notices given after the handler returned (from a task it spawned) are dropped.
///
/// Gives the user messages from a handler (see [`NOTIFY`]).
///
/// ```
/// use keepsake::{Blocks, NOTIFY, Notifier, State};
/// use keepsake::components::Button;
///
/// let mut app = Blocks::new("notes", "Notes");
/// let saved = app.state(State::new(0u32));
/// let save = app.add(Button::new("Save"));
/// app.click(save, (saved, NOTIFY), saved, |count: u32, notify: Notifier| {
///     if count >= 3 {
///         notify.warning("Saved again: this is the fourth copy.");
///     } else {
///         notify.info("Saved.");
///     }
///     count + 1
/// });
/// # app.build().unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    given: Arc<Mutex<Vec<(NoticeLevel, String)>>>,
}

impl Notifier {
    /// Something went as asked.
    pub fn info(&self, message: impl Into<String>) {
        self.give(NoticeLevel::Info, message.into());
    }

    /// Something the user should know; the event still applies.
    pub fn warning(&self, message: impl Into<String>) {
        self.give(NoticeLevel::Warning, message.into());
    }

    fn give(&self, level: NoticeLevel, message: String) {
        let mut given = self.given.lock().unwrap_or_else(|p| p.into_inner());
        if given.len() < MAX_NOTICES {
            given.push((level, message));
        }
    }

    /// What was given so far; later notices start a new list.
    pub(crate) fn take(&self) -> Vec<(NoticeLevel, String)> {
        std::mem::take(&mut *self.given.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The input that gives a handler a [`Notifier`].
#[derive(Clone, Copy, Debug)]
pub struct NotifyInput;

/// List it among a listener's inputs to get a [`Notifier`] as that argument.
pub const NOTIFY: NotifyInput = NotifyInput;

impl Input for NotifyInput {
    type Value = Notifier;
}

impl sealed::SealedInput for NotifyInput {
    fn slot_ref(&self) -> SlotRef {
        SlotRef::Notifier
    }
}
