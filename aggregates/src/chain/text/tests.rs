use serde_json::{Map, Value, json};

use super::*;
use crate::chain::{GENESIS_HASH, StoredEvent, envelope_bytes, link};

/// The outcome of encoding, with errors reduced to their kind.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Bytes(String),
    InvalidJson,
    Float,
}

/// Encodes through a `Value` tree, as `envelope_bytes` encodes a parsed event.
fn through_tree(text: &str) -> Outcome {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Outcome::InvalidJson;
    };
    let mut out = Vec::new();
    match write_canonical(&value, &mut out) {
        Ok(()) => Outcome::Bytes(String::from_utf8(out).expect("canonical JSON is UTF-8")),
        Err(_) => Outcome::Float,
    }
}

fn through_text(text: &str) -> Outcome {
    let mut out = b"prefix".to_vec();
    match write_value(text, &mut out) {
        Ok(()) => {
            let written = out.split_off(b"prefix".len());
            assert_eq!(out, b"prefix", "bytes before the value were changed");
            Outcome::Bytes(String::from_utf8(written).expect("canonical JSON is UTF-8"))
        }
        Err(EnvelopeError::Json(_)) => Outcome::InvalidJson,
        Err(EnvelopeError::NotCanonical(_)) => Outcome::Float,
    }
}

/// Returns whether the copier takes `text` without parsing it into a tree.
fn copies(text: &str) -> bool {
    let mut out = Vec::new();
    let mut copier = Copier::new(text, &mut out);
    copier.value(0).is_ok() && copier.at_end()
}

const CANONICAL: &[&str] = &[
    r#"{}"#,
    r#"[]"#,
    r#"0"#,
    r#"-1"#,
    r#"123456789012345678"#,
    r#"-123456789012345678"#,
    r#"true"#,
    r#"false"#,
    r#"null"#,
    r#""""#,
    r#""plain""#,
    r#""张伟 / \"quoted\" \\ back\b\f\n\r\t \u0000 \u001f \u0007 ""#,
    r#"{"a":{"Z":null,"z":true},"aa":[2,1],"b":1,"中":"文"}"#,
    r#"{"EvidenceChecked":{"note":"张伟","officer":"hh","result":"confirmed"}}"#,
    r#"[[],[{}],[[[-5]]],"x",{"k":[true,false,null]}]"#,
];

const NOT_COPIED: &[&str] = &[
    // These need reordering, re-escaping or number handling, which the copier leaves to the tree.
    r#"{"b": 1, "a": 2}"#,
    r#"{"a":1,"a":2}"#,
    r#"{"a\n":1,"a":2}"#,
    r#"{"\u0041":1}"#,
    r#""\/""#,
    r#""\u0041""#,
    r#""\u00e9""#,
    r#""\u001F""#,
    r#""\u000a""#,
    r#""\u0008""#,
    r#""\ud83d\ude00""#,
    r#"-0"#,
    r#"007"#,
    r#"1.0"#,
    r#"1e3"#,
    r#"-2E-1"#,
    r#"1234567890123456789"#,
    r#"18446744073709551615"#,
    r#"18446744073709551616"#,
    r#"-9223372036854775808"#,
    r#"-9223372036854775809"#,
    r#"{"a":1.5}"#,
    // Not JSON at all.
    r#""#,
    r#"{"#,
    r#"[1,]"#,
    r#"{"a":1,}"#,
    r#"{"a" 1}"#,
    r#"tru"#,
    r#"nul"#,
    r#"1 2"#,
    r#""open"#,
    r#""bad \x escape""#,
    "\"raw \u{1} control\"",
    r#"{1:2}"#,
    r#"-"#,
    r#"+1"#,
];

#[test]
fn canonical_text_is_copied_unchanged() {
    for text in CANONICAL {
        assert!(copies(text), "not copied: {text}");
        assert_eq!(
            through_text(text),
            Outcome::Bytes(text.to_string()),
            "{text}"
        );
        assert_eq!(through_text(text), through_tree(text), "{text}");
    }
}

#[test]
fn other_text_goes_through_the_tree() {
    for text in NOT_COPIED {
        assert!(!copies(text), "copied: {text}");
        assert_eq!(through_text(text), through_tree(text), "{text}");
    }
}

#[test]
fn whitespace_between_tokens_is_dropped() {
    let text = " {\n\t\"a\" : [ 1 , \"x y\" ] ,\r\n \"b\" : { } } ";
    assert!(copies(text));
    assert_eq!(
        through_text(text),
        Outcome::Bytes(r#"{"a":[1,"x y"],"b":{}}"#.to_string())
    );
    assert_eq!(through_text(text), through_tree(text));
}

#[test]
fn jsonb_text_matches_the_tree() {
    // jsonb's output: a space after each colon and comma, shorter keys first.
    let text = r#"{"b": 1, "aa": {"z": [1, 2], "y": "文"}, "ccc": null}"#;
    assert_eq!(through_text(text), through_tree(text));
    assert_eq!(
        through_text(text),
        Outcome::Bytes(r#"{"aa":{"y":"文","z":[1,2]},"b":1,"ccc":null}"#.to_string())
    );
}

#[test]
fn deep_nesting_matches_the_tree() {
    for depth in [
        MAX_DEPTH as usize - 1,
        MAX_DEPTH as usize,
        127,
        128,
        129,
        200,
    ] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(through_text(&text), through_tree(&text), "depth {depth}");
        let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert_eq!(through_text(&text), through_tree(&text), "depth {depth}");
    }
}

/// A small deterministic generator (xorshift64), so that failures repeat.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "b",
            "Z",
            "hash",
            "prev_hash",
            "中",
            "文",
            "é",
            "\u{7f}",
            "\u{1f600}",
            "\"",
            "\\",
            "/",
            "\n",
            "\t",
            "\u{0}",
            "\u{1f}",
            "\u{8}",
            "\u{c}",
            "\r",
            " ",
            "0",
        ];
        let length = self.below(5);
        (0..length)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }

    fn value(&mut self, depth: u32) -> Value {
        let pick = if depth > 3 {
            self.below(6)
        } else {
            self.below(8)
        };
        match pick {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => json!(self.next() as i64 >> self.below(64)),
            3 => json!(self.next() >> self.below(64)),
            4 => Value::String(self.text()),
            5 if self.below(8) == 0 => json!((self.below(1000) as f64) / 8.0),
            5 => json!(self.below(10)),
            6 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.below(5) {
                    map.insert(self.text(), self.value(depth + 1));
                }
                Value::Object(map)
            }
        }
    }
}

#[test]
fn random_values_match_the_tree() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    for _ in 0..5000 {
        let value = random.value(0);
        let compact = serde_json::to_string(&value).expect("values serialise");
        let pretty = serde_json::to_string_pretty(&value).expect("values serialise");
        assert_eq!(through_text(&compact), through_tree(&compact), "{compact}");
        assert_eq!(through_text(&pretty), through_tree(&pretty), "{pretty}");
    }
}

fn stored_event(metadata: Value, payload: Value) -> StoredEvent {
    StoredEvent {
        aggregate_type: "application".into(),
        aggregate_id: "a-\"1\"".into(),
        sequence: 7,
        event_type: "EvidenceChecked".into(),
        event_version: "1".into(),
        payload,
        metadata,
    }
}

fn envelope_of(
    event: &StoredEvent,
    metadata: &str,
    payload: &str,
) -> (Vec<u8>, StoredLinks<'static>) {
    let text = EventText {
        aggregate_type: &event.aggregate_type,
        aggregate_id: &event.aggregate_id,
        sequence: event.sequence,
        event_type: &event.event_type,
        event_version: &event.event_version,
        payload,
        metadata,
    };
    let mut out = b"left over".to_vec();
    let links = write_envelope(&text, &mut out).expect("valid JSON without floats");
    let owned = |text: Option<Cow<str>>| text.map(|text| Cow::Owned(text.into_owned()));
    let links = StoredLinks {
        hash: owned(links.hash),
        prev_hash: owned(links.prev_hash),
    };
    (out, links)
}

#[test]
fn envelope_matches_envelope_bytes() {
    let mut event = stored_event(
        json!({"actor": "hh", "recorded_at": "2026-12-04T08:00:00.000000Z", "z": [1, {"b": 2, "a": 1}]}),
        json!({"EvidenceChecked": {"reference": "R-1", "note": "张伟\n"}}),
    );
    let hash = link(&mut event, GENESIS_HASH).expect("integers only");
    let payload = event.payload.to_string();
    for metadata in [
        event.metadata.to_string(),
        serde_json::to_string_pretty(&event.metadata).expect("values serialise"),
    ] {
        let (envelope, links) = envelope_of(&event, &metadata, &payload);
        let expected = envelope_bytes(&event, event.sequence, GENESIS_HASH).expect("integers only");
        assert_eq!(envelope, expected, "{metadata}");
        assert_eq!(links.hash.as_deref(), Some(hash.as_str()));
        assert_eq!(links.prev_hash.as_deref(), Some(GENESIS_HASH));
    }
}

#[test]
fn envelope_without_prev_hash_is_incomplete() {
    let event = stored_event(json!({"actor": "hh", "hash": "ab"}), json!({}));
    let (_, links) = envelope_of(&event, &event.metadata.to_string(), "{}");
    assert_eq!(links.hash.as_deref(), Some("ab"));
    assert_eq!(links.prev_hash, None);
}

#[test]
fn envelope_links_match_the_tree() {
    let cases = [
        r#"{"hash":1,"prev_hash":"p"}"#,
        r#"{"hash":"h","hash":"g","prev_hash":"p"}"#,
        r#"{"hash":"h\n","prev_hash":"p"}"#,
        r#"{"hash":"h","prev_hash":null}"#,
        r#"{"prev_hash":"p","hash":"h"}"#,
        r#"{"actor":{"hash":"nested"},"hash":"h","prev_hash":"p"}"#,
        r#"["hash","h"]"#,
        r#""hash""#,
        r#"{}"#,
    ];
    for metadata in cases {
        let tree: Value = serde_json::from_str(metadata).expect("test metadata is JSON");
        let event = stored_event(tree.clone(), json!(null));
        let (envelope, links) = envelope_of(&event, metadata, "null");
        let text = |key: &str| tree.get(key).and_then(Value::as_str);
        assert_eq!(links.hash.as_deref(), text(HASH_KEY), "{metadata}");
        assert_eq!(
            links.prev_hash.as_deref(),
            text(PREV_HASH_KEY),
            "{metadata}"
        );
        if let Some(prev_hash) = text(PREV_HASH_KEY) {
            let expected = envelope_bytes(&event, event.sequence, prev_hash).expect("no floats");
            assert_eq!(envelope, expected, "{metadata}");
        }
    }
}

#[test]
fn envelope_rejects_floats_and_invalid_json() {
    let event = stored_event(json!({}), json!(null));
    let text = |payload, metadata| EventText {
        aggregate_type: &event.aggregate_type,
        aggregate_id: &event.aggregate_id,
        sequence: 1,
        event_type: &event.event_type,
        event_version: &event.event_version,
        payload,
        metadata,
    };
    let mut out = Vec::new();
    let result = write_envelope(&text("1.5", r#"{"prev_hash":"p"}"#), &mut out);
    assert!(matches!(result, Err(EnvelopeError::NotCanonical(_))));
    let result = write_envelope(&text("{}", r#"{"a":1e2,"prev_hash":"p"}"#), &mut out);
    assert!(matches!(result, Err(EnvelopeError::NotCanonical(_))));
    let result = write_envelope(&text("{", r#"{"prev_hash":"p"}"#), &mut out);
    assert!(matches!(result, Err(EnvelopeError::Json(_))));
    let result = write_envelope(&text("{}", r#"{"prev_hash":"p""#), &mut out);
    assert!(matches!(result, Err(EnvelopeError::Json(_))));
}
