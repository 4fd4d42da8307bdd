//! The typed edge between an author's functions and the engine: [`Handler`], the
//! traits of its inputs and outputs, and the erased calls the engine makes.

use std::any::Any;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use keepsake_shared::ComponentId;
use keepsake_shared::event::PropsUpdate;

use crate::blocks::declared::{
    BrowserStateHandle, GlobalHandle, Handle, ResourceHandle, StateHandle,
};
use crate::components::Component;
use crate::state::Shared;
use crate::value::AnyValue;

pub(crate) mod notice;
pub(crate) mod request;
pub(crate) mod streaming;

/// The engine's side of the public traits of this module. Each public trait has its
/// sealed twin as a supertrait: an app names the public traits and bounds by them, but
/// cannot implement them for types of its own nor call the engine's methods through
/// them, and the docs show none of it. (The twins are `pub` in a private module, the
/// usual sealed-trait pattern: nameable here, unreachable outside.)
pub(crate) mod sealed {
    use std::sync::Arc;

    use keepsake_shared::ComponentId;

    use super::{ErasedUpdate, HandlerCall, SlotRef, Update};
    use crate::value::AnyValue;

    /// See [`super::Input`].
    pub trait SealedInput {
        fn slot_ref(&self) -> SlotRef;
    }

    /// See [`super::Output`].
    pub trait SealedOutput {
        fn component_id(&self) -> ComponentId;
    }

    /// See [`super::Inputs`].
    pub trait SealedInputs {
        fn slot_refs(&self) -> Vec<SlotRef>;
        fn from_erased(values: Vec<AnyValue>) -> Option<<Self as super::Inputs>::Values>
        where
            Self: super::Inputs;
    }

    /// See [`super::Outputs`].
    pub trait SealedOutputs {
        fn component_ids(&self) -> Vec<ComponentId>;
    }

    /// See [`super::IntoUpdate`].
    pub trait SealedIntoUpdate<T> {
        fn into_update(self) -> Update<T>;
    }

    /// See [`super::IntoOutputs`].
    pub trait SealedIntoOutputs<O> {
        fn into_outputs(self) -> Vec<ErasedUpdate>;
    }

    /// See [`super::Handler`].
    pub trait SealedHandler<Args, O, M> {
        /// Whether it yields a sequence of outputs ([`crate::Streaming`]).
        const STREAMS: bool = false;
        fn call(self: Arc<Self>, args: Args) -> HandlerCall;
    }
}

/// Where a handler argument comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRef {
    /// A slot listed in the config (component, state, global or browser state).
    Wire(ComponentId),
    /// A per-session resource; not on the wire.
    Resource(u32),
    /// The request behind the event ([`crate::Request`]); not on the wire.
    Request,
    /// A [`crate::Notifier`] for this run of the handler; not on the wire.
    Notifier,
}

/// One input of a listener.
///
/// Sealed: Keepsake implements it for its handles, [`REQUEST`](crate::REQUEST) and
/// [`NOTIFY`](crate::NOTIFY); an app uses it, it does not implement it.
///
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// struct Mine;
/// // Not an input the engine knows how to fill: this does not compile.
/// impl keepsake::Input for Mine {
///     type Value = u32;
/// }
/// ```
pub trait Input: Copy + sealed::SealedInput {
    /// The type of the handler argument it gives (for a resource, its [`Shared`]
    /// handle).
    type Value: Send + 'static;
}

impl<C: Component> Input for Handle<C> {
    type Value = C::Value;
}
impl<C: Component> sealed::SealedInput for Handle<C> {
    fn slot_ref(&self) -> SlotRef {
        SlotRef::Wire(self.id)
    }
}
impl<T: Send + 'static> Input for StateHandle<T> {
    type Value = T;
}
impl<T: Send + 'static> sealed::SealedInput for StateHandle<T> {
    fn slot_ref(&self) -> SlotRef {
        SlotRef::Wire(self.id)
    }
}
impl<T: Send + 'static> Input for GlobalHandle<T> {
    type Value = T;
}
impl<T: Send + 'static> sealed::SealedInput for GlobalHandle<T> {
    fn slot_ref(&self) -> SlotRef {
        SlotRef::Wire(self.id)
    }
}
impl<T: Send + 'static> Input for BrowserStateHandle<T> {
    type Value = T;
}
impl<T: Send + 'static> sealed::SealedInput for BrowserStateHandle<T> {
    fn slot_ref(&self) -> SlotRef {
        SlotRef::Wire(self.id)
    }
}
impl<T: Send + 'static> Input for ResourceHandle<T> {
    type Value = Shared<T>;
}
impl<T: Send + 'static> sealed::SealedInput for ResourceHandle<T> {
    fn slot_ref(&self) -> SlotRef {
        SlotRef::Resource(self.id)
    }
}

/// One output of a listener.
///
/// Sealed: Keepsake implements it for its handles.
pub trait Output: Copy + sealed::SealedOutput {
    /// The type the handler returns for it (or wraps in an [`Update`]).
    type Value: Send + 'static;
}

impl<C: Component> Output for Handle<C> {
    type Value = C::Value;
}
impl<C: Component> sealed::SealedOutput for Handle<C> {
    fn component_id(&self) -> ComponentId {
        self.id
    }
}
impl<T: Send + 'static> Output for StateHandle<T> {
    type Value = T;
}
impl<T: Send + 'static> sealed::SealedOutput for StateHandle<T> {
    fn component_id(&self) -> ComponentId {
        self.id
    }
}
impl<T: Send + 'static> Output for GlobalHandle<T> {
    type Value = T;
}
impl<T: Send + 'static> sealed::SealedOutput for GlobalHandle<T> {
    fn component_id(&self) -> ComponentId {
        self.id
    }
}
impl<T: Send + 'static> Output for BrowserStateHandle<T> {
    type Value = T;
}
impl<T: Send + 'static> sealed::SealedOutput for BrowserStateHandle<T> {
    fn component_id(&self) -> ComponentId {
        self.id
    }
}

/// The inputs of a listener: `()`, one handle, or a tuple of handles.
///
/// Sealed, as [`Input`] is.
pub trait Inputs: sealed::SealedInputs {
    /// The handler's arguments, as a tuple.
    type Values: Send + 'static;
}

/// The outputs of a listener: `()`, one handle, or a tuple of handles.
///
/// Sealed, as [`Output`] is.
pub trait Outputs: sealed::SealedOutputs {}

fn take<T: 'static>(values: &mut std::vec::IntoIter<AnyValue>) -> Option<T> {
    let value: Box<dyn Any + Send> = values.next()?;
    value.downcast::<T>().ok().map(|b| *b)
}

impl<I: Input> Inputs for I {
    type Values = (I::Value,);
}
impl<I: Input> sealed::SealedInputs for I {
    fn slot_refs(&self) -> Vec<SlotRef> {
        vec![self.slot_ref()]
    }
    fn from_erased(values: Vec<AnyValue>) -> Option<<Self as Inputs>::Values> {
        let mut values = values.into_iter();
        Some((take::<I::Value>(&mut values)?,))
    }
}

impl<O: Output> Outputs for O {}
impl<O: Output> sealed::SealedOutputs for O {
    fn component_ids(&self) -> Vec<ComponentId> {
        vec![self.component_id()]
    }
}

macro_rules! tuple_io {
    ($($ty:ident),*) => {
        impl<$($ty: Input),*> Inputs for ($($ty,)*) {
            type Values = ($($ty::Value,)*);
        }

        impl<$($ty: Input),*> sealed::SealedInputs for ($($ty,)*) {
            #[allow(non_snake_case)]
            fn slot_refs(&self) -> Vec<SlotRef> {
                let ($($ty,)*) = self;
                vec![$($ty.slot_ref()),*]
            }
            #[allow(unused_mut, unused_variables)]
            fn from_erased(values: Vec<AnyValue>) -> Option<<Self as Inputs>::Values> {
                let mut values = values.into_iter();
                Some(($(take::<$ty::Value>(&mut values)?,)*))
            }
        }

        impl<$($ty: Output),*> Outputs for ($($ty,)*) {}

        impl<$($ty: Output),*> sealed::SealedOutputs for ($($ty,)*) {
            #[allow(non_snake_case)]
            fn component_ids(&self) -> Vec<ComponentId> {
                let ($($ty,)*) = self;
                vec![$($ty.component_id()),*]
            }
        }
    };
}

tuple_io!();
tuple_io!(A);
tuple_io!(A, B);
tuple_io!(A, B, C);
tuple_io!(A, B, C, D);
tuple_io!(A, B, C, D, E);
tuple_io!(A, B, C, D, E, F);
tuple_io!(A, B, C, D, E, F, G);
tuple_io!(A, B, C, D, E, F, G, H);

/// A new value and/or new properties for one output. Return a plain value to set
/// just the value.
#[derive(Debug, Clone)]
pub struct Update<T> {
    pub(crate) value: Option<T>,
    pub(crate) props: PropsUpdate,
}

impl<T> Default for Update<T> {
    fn default() -> Self {
        Update {
            value: None,
            props: PropsUpdate::default(),
        }
    }
}

impl<T> Update<T> {
    /// Leaves the output as it is.
    pub fn unchanged() -> Self {
        Update::default()
    }
    /// Sets the value.
    pub fn value(value: T) -> Self {
        Update {
            value: Some(value),
            props: PropsUpdate::default(),
        }
    }
    /// Also sets the value (after [`Update::unchanged`] or property setters).
    pub fn with_value(mut self, value: T) -> Self {
        self.value = Some(value);
        self
    }
    /// Changes the component's label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.props.label = Some(label.into());
        self
    }
    /// Shows (`true`) or hides (`false`) the component.
    pub fn visible(mut self, visible: bool) -> Self {
        self.props.visible = Some(visible);
        self
    }
    /// Lets the user edit the component (`true`) or not (`false`).
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.props.interactive = Some(interactive);
        self
    }
    /// New choices for a checkbox group or dropdown.
    pub fn choices<I: IntoIterator<Item = S>, S: Into<String>>(mut self, choices: I) -> Self {
        self.props.choices = Some(choices.into_iter().map(Into::into).collect());
        self
    }
}

impl<T> Update<T> {
    /// Starts (`true`) or stops (`false`) a [`crate::components::Timer`] output; other components
    /// ignore it.
    pub fn active(mut self, active: bool) -> Self {
        self.props.active = Some(active);
        self
    }
}

/// One output after erasure.
pub struct ErasedUpdate {
    pub(crate) value: Option<AnyValue>,
    pub(crate) props: PropsUpdate,
}

/// Something a handler may return for an output whose value type is `T`.
///
/// Sealed: implemented for `T` itself and for [`Update<T>`].
pub trait IntoUpdate<T>: sealed::SealedIntoUpdate<T> {}

impl<T, U: sealed::SealedIntoUpdate<T>> IntoUpdate<T> for U {}

impl<T> sealed::SealedIntoUpdate<T> for T {
    fn into_update(self) -> Update<T> {
        Update::value(self)
    }
}

impl<T> sealed::SealedIntoUpdate<T> for Update<T> {
    fn into_update(self) -> Update<T> {
        self
    }
}

fn erase<T: Send + 'static>(update: Update<T>) -> ErasedUpdate {
    ErasedUpdate {
        value: update.value.map(|v| Box::new(v) as AnyValue),
        props: update.props,
    }
}

/// What a handler returns for outputs `O`.
///
/// Sealed: implemented for `()`, one [`IntoUpdate`] and tuples of them.
pub trait IntoOutputs<O>: sealed::SealedIntoOutputs<O> {}

impl<O, R: sealed::SealedIntoOutputs<O>> IntoOutputs<O> for R {}

impl<O: Output, R: IntoUpdate<O::Value>> sealed::SealedIntoOutputs<O> for R {
    fn into_outputs(self) -> Vec<ErasedUpdate> {
        vec![erase(self.into_update())]
    }
}

macro_rules! tuple_returns {
    ($(($out:ident, $ret:ident)),*) => {
        impl<$($out: Output, $ret: IntoUpdate<$out::Value>),*> sealed::SealedIntoOutputs<($($out,)*)> for ($($ret,)*) {
            #[allow(non_snake_case)]
            fn into_outputs(self) -> Vec<ErasedUpdate> {
                let ($($ret,)*) = self;
                vec![$(erase($ret.into_update())),*]
            }
        }
    };
}

impl sealed::SealedIntoOutputs<()> for () {
    fn into_outputs(self) -> Vec<ErasedUpdate> {
        Vec::new()
    }
}
tuple_returns!((OA, RA));
tuple_returns!((OA, RA), (OB, RB));
tuple_returns!((OA, RA), (OB, RB), (OC, RC));
tuple_returns!((OA, RA), (OB, RB), (OC, RC), (OD, RD));
tuple_returns!((OA, RA), (OB, RB), (OC, RC), (OD, RD), (OE, RE));
tuple_returns!((OA, RA), (OB, RB), (OC, RC), (OD, RD), (OE, RE), (OF, RF));
tuple_returns!(
    (OA, RA),
    (OB, RB),
    (OC, RC),
    (OD, RD),
    (OE, RE),
    (OF, RF),
    (OG, RG)
);
tuple_returns!(
    (OA, RA),
    (OB, RB),
    (OC, RC),
    (OD, RD),
    (OE, RE),
    (OF, RF),
    (OG, RG),
    (OH, RH)
);

/// An error a handler reports to the user (like Gradio's `gr.Error`): its message is
/// shown in the client, and nothing the handler would have written is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError(pub String);

impl Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A handler's future, its outputs erased.
pub type HandlerFuture = BoxFuture<'static, Result<Vec<ErasedUpdate>, HandlerError>>;

/// A sync handler bound to its arguments, ready to run.
pub type SyncCall = Box<dyn FnOnce() -> Result<Vec<ErasedUpdate>, HandlerError> + Send>;

/// A handler bound to its arguments: a sync call (which the engine runs on the
/// blocking threads, or inline once it has proven quick) or a future.
pub enum HandlerCall {
    Sync(SyncCall),
    Async(HandlerFuture),
    /// A streaming handler's items ([`crate::Streaming`]).
    Stream(ItemStream),
}

/// One item of a streaming handler, its output type erased.
pub trait StreamItem: Send {
    /// Its outputs: encoded by reference for a partial answer, staged if it is the
    /// last (no copy of them is made).
    fn into_outputs(self: Box<Self>) -> Vec<ErasedUpdate>;
}

/// A streaming handler's items, erased.
pub type ItemStream =
    futures::stream::BoxStream<'static, Result<Box<dyn StreamItem>, HandlerError>>;

/// Markers telling apart the four shapes of handler (sync or async, plain or
/// fallible). They only exist to keep the blanket impls of [`Handler`] apart.
pub mod markers {
    /// A sync function returning the outputs.
    #[derive(Debug)]
    pub struct Sync;
    /// A sync function returning `Result<outputs, E>`.
    #[derive(Debug)]
    pub struct SyncFallible;
    /// A function returning a future of the outputs.
    #[derive(Debug)]
    pub struct Async;
    /// A function returning a future of `Result<outputs, E>`.
    #[derive(Debug)]
    pub struct AsyncFallible;
}

/// The typed edge of the engine: handles to components and states, and the traits
/// that let a plain Rust function (sync or async, returning values or a `Result`) be
/// wired to them, with the argument and return types checked at compile time.
///
/// A listener's inputs are a tuple of handles; the handler takes one argument per
/// handle, of that handle's value type. Its outputs are a handle or a tuple of
/// handles; the handler returns one value per handle, either the plain value or an
/// [`Update`] that also (or only) changes properties.
///
/// ```compile_fail
/// use keepsake::{Blocks, components::{Button, Number}};
/// let mut app = Blocks::new("x", "X");
/// let number = app.add(Number::new());
/// let button = app.add(Button::new("Go"));
/// // A Number's value is an f64: a handler taking a String does not compile.
/// app.click(button, number, number, |text: String| text);
/// ```
///
/// A function usable as the handler of a listener with argument tuple `Args` and
/// outputs `O`. Implemented for `Fn(A, B, ..) -> R`, `Fn(..) -> Result<R, E>`, and the
/// same returning futures, where `R` matches the outputs and `E: Display`.
///
/// Sync handlers may block: they run on tokio's blocking threads, as Gradio runs sync
/// functions in a thread pool, so a slow or CPU-bound one holds up no other session's
/// events and the event time-out cuts it off. One that has proven quick runs inline
/// instead (see `app/inline.rs`: a handoff to another thread costs more than a quick
/// handler). Async handlers run on the runtime's workers and must not block.
///
/// Sealed: implemented for the function shapes above (and [`crate::Streaming`]
/// ones); an app passes functions, it does not implement it.
pub trait Handler<Args, O, M>: sealed::SealedHandler<Args, O, M> + Send + Sync + 'static {}

impl<H, Args, O, M> Handler<Args, O, M> for H where
    H: sealed::SealedHandler<Args, O, M> + Send + Sync + 'static
{
}

macro_rules! handlers {
    ($($ty:ident),*) => {
        impl<Func, R, O, $($ty,)*> sealed::SealedHandler<($($ty,)*), O, markers::Sync> for Func
        where
            Func: Fn($($ty),*) -> R + Send + Sync + 'static,
            R: IntoOutputs<O> + 'static,
            O: 'static,
            $($ty: Send + 'static,)*
        {
            #[allow(non_snake_case)]
            fn call(self: Arc<Self>, ($($ty,)*): ($($ty,)*)) -> HandlerCall {
                HandlerCall::Sync(Box::new(move || Ok((self)($($ty),*).into_outputs())))
            }
        }

        impl<Func, R, Err, O, $($ty,)*> sealed::SealedHandler<($($ty,)*), O, markers::SyncFallible> for Func
        where
            Func: Fn($($ty),*) -> Result<R, Err> + Send + Sync + 'static,
            R: IntoOutputs<O> + 'static,
            Err: Display + 'static,
            O: 'static,
            $($ty: Send + 'static,)*
        {
            #[allow(non_snake_case)]
            fn call(self: Arc<Self>, ($($ty,)*): ($($ty,)*)) -> HandlerCall {
                HandlerCall::Sync(Box::new(move || {
                    (self)($($ty),*)
                        .map(sealed::SealedIntoOutputs::into_outputs)
                        .map_err(|e| HandlerError(e.to_string()))
                }))
            }
        }

        impl<Func, Fut, R, O, $($ty,)*> sealed::SealedHandler<($($ty,)*), O, markers::Async> for Func
        where
            Func: Fn($($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutputs<O>,
        {
            #[allow(non_snake_case)]
            fn call(self: Arc<Self>, ($($ty,)*): ($($ty,)*)) -> HandlerCall {
                let future = (self)($($ty),*);
                HandlerCall::Async(Box::pin(async move { Ok(future.await.into_outputs()) }))
            }
        }

        impl<Func, Fut, R, Err, O, $($ty,)*> sealed::SealedHandler<($($ty,)*), O, markers::AsyncFallible> for Func
        where
            Func: Fn($($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<R, Err>> + Send + 'static,
            R: IntoOutputs<O>,
            Err: Display,
        {
            #[allow(non_snake_case)]
            fn call(self: Arc<Self>, ($($ty,)*): ($($ty,)*)) -> HandlerCall {
                let future = (self)($($ty),*);
                HandlerCall::Async(Box::pin(async move {
                    future
                        .await
                        .map(sealed::SealedIntoOutputs::into_outputs)
                        .map_err(|e| HandlerError(e.to_string()))
                }))
            }
        }
    };
}

handlers!();
handlers!(A);
handlers!(A, B);
handlers!(A, B, C);
handlers!(A, B, C, D);
handlers!(A, B, C, D, E);
handlers!(A, B, C, D, E, F);
handlers!(A, B, C, D, E, F, G);
handlers!(A, B, C, D, E, F, G, H);
