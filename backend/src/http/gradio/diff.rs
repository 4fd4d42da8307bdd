//! Gradio's streaming diff: what a `process_generating` message after the first
//! carries per output, so a client holding the previous value rebuilds the new one
//! (`gradio_client.utils.apply_diff`; `@gradio/client` applies the same). A list of
//! `[action, path, value]` edits, `path` a list of keys and indices from the value's
//! root: `replace`, `append` (to a string) and `add` (an item at a list's index), as
//! Gradio's own server computes them. A reply that grows costs its new words, not its
//! whole text again. (`append` to a list is not used: the JavaScript client would
//! join the two lists as text.)

use serde_json::{Value, json};

/// The edits that turn `old` into `new`: none if equal; an `append` where a string
/// only grew; per index, then an `add` per new item, where a list did not shrink;
/// per key where an object kept its keys; a `replace` of the part otherwise.
pub(crate) fn diff(old: &Value, new: &Value) -> Vec<Value> {
    let mut edits = Vec::new();
    edit(old, new, &mut Vec::new(), &mut edits);
    edits
}

fn edit(old: &Value, new: &Value, path: &mut Vec<Value>, edits: &mut Vec<Value>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::String(old), Value::String(new)) if new.starts_with(old.as_str()) => {
            edits.push(json!(["append", path, &new[old.len()..]]));
        }
        (Value::Array(old), Value::Array(new)) if new.len() >= old.len() => {
            for (index, (old, new)) in old.iter().zip(new).enumerate() {
                path.push(json!(index));
                edit(old, new, path, edits);
                path.pop();
            }
            for (index, item) in new.iter().enumerate().skip(old.len()) {
                path.push(json!(index));
                edits.push(json!(["add", path, item]));
                path.pop();
            }
        }
        (Value::Object(old), Value::Object(new))
            if old.len() == new.len() && old.keys().all(|key| new.contains_key(key)) =>
        {
            for (key, old) in old {
                path.push(json!(key));
                edit(old, &new[key], path, edits);
                path.pop();
            }
        }
        _ => edits.push(json!(["replace", path, new])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gradio's clients' `apply_diff` (Python's and JavaScript's agree on the edits
    /// used here).
    fn apply(mut value: Value, edits: &[Value]) -> Value {
        for edit in edits {
            let (action, path, with) = (
                &edit[0],
                edit[1].as_array().cloned().unwrap_or_default(),
                edit[2].clone(),
            );
            let Some((last, parents)) = path.split_last() else {
                value = match action.as_str() {
                    Some("replace") => with,
                    Some("append") => concat(&value, &with),
                    _ => panic!("unknown action {action}"),
                };
                continue;
            };
            let mut target = &mut value;
            for key in parents {
                target = at(target, key);
            }
            if action == "add" {
                match (target, last) {
                    (Value::Array(items), Value::Number(index)) => {
                        items.insert(index.as_u64().unwrap_or_default() as usize, with);
                    }
                    (Value::Object(map), Value::String(key)) => {
                        map.insert(key.clone(), with);
                    }
                    (target, _) => panic!("cannot add to {target}"),
                }
                continue;
            }
            let slot = at(target, last);
            *slot = match action.as_str() {
                Some("replace") => with,
                Some("append") => concat(slot, &with),
                _ => panic!("unknown action {action}"),
            };
        }
        value
    }

    fn at<'a>(value: &'a mut Value, key: &Value) -> &'a mut Value {
        match key {
            Value::Number(index) => &mut value[index.as_u64().unwrap_or_default() as usize],
            Value::String(key) => &mut value[key.as_str()],
            other => panic!("not a key: {other}"),
        }
    }

    /// `append` as the JavaScript client does it (`a + b`): for strings only.
    fn concat(value: &Value, with: &Value) -> Value {
        match (value, with) {
            (Value::String(a), Value::String(b)) => json!(format!("{a}{b}")),
            _ => panic!("cannot append {with} to {value}"),
        }
    }

    #[test]
    fn a_growing_reply_is_sent_as_its_new_words() {
        let before =
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]);
        let after = json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there"}]);
        let edits = diff(&before, &after);
        assert_eq!(edits, [json!(["append", [1, "content"], " there"])]);
        assert_eq!(apply(before, &edits), after);
    }

    #[test]
    fn a_new_message_is_appended_to_the_list() {
        let before = json!([{"role": "user", "content": "hi"}]);
        let after =
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]);
        let edits = diff(&before, &after);
        assert_eq!(
            edits,
            [json!(["add", [1], {"role": "assistant", "content": ""}])]
        );
        assert_eq!(apply(before, &edits), after);
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
                assert_eq!(
                    &apply(old.clone(), &edits),
                    new,
                    "{old} -> {new}: {edits:?}"
                );
                assert_eq!(edits.is_empty(), old == new);
            }
        }
    }
}
