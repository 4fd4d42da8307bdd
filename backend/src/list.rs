//! [`List`], the list type for large session states.

use std::fmt;

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::value;

/// [`List`]: a list for large session states, whose events cost the same at 10 items
/// as at 10,000.
///
/// Every event gives its handler a copy of the state it reads (the handler may fail
/// after changing its copy, and then nothing may change), measures the new value
/// against the per-session byte limit, and compares it with the old one for
/// `.change`. For a `Vec` each of these walks the whole list. A `List` is a
/// persistent vector ([`imbl::Vector`]: a copy shares everything with the original
/// until one of them changes, and then copies only the chunk it changes) that keeps
/// the size of its JSON encoding up to date as it changes, so the engine reads the
/// size instead of encoding the list, and compares unshared chunks only.
///
/// A list held in a session [`crate::State`] (or a [`crate::Global`]) that stays
/// cheap when it grows: copying it for a handler, measuring it against
/// [`crate::Settings::max_state_bytes`] and comparing it for `.change` cost the same
/// whatever its length (a handler's push or pop copies one chunk of at most 64 items).
///
/// Its JSON is a plain array, as a `Vec`'s: a state can move from `Vec<T>` to
/// `List<T>` without a [`crate::State::version`] bump. Read it through
/// [`imbl::Vector`]'s methods (it dereferences to one: `len`, `iter`, `get`,
/// `back`, ...); change it through its own, which keep its size up to date.
///
/// ```
/// use keepsake::components::{Button, Number, Textbox};
/// use keepsake::{Blocks, List, State};
///
/// let mut app = Blocks::new("chat", "Chat");
/// let history = app.state(State::new(List::<String>::new()));
/// let text = app.add(Textbox::new().label("Message"));
/// let send = app.add(Button::new("Send"));
/// let count = app.add(Number::new().label("Messages"));
/// app.click(send, (text, history), history, |text: String, mut history: List<String>| {
///     history.push_back(text);
///     history
/// });
/// app.change(history, history, count, |history: List<String>| history.len() as f64);
/// app.build()?;
/// # Ok::<(), keepsake::BuildError>(())
/// ```
#[derive(Clone)]
pub struct List<T: Clone> {
    items: imbl::Vector<T>,
    /// The length of the list's JSON encoding: `[`, the items' encodings separated
    /// by commas, `]`.
    bytes: usize,
}

/// The JSON of an empty list: `[]`.
const EMPTY: usize = 2;

impl<T: Clone + Serialize> List<T> {
    /// An empty list.
    pub fn new() -> Self {
        List {
            items: imbl::Vector::new(),
            bytes: EMPTY,
        }
    }

    /// The length of the list's JSON encoding, as the per-session limit counts it.
    pub fn encoded_len(&self) -> usize {
        self.bytes
    }

    /// What one more item adds to the encoding: the item, and a comma unless the
    /// list is empty.
    fn item_cost(&self, item: &T) -> usize {
        value::encoded_len_of(item) + usize::from(!self.items.is_empty())
    }

    /// Takes off what `item`, just removed, added.
    fn removed(&mut self, item: &T) {
        let comma = usize::from(!self.items.is_empty());
        // Saturating: a `Serialize` that encodes the same item to another length
        // from one call to the next must not panic here.
        self.bytes = self
            .bytes
            .saturating_sub(value::encoded_len_of(item) + comma)
            .max(EMPTY);
    }

    /// Adds `item` at the end.
    pub fn push_back(&mut self, item: T) {
        self.bytes += self.item_cost(&item);
        self.items.push_back(item);
    }

    /// Adds `item` at the front.
    pub fn push_front(&mut self, item: T) {
        self.bytes += self.item_cost(&item);
        self.items.push_front(item);
    }

    /// Removes the last item.
    pub fn pop_back(&mut self) -> Option<T> {
        let item = self.items.pop_back()?;
        self.removed(&item);
        Some(item)
    }

    /// Removes the first item.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        self.removed(&item);
        Some(item)
    }

    /// Inserts `item` at `index`. Panics if `index > len`, as `Vec::insert` does.
    pub fn insert(&mut self, index: usize, item: T) {
        self.bytes += self.item_cost(&item);
        self.items.insert(index, item);
    }

    /// Removes and returns the item at `index`. Panics if `index >= len`.
    pub fn remove(&mut self, index: usize) -> T {
        let item = self.items.remove(index);
        self.removed(&item);
        item
    }

    /// Replaces the item at `index`, returning the old one. Panics if `index >= len`.
    pub fn set(&mut self, index: usize, item: T) -> T {
        let added = value::encoded_len_of(&item);
        let old = self.items.set(index, item);
        self.bytes = self.bytes.saturating_sub(value::encoded_len_of(&old)) + added;
        old
    }

    /// Keeps the first `len` items (the work is the number removed).
    pub fn truncate(&mut self, len: usize) {
        while self.items.len() > len {
            self.pop_back();
        }
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        *self = List::new();
    }

    /// Keeps the items for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        *self = self
            .items
            .iter()
            .filter(|item| keep(item))
            .cloned()
            .collect();
    }
}

impl<T: Clone + Serialize> Default for List<T> {
    fn default() -> Self {
        List::new()
    }
}

impl<T: Clone> std::ops::Deref for List<T> {
    type Target = imbl::Vector<T>;

    fn deref(&self) -> &imbl::Vector<T> {
        &self.items
    }
}

impl<T: Clone + Serialize> Extend<T> for List<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push_back(item);
        }
    }
}

impl<T: Clone + Serialize> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut list = List::new();
        list.extend(items);
        list
    }
}

impl<T: Clone + Serialize> From<Vec<T>> for List<T> {
    fn from(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

impl<T: Clone> IntoIterator for List<T> {
    type Item = T;
    type IntoIter = imbl::vector::ConsumingIter<T, imbl::shared_ptr::DefaultSharedPtr>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T: Clone> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = imbl::vector::Iter<'a, T, imbl::shared_ptr::DefaultSharedPtr>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T: Clone + PartialEq> PartialEq for List<T> {
    /// Length and size first; then only the chunks the two lists do not share, so a
    /// state a handler returned with one item changed costs one chunk's comparison.
    fn eq(&self, other: &Self) -> bool {
        if self.items.len() != other.items.len() || self.bytes != other.bytes {
            return false;
        }
        if self.items.ptr_eq(&other.items) {
            return true;
        }
        let (mut left, mut right) = (self.items.focus(), other.items.focus());
        let mut at = 0;
        while at < self.items.len() {
            let (left_range, left_chunk) = left.chunk_at(at);
            let (right_range, right_chunk) = right.chunk_at(at);
            let end = left_range.end.min(right_range.end);
            let shared = left_range == right_range && std::ptr::eq(left_chunk, right_chunk);
            if !shared {
                let left_items = &left_chunk[at - left_range.start..end - left_range.start];
                let right_items = &right_chunk[at - right_range.start..end - right_range.start];
                if left_items != right_items {
                    return false;
                }
            }
            at = end;
        }
        true
    }
}

impl<T: Clone + Eq> Eq for List<T> {}

impl<T: Clone + fmt::Debug> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items.iter()).finish()
    }
}

impl<T: Clone + Serialize> Serialize for List<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // While the engine measures a value holding this list, the list gives its
        // size instead of being encoded (see `value::known_size`).
        if value::known_size(self.bytes) {
            return serializer.serialize_unit();
        }
        serializer.collect_seq(self.items.iter())
    }
}

impl<'de, T: Clone + Serialize + Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T>(std::marker::PhantomData<T>);

        impl<'de, T: Clone + Serialize + Deserialize<'de>> Visitor<'de> for Items<T> {
            type Value = List<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut list = List::new();
                while let Some(item) = seq.next_element()? {
                    list.push_back(item);
                }
                Ok(list)
            }
        }

        deserializer.deserialize_seq(Items(std::marker::PhantomData))
    }
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
