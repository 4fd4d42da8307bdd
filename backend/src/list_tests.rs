#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde::Serialize;

use super::List;
use crate::value::{DynValue, encoded_len_of};

fn json_len<T: Serialize>(value: &T) -> usize {
    serde_json::to_string(value).unwrap().len()
}

#[derive(Debug, Clone)]
enum Op {
    PushBack(String),
    PushFront(String),
    PopBack,
    PopFront,
    Insert(usize, String),
    Remove(usize),
    Set(usize, String),
    Truncate(usize),
    RetainShort,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    // Quotes and control characters: their escapes lengthen the encoding.
    let text = "[a-z\"\\\\\n\u{1}é]{0,6}";
    prop_oneof![
        8 => text.prop_map(Op::PushBack),
        2 => text.prop_map(Op::PushFront),
        2 => Just(Op::PopBack),
        1 => Just(Op::PopFront),
        2 => (any::<usize>(), text).prop_map(|(i, s)| Op::Insert(i, s)),
        2 => any::<usize>().prop_map(Op::Remove),
        2 => (any::<usize>(), text).prop_map(|(i, s)| Op::Set(i, s)),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => Just(Op::RetainShort),
        1 => Just(Op::Clear),
    ]
}

/// Applies `op` to the list and to a `Vec` model of it.
fn apply(list: &mut List<String>, model: &mut Vec<String>, op: Op) {
    let len = model.len();
    match op {
        Op::PushBack(s) => {
            list.push_back(s.clone());
            model.push(s);
        }
        Op::PushFront(s) => {
            list.push_front(s.clone());
            model.insert(0, s);
        }
        Op::PopBack => assert_eq!(list.pop_back(), model.pop()),
        Op::PopFront => assert_eq!(list.pop_front(), (len > 0).then(|| model.remove(0))),
        Op::Insert(i, s) => {
            let i = i % (len + 1);
            list.insert(i, s.clone());
            model.insert(i, s);
        }
        Op::Remove(i) if len > 0 => assert_eq!(list.remove(i % len), model.remove(i % len)),
        Op::Set(i, s) if len > 0 => {
            let old = std::mem::replace(&mut model[i % len], s.clone());
            assert_eq!(list.set(i % len, s), old);
        }
        Op::Remove(_) | Op::Set(..) => {}
        Op::Truncate(n) => {
            let n = n % (len + 2);
            list.truncate(n);
            model.truncate(n);
        }
        Op::RetainShort => {
            list.retain(|s| s.len() < 3);
            model.retain(|s| s.len() < 3);
        }
        Op::Clear => {
            list.clear();
            model.clear();
        }
    }
}

proptest! {
    /// Whatever is done to a list, the size it keeps is the length of its encoding,
    /// its encoding is the `Vec`'s, and a copy changed in any way compares unequal.
    #[test]
    fn the_kept_size_is_the_encodings_length(ops in proptest::collection::vec(op(), 0..300)) {
        let mut list = List::new();
        let mut model = Vec::new();
        for op in ops {
            let before = list.clone();
            apply(&mut list, &mut model, op);
            prop_assert_eq!(list.encoded_len(), json_len(&model));
            prop_assert_eq!(list.eq_dyn(&before), model == before.iter().cloned().collect::<Vec<_>>());
        }
        prop_assert_eq!(serde_json::to_string(&list).unwrap(), serde_json::to_string(&model).unwrap());
        prop_assert_eq!(DynValue::encoded_len(&list), json_len(&model));
    }
}

#[test]
fn a_list_inside_a_value_is_measured_by_its_kept_size_and_encoded_whole() {
    #[derive(Serialize)]
    struct Chat {
        title: String,
        messages: List<String>,
        drafts: Vec<List<u32>>,
    }
    let chat = Chat {
        title: "hi".into(),
        messages: (0..1000).map(|i| format!("message {i}")).collect(),
        drafts: vec![List::new(), List::from(vec![1, 2, 3])],
    };
    let encoded = serde_json::to_string(&chat).unwrap();
    assert_eq!(encoded_len_of(&chat), encoded.len());
    assert!(
        encoded.contains("\"message 999\""),
        "a real encoding is whole"
    );
    assert!(encoded.contains("[1,2,3]"));
}

#[test]
fn a_serialize_that_panics_while_measured_leaves_later_encodings_whole() {
    struct Panics;
    impl Serialize for Panics {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            panic!("cannot serialise");
        }
    }
    assert!(std::panic::catch_unwind(|| encoded_len_of(&(List::from(vec![1]), Panics))).is_err());
    let list = List::from(vec![1, 2]);
    assert_eq!(serde_json::to_string(&list).unwrap(), "[1,2]");
}

#[test]
fn lists_sharing_chunks_compare_by_content() {
    let long: List<u32> = (0..1000).collect();
    let mut changed = long.clone();
    changed.set(700, 7);
    assert!(long != changed, "one item differs in one chunk");
    changed.set(700, 700);
    assert!(long == changed, "set back: equal again");
    let rebuilt: List<u32> = (0..1000).collect();
    assert!(long == rebuilt, "equal content, nothing shared");
    let mut pushed = long.clone();
    pushed.push_back(1000);
    assert!(long != pushed);
    // Same length and size, different items: 10 and 01 encode to the same length.
    let mut swapped = long.clone();
    swapped.set(10, 11);
    swapped.set(11, 10);
    assert_eq!(swapped.encoded_len(), long.encoded_len());
    assert!(long != swapped);
}

#[test]
fn a_list_reads_what_a_vec_wrote() {
    let stored = serde_json::to_string(&vec!["a", "b\"c"]).unwrap();
    let list: List<String> = serde_json::from_str(&stored).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.encoded_len(), stored.len());
    assert_eq!(list.back().map(String::as_str), Some("b\"c"));
}
