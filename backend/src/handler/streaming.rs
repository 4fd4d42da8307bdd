//! Streaming handlers: [`Streaming`] (its doc has the rules and an example).

use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::stream::{BoxStream, Stream, StreamExt};

use crate::handler::sealed;
use crate::handler::{ErasedUpdate, HandlerCall, HandlerError, IntoOutputs, StreamItem};

/// Streaming handlers (Gradio's generators): a handler that returns a [`Streaming`]
/// yields a sequence of outputs instead of one. Each item is a full set of the
/// listener's outputs.
///
/// - A page (or any client of `RunEventStreamed`) sees each item's **component**
///   outputs as it comes, at most `--max-partials-per-second` (30) times a second:
///   items that come faster are merged, the latest sent when its turn comes;
///   states, globals and browser states are never sent and are not written by
///   these partial items.
/// - The **last** item is the listener's result: it is staged and committed exactly
///   once, as any handler's outputs are (its `.change` cascade and chained listeners
///   run after it, then one store commit). The plain events route, the Rust client
///   and the Gradio bridge's one-call routes get only this final result; the Gradio
///   queue (`gradio_client`'s `submit()`) and MCP calls that ask for progress get the
///   partials too.
/// - An `Err` item, a panic or an empty stream fails the event: nothing is written.
/// - Each item must come within `--event-timeout` of the one before (the first,
///   of the start), the whole stream must end within `--stream-timeout` (10 min by
///   default), and it may yield at most `--max-stream-items` items (100,000);
///   past any of them, the event fails and writes nothing. With Redis, the
///   session's lease is renewed while the stream runs.
/// - The session's lock (and, with Redis, its lease) is held for the whole stream,
///   so a session's events stay in order. A client that goes away drops the event:
///   nothing is committed and every lock is given back.
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use keepsake::{Blocks, Streaming, components::{Button, Textbox}};
///
/// let mut app = Blocks::new("count", "Count");
/// let shown = app.add(Textbox::new().label("Count"));
/// let go = app.add(Button::new("Count to three"));
/// // Shows "1", "2", then "3"; "3" is the listener's result.
/// app.click(go, (), shown, || {
///     Streaming::new(futures::stream::iter(1..=3).then(|n| async move {
///         tokio::time::sleep(Duration::from_millis(10)).await;
///         n.to_string()
///     }))
/// });
/// let app = app.build()?;
/// assert!(app.config().listeners[0].streams);
/// # Ok::<(), keepsake::BuildError>(())
/// ```
///
/// What a streaming handler returns: a stream of outputs (each item what a plain
/// handler would return, e.g. a value or a tuple of values), or of
/// `Result<outputs, E>` where an `Err` fails the event. Each is sent as it comes,
/// and the last is also what is stored.
pub struct Streaming<R> {
    items: BoxStream<'static, Result<R, HandlerError>>,
}

impl<R: Send + 'static> Streaming<R> {
    /// A stream of outputs.
    pub fn new(items: impl Stream<Item = R> + Send + 'static) -> Self {
        Streaming {
            items: items.map(Ok).boxed(),
        }
    }

    /// A stream of outputs that may fail: an `Err` item ends the stream and fails
    /// the event with its message (nothing is written).
    pub fn fallible<E: Display>(items: impl Stream<Item = Result<R, E>> + Send + 'static) -> Self {
        Streaming {
            items: items
                .map(|item| item.map_err(|e| HandlerError(e.to_string())))
                .boxed(),
        }
    }
}

impl<R> std::fmt::Debug for Streaming<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streaming")
    }
}

struct Item<R, O>(R, PhantomData<fn() -> O>);

impl<R: IntoOutputs<O> + Send, O> StreamItem for Item<R, O> {
    fn into_outputs(self: Box<Self>) -> Vec<ErasedUpdate> {
        self.0.into_outputs()
    }
}

/// Marker of the [`Handler`] impls for functions returning a [`Streaming`].
#[derive(Debug)]
pub struct Streams;

macro_rules! streaming_handlers {
    ($($ty:ident),*) => {
        impl<Func, R, O, $($ty,)*> sealed::SealedHandler<($($ty,)*), O, Streams> for Func
        where
            Func: Fn($($ty),*) -> Streaming<R> + Send + Sync + 'static,
            R: IntoOutputs<O> + Send + 'static,
            O: 'static,
            $($ty: Send + 'static,)*
        {
            const STREAMS: bool = true;
            #[allow(non_snake_case)]
            fn call(self: Arc<Self>, ($($ty,)*): ($($ty,)*)) -> HandlerCall {
                let items = (self)($($ty),*).items.map(|item| {
                    item.map(|r| Box::new(Item::<R, O>(r, PhantomData)) as Box<dyn StreamItem>)
                });
                HandlerCall::Stream(items.boxed())
            }
        }
    };
}

streaming_handlers!();
streaming_handlers!(A);
streaming_handlers!(A, B);
streaming_handlers!(A, B, C);
streaming_handlers!(A, B, C, D);
streaming_handlers!(A, B, C, D, E);
streaming_handlers!(A, B, C, D, E, F);
streaming_handlers!(A, B, C, D, E, F, G);
streaming_handlers!(A, B, C, D, E, F, G, H);
