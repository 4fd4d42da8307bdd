//! Changes instead of copies: how a streamed answer's partials say what changed since
//! the value the client holds ([`crate::event::ComponentUpdate::edits`]).
//!
//! The format is Gradio's streaming diff (what `gradio_client` and `@gradio/client`
//! apply to `process_generating` messages): a list of `[action, path, value]` edits,
//! `path` a list of keys and indices from the value's root, the action one of
//! `replace`, `append` (text to a string) and `add` (an item at a list's index). JSON
//! Patch (RFC 6902) was the other format that exists, but it has no way to append to a
//! string: each token of a streamed reply would `replace` the whole message again,
//! which is the cost this is here to remove. Gradio's format has exactly the edit a
//! growing reply needs, and the Gradio bridge speaks it already, so one diff serves
//! both.
//!
//! The first partial of an answer can be a change too: the client names what it
//! shows ([`Shown`]: a length and a digest of it), and when the new value starts with
//! exactly that (a transcript that gained messages, a text that gained words) the
//! server sends only what follows ([`crate::holding`] makes them whole again on
//! the client). The digest is a 64-bit xxh3, not a secret: a
//! client that lies about it only garbles its own page.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ComponentId;

/// One edit: `[action, path, value]` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit(pub Action, pub Vec<Value>, pub Value);

/// What an [`Edit`] does at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The part at the path becomes the value.
    Replace,
    /// The string at the path gains the value (a string) at its end.
    Append,
    /// The value is inserted in the list at the path's last index.
    Add,
}

/// The edits that turn `old` into `new`: none if equal; an `append` where a string
/// only grew; per index, then an `add` per new item, where a list did not shrink; per
/// key where an object kept its keys; a `replace` of the part otherwise.
pub fn diff(old: &Value, new: &Value) -> Vec<Edit> {
    let mut edits = Vec::new();
    edit(old, new, &mut Vec::new(), &mut edits);
    edits
}

fn edit(old: &Value, new: &Value, path: &mut Vec<Value>, edits: &mut Vec<Edit>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::String(old), Value::String(new)) if new.starts_with(old.as_str()) => {
            let grown = Value::String(new[old.len()..].to_owned());
            edits.push(Edit(Action::Append, path.clone(), grown));
        }
        (Value::Array(old), Value::Array(new)) if new.len() >= old.len() => {
            for (index, (old, new)) in old.iter().zip(new).enumerate() {
                path.push(Value::from(index));
                edit(old, new, path, edits);
                path.pop();
            }
            for (index, item) in new.iter().enumerate().skip(old.len()) {
                path.push(Value::from(index));
                edits.push(Edit(Action::Add, path.clone(), item.clone()));
                path.pop();
            }
        }
        (Value::Object(old), Value::Object(new))
            if old.len() == new.len() && old.keys().all(|key| new.contains_key(key)) =>
        {
            for (key, old) in old {
                path.push(Value::from(key.as_str()));
                edit(old, &new[key], path, edits);
                path.pop();
            }
        }
        _ => edits.push(Edit(Action::Replace, path.clone(), new.clone())),
    }
}

/// Why edits could not be applied: they were made for another value than the one
/// held. Nothing is changed then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch;

/// Applies `edits` to `value`, all or nothing.
pub fn apply(value: &mut Value, edits: &[Edit]) -> Result<(), Mismatch> {
    let mut edited = value.clone();
    for Edit(action, path, with) in edits {
        apply_one(&mut edited, *action, path, with.clone())?;
    }
    *value = edited;
    Ok(())
}

fn apply_one(
    value: &mut Value,
    action: Action,
    path: &[Value],
    with: Value,
) -> Result<(), Mismatch> {
    let Some((last, parents)) = path.split_last() else {
        return set(value, action, with);
    };
    let mut target = value;
    for key in parents {
        target = child(target, key)?;
    }
    match (action, target, last) {
        (Action::Add, Value::Array(items), Value::Number(index)) => {
            let index = index.as_u64().ok_or(Mismatch)? as usize;
            if index > items.len() {
                return Err(Mismatch);
            }
            items.insert(index, with);
            Ok(())
        }
        (Action::Add, Value::Object(map), Value::String(key)) => {
            map.insert(key.clone(), with);
            Ok(())
        }
        (Action::Add, _, _) => Err(Mismatch),
        (action, target, last) => set(child(target, last)?, action, with),
    }
}

fn child<'a>(value: &'a mut Value, key: &Value) -> Result<&'a mut Value, Mismatch> {
    match (value, key) {
        (Value::Array(items), Value::Number(index)) => {
            let index = index.as_u64().ok_or(Mismatch)? as usize;
            items.get_mut(index).ok_or(Mismatch)
        }
        (Value::Object(map), Value::String(key)) => map.get_mut(key).ok_or(Mismatch),
        _ => Err(Mismatch),
    }
}

fn set(slot: &mut Value, action: Action, with: Value) -> Result<(), Mismatch> {
    match (action, slot, with) {
        (Action::Replace, slot, with) => {
            *slot = with;
            Ok(())
        }
        (Action::Append, Value::String(text), Value::String(more)) => {
            text.push_str(&more);
            Ok(())
        }
        _ => Err(Mismatch),
    }
}

/// What a client shows of one output, named in a streamed event's request
/// ([`crate::event::EventRequest::shown`]) so the answer's first partial can be a
/// change: the value's length (items of a list, bytes of a string; 0 for any other
/// value) and the digest of that much of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    /// The output component.
    pub component: ComponentId,
    /// Items of a list, bytes of a string, 0 otherwise.
    pub len: u32,
    /// A 64-bit xxh3 digest of that much of the value (items one by one, each as its
    /// JSON text, or the string's bytes), as 16 hex digits.
    pub digest: String,
}

impl Shown {
    /// What `value`, shown by `component`, is named by.
    pub fn of(component: ComponentId, value: &Value) -> Shown {
        let len = match value {
            Value::Array(items) => items.len(),
            Value::String(text) => text.len(),
            _ => 0,
        };
        Shown {
            component,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            digest: format!("{:016x}", digest(value, len).unwrap_or_default()),
        }
    }

    /// The part of `new` this client shows, if `new` begins with what it shows: a
    /// base to compute the first partial's edits against.
    pub fn base_in(&self, new: &Value) -> Option<Value> {
        let len = self.len as usize;
        let expected = u64::from_str_radix(&self.digest, 16).ok()?;
        if digest(new, len)? != expected {
            return None;
        }
        Some(match new {
            Value::Array(items) => Value::Array(items[..len].to_vec()),
            Value::String(text) => Value::String(text[..len].to_owned()),
            other => other.clone(),
        })
    }
}

/// The digest of the first `len` items of a list, the first `len` bytes of a string,
/// or of any other value whole (`len` 0); `None` when the value is shorter, or `len`
/// splits a character.
fn digest(value: &Value, len: usize) -> Option<u64> {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
    match value {
        Value::Array(items) => items.get(..len).map(|items| {
            items.iter().fold(0, |seed, item| {
                xxh3_64_with_seed(item.to_string().as_bytes(), seed)
            })
        }),
        Value::String(text) => text.get(..len).map(|text| xxh3_64(text.as_bytes())),
        other if len == 0 => Some(xxh3_64(other.to_string().as_bytes())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_growing_reply_is_sent_as_its_new_words() {
        let before =
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]);
        let after = json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there"}]);
        let edits = diff(&before, &after);
        assert_eq!(
            serde_json::to_value(&edits).unwrap(),
            json!([["append", [1, "content"], " there"]])
        );
        let mut applied = before;
        apply(&mut applied, &edits).unwrap();
        assert_eq!(applied, after);
    }

    #[test]
    fn a_new_message_is_added_to_the_list() {
        let before = json!([{"role": "user", "content": "hi"}]);
        let after =
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]);
        let edits = diff(&before, &after);
        assert_eq!(
            serde_json::to_value(&edits).unwrap(),
            json!([["add", [1], {"role": "assistant", "content": ""}]])
        );
    }

    #[test]
    fn whatever_changes_the_edits_rebuild_the_new_value() {
        let values = [
            json!(null),
            json!(""),
            json!("abc"),
            json!("abd"),
            json!("abcdef"),
            json!(1.5),
            json!([]),
            json!([1, 2]),
            json!([1, 2, 3]),
            json!([1]),
            json!([[1], "x"]),
            json!([[1, 2], "xy"]),
            json!({"a": 1, "b": "x"}),
            json!({"a": 2, "b": "xyz"}),
            json!({"a": 1}),
            json!({"a": 1, "c": "x"}),
        ];
        for old in &values {
            for new in &values {
                let edits = diff(old, new);
                let mut applied = old.clone();
                apply(&mut applied, &edits).unwrap();
                assert_eq!(&applied, new, "{old} -> {new}: {edits:?}");
                assert_eq!(edits.is_empty(), old == new);
            }
        }
    }

    #[test]
    fn edits_for_another_value_change_nothing() {
        let edits = diff(&json!(["a", "b"]), &json!(["a", "bc", "d"]));
        for held in [
            json!(["a"]),
            json!("text"),
            json!([1, 2]),
            json!({"0": "b"}),
        ] {
            let mut value = held.clone();
            assert_eq!(apply(&mut value, &edits), Err(Mismatch), "{held}");
            assert_eq!(value, held, "a failed apply changed {held}");
        }
    }

    /// The digest is the same wherever it is computed: the browser's wasm client
    /// checks the same transcript against the same figure
    /// (`frontend/tests/streaming.rs`), so what a page names, the server finds.
    #[test]
    fn the_digest_of_a_transcript_is_a_fixed_figure() {
        let transcript = r#"[{"content":"**hi** \u201cthere\u201d","role":"user"},{"content":"Hello, 1.5 é","role":"assistant"}]"#;
        let shown: Value = serde_json::from_str(transcript).unwrap();
        assert_eq!(Shown::of(ComponentId(0), &shown).digest, "bd5a440d276e15df");
    }

    #[test]
    fn a_shown_prefix_is_found_in_the_new_value_and_nothing_else_is() {
        let shown_list = json!([{"role": "user", "content": "hi"}]);
        let grown = json!([{"role": "user", "content": "hi"}, {"role": "user", "content": "more"}]);
        let shown = Shown::of(ComponentId(3), &shown_list);
        assert_eq!(shown.len, 1);
        assert_eq!(shown.base_in(&grown), Some(shown_list.clone()));
        // Another first message, a shorter list, another type: no base.
        assert_eq!(
            shown.base_in(&json!([{"role": "user", "content": "ho"}])),
            None
        );
        assert_eq!(shown.base_in(&json!([])), None);
        assert_eq!(shown.base_in(&json!("hi")), None);

        let text = Shown::of(ComponentId(1), &json!("héllo"));
        assert_eq!(text.base_in(&json!("héllo world")), Some(json!("héllo")));
        assert_eq!(text.base_in(&json!("hello world")), None);
        // A length that splits a character is no base, and no panic.
        let split = Shown {
            len: 2,
            ..text.clone()
        };
        assert_eq!(split.base_in(&json!("héllo")), None);

        let number = Shown::of(ComponentId(2), &json!(4));
        assert_eq!(number.base_in(&json!(4)), Some(json!(4)));
        assert_eq!(number.base_in(&json!(5)), None);
        let garbled = Shown {
            digest: "not hex".into(),
            ..number
        };
        assert_eq!(garbled.base_in(&json!(4)), None);
    }
}
