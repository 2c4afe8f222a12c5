use serde_json::json;

use super::*;

fn canonical(value: Value) -> String {
    let mut out = Vec::new();
    write_canonical(&value, &mut out).expect("test values are canonical");
    String::from_utf8(out).expect("canonical JSON is UTF-8")
}

fn event(sequence: u64, payload: Value) -> StoredEvent {
    StoredEvent {
        aggregate_type: "application".into(),
        aggregate_id: "a-1".into(),
        sequence,
        event_type: "EvidenceChecked".into(),
        event_version: "1".into(),
        payload,
        metadata: json!({"actor": "officer-1", "recorded_at": "2026-11-02T01:02:03.000004Z"}),
    }
}

fn chain(length: u64) -> Vec<StoredEvent> {
    let mut previous = GENESIS_HASH.to_string();
    (1..=length)
        .map(|sequence| {
            let mut stored = event(sequence, json!({"step": sequence}));
            previous = link(&mut stored, &previous).expect("integers only");
            stored
        })
        .collect()
}

#[test]
fn canonical_sorts_keys_by_code_point() {
    let text = canonical(json!({"b": 1, "a": {"z": true, "Z": null}, "中": "文", "aa": [2, 1]}));
    assert_eq!(
        text,
        r#"{"a":{"Z":null,"z":true},"aa":[2,1],"b":1,"中":"文"}"#
    );
}

#[test]
fn canonical_escapes_only_quotes_backslash_and_controls() {
    let text = canonical(json!("a\"b\\c\nd\u{1}e/f\u{7f}é"));
    assert_eq!(text, "\"a\\\"b\\\\c\\nd\\u0001e/f\u{7f}é\"");
}

#[test]
fn canonical_rejects_floats() {
    let mut out = Vec::new();
    assert_eq!(
        write_canonical(&json!({"x": 1.5}), &mut out),
        Err(NotCanonical("1.5".into()))
    );
}

#[test]
fn hash_matches_known_vector() {
    // The same vector is checked in docs/hash-chain.md, so that other programs can test
    // their encoders against it.
    let stored = event(1, json!({"step": 1}));
    let hash = event_hash(&stored, 1, GENESIS_HASH).expect("integers only");
    let mut bytes = Vec::new();
    let envelope = json!({
        "aggregate_id": "a-1", "aggregate_type": "application", "event_type": "EvidenceChecked",
        "event_version": "1", "metadata": {"actor": "officer-1", "recorded_at": "2026-11-02T01:02:03.000004Z"},
        "payload": {"step": 1}, "prev_hash": GENESIS_HASH, "sequence": 1
    });
    write_canonical(&envelope, &mut bytes).expect("integers only");
    assert_eq!(hash, hex_lower(&Sha256::digest(&bytes)));
    assert_eq!(hash.len(), 64);
}

#[test]
fn intact_chain_verifies() {
    assert_eq!(verify_chain(&chain(4)), None);
}

#[test]
fn changed_payload_is_content_changed() {
    let mut events = chain(4);
    events[1].payload = json!({"step": 99});
    let found = verify_chain(&events).expect("damage is found");
    assert_eq!(found.damage, Damage::ContentChanged);
    assert_eq!(found.sequence, 2);
}

#[test]
fn deleted_event_is_event_missing() {
    let mut events = chain(4);
    events.remove(1);
    let found = verify_chain(&events).expect("damage is found");
    assert_eq!(found.damage, Damage::EventMissing);
    assert_eq!(found.sequence, 2);
}

#[test]
fn swapped_sequences_are_order_changed() {
    let mut events = chain(4);
    events[1].sequence = 3;
    events[2].sequence = 2;
    events.swap(1, 2);
    let found = verify_chain(&events).expect("damage is found");
    assert_eq!(found.damage, Damage::OrderChanged);
    assert_eq!(found.sequence, 2);
}

#[test]
fn rehashed_event_breaks_next_link() {
    let mut events = chain(4);
    events[1].payload = json!({"step": 99});
    let previous = metadata_text(&events[0], HASH_KEY)
        .expect("linked")
        .to_string();
    link(&mut events[1], &previous).expect("integers only");
    let found = verify_chain(&events).expect("damage is found");
    assert_eq!(found.damage, Damage::LinkBroken);
    assert_eq!(found.sequence, 3);
}

#[test]
fn missing_hash_is_content_changed() {
    let mut events = chain(2);
    events[0].metadata = json!({});
    let found = verify_chain(&events).expect("damage is found");
    assert_eq!(found.damage, Damage::ContentChanged);
    assert_eq!(found.sequence, 1);
}
