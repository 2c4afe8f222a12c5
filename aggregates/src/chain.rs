//! The per-aggregate hash chain: canonical encoding, event hashes and chain verification.
//!
//! Each event's hash is SHA-256 over the canonical JSON of its envelope, and the envelope holds
//! the hash of the previous event of the same aggregate (`prev_hash`). `docs/hash-chain.md`
//! states the encoding for programs that recompute hashes independently.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub mod text;

/// Metadata key holding an event's own hash, lowercase hex.
pub const HASH_KEY: &str = "hash";
/// Metadata key holding the previous event's hash, lowercase hex.
pub const PREV_HASH_KEY: &str = "prev_hash";
/// The `prev_hash` of an aggregate's first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event as stored: the columns the hash covers.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    /// Metadata including `hash` and `prev_hash`.
    pub metadata: Value,
}

/// A value the canonical encoding cannot represent exactly.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("canonical encoding allows integers only; found {0}")]
pub struct NotCanonical(pub String);

/// Appends the canonical JSON of `value` to `out`: object keys sorted by Unicode code point,
/// no whitespace, integers only, and strings escaping only `"`, `\` and control characters.
///
/// # Errors
/// Fails on a floating-point number, which has no single textual form across programs.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), NotCanonical> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) if number.is_i64() || number.is_u64() => {
            out.extend_from_slice(number.to_string().as_bytes())
        }
        Value::Number(number) => return Err(NotCanonical(number.to_string())),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), NotCanonical> {
    write_object_without(map, &[], out)
}

/// Writes `map` as a canonical object, leaving out the keys in `skip`.
fn write_object_without(
    map: &Map<String, Value>,
    skip: &[&str],
    out: &mut Vec<u8>,
) -> Result<(), NotCanonical> {
    // Byte order of UTF-8 equals code-point order, so sorting the strings sorts by code point.
    // serde_json's default map is ordered that way already, which makes the sort a check.
    let mut keys: Vec<&String> = map
        .keys()
        .filter(|key| !skip.contains(&key.as_str()))
        .collect();
    if !keys.is_sorted() {
        keys.sort_unstable();
    }
    out.push(b'{');
    for (index, key) in keys.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_canonical(&map[key], out)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // Most strings need no escape: copy them whole.
    if !text
        .bytes()
        .any(|byte| byte == b'"' || byte == b'\\' || byte < 0x20)
    {
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Computes an event's hash from its stored columns, the metadata without `hash` and
/// `prev_hash`, and the given previous hash.
///
/// # Errors
/// Fails when the payload or metadata holds a floating-point number.
pub fn event_hash(
    event: &StoredEvent,
    sequence: u64,
    prev_hash: &str,
) -> Result<String, NotCanonical> {
    let bytes = envelope_bytes(event, sequence, prev_hash)?;
    Ok(hex_lower(&Sha256::digest(&bytes)))
}

/// Encodes an event's envelope (its stored columns, the metadata without `hash` and
/// `prev_hash`, and the given previous hash) as canonical JSON: the bytes its hash covers.
///
/// # Errors
/// Fails when the payload or metadata holds a floating-point number.
pub fn envelope_bytes(
    event: &StoredEvent,
    sequence: u64,
    prev_hash: &str,
) -> Result<Vec<u8>, NotCanonical> {
    // The envelope's keys in code-point order, written directly rather than through a
    // copied JSON tree: verification encodes every event, so copies would dominate its time.
    let mut bytes = Vec::with_capacity(512);
    bytes.extend_from_slice(b"{\"aggregate_id\":");
    write_string(&event.aggregate_id, &mut bytes);
    bytes.extend_from_slice(b",\"aggregate_type\":");
    write_string(&event.aggregate_type, &mut bytes);
    bytes.extend_from_slice(b",\"event_type\":");
    write_string(&event.event_type, &mut bytes);
    bytes.extend_from_slice(b",\"event_version\":");
    write_string(&event.event_version, &mut bytes);
    bytes.extend_from_slice(b",\"metadata\":");
    match &event.metadata {
        Value::Object(map) => write_object_without(map, &[HASH_KEY, PREV_HASH_KEY], &mut bytes)?,
        _ => bytes.extend_from_slice(b"{}"),
    }
    bytes.extend_from_slice(b",\"payload\":");
    write_canonical(&event.payload, &mut bytes)?;
    bytes.extend_from_slice(b",\"prev_hash\":");
    write_string(prev_hash, &mut bytes);
    bytes.extend_from_slice(b",\"sequence\":");
    bytes.extend_from_slice(sequence.to_string().as_bytes());
    bytes.push(b'}');
    Ok(bytes)
}

/// Sets `prev_hash` and `hash` in the event's metadata, linking it after `prev_hash`, and
/// returns the new hash.
///
/// # Errors
/// Fails when the payload or metadata holds a floating-point number.
pub fn link(event: &mut StoredEvent, prev_hash: &str) -> Result<String, NotCanonical> {
    let hash = event_hash(event, event.sequence, prev_hash)?;
    if !event.metadata.is_object() {
        event.metadata = Value::Object(Map::new());
    }
    if let Value::Object(metadata) = &mut event.metadata {
        metadata.insert(
            PREV_HASH_KEY.to_string(),
            Value::String(prev_hash.to_string()),
        );
        metadata.insert(HASH_KEY.to_string(), Value::String(hash.clone()));
    }
    Ok(hash)
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

/// The kind of damage verification found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// An event's content no longer matches its hash.
    ContentChanged,
    /// An event's `prev_hash` does not match the previous event's hash.
    LinkBroken,
    /// A sequence number is missing from the aggregate.
    EventMissing,
    /// An event is stored at a position other than the one it was hashed at.
    OrderChanged,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Damage::ContentChanged => "content changed",
            Damage::LinkBroken => "link broken",
            Damage::EventMissing => "event missing",
            Damage::OrderChanged => "order changed",
        };
        f.write_str(text)
    }
}

/// The first damage found in an aggregate's chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The first sequence number at which the chain does not verify.
    pub sequence: u64,
    pub damage: Damage,
    pub detail: String,
}

impl ChainBreak {
    /// Returns the reason no command may append to the damaged history, for an error message.
    pub fn refusal(&self) -> String {
        format!(
            "the history of this record fails verification ({} at sequence {}); it accepts no command until an inspector has examined it",
            self.damage, self.sequence
        )
    }
}

/// Verifies one aggregate's events, given in stored sequence order, and returns the first
/// damage found.
pub fn verify_chain(events: &[StoredEvent]) -> Option<ChainBreak> {
    let mut previous_hash = GENESIS_HASH.to_string();
    for (index, event) in events.iter().enumerate() {
        let expected = index as u64 + 1;
        let found = |sequence: u64, damage: Damage, detail: String| ChainBreak {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence,
            damage,
            detail,
        };
        if event.sequence != expected {
            let detail = format!(
                "sequence {expected} is absent; the next stored event is {}",
                event.sequence
            );
            return Some(found(expected, Damage::EventMissing, detail));
        }
        let stored_hash = metadata_text(event, HASH_KEY);
        let stored_prev = metadata_text(event, PREV_HASH_KEY);
        let (Some(stored_hash), Some(stored_prev)) = (stored_hash, stored_prev) else {
            let detail = "metadata lacks hash or prev_hash".to_string();
            return Some(found(expected, Damage::ContentChanged, detail));
        };
        let computed = event_hash(event, event.sequence, stored_prev).ok();
        if computed.as_deref() != Some(stored_hash) {
            let hashed_at = (1..=events.len() as u64 + 1)
                .filter(|sequence| *sequence != event.sequence)
                .find(|sequence| {
                    event_hash(event, *sequence, stored_prev).ok().as_deref() == Some(stored_hash)
                });
            return Some(match hashed_at {
                Some(original) => found(
                    expected,
                    Damage::OrderChanged,
                    format!(
                        "the event stored as sequence {expected} was recorded as sequence {original}"
                    ),
                ),
                None => found(
                    expected,
                    Damage::ContentChanged,
                    "recomputed hash differs from the stored hash".to_string(),
                ),
            });
        }
        if stored_prev != previous_hash {
            let moved = events
                .iter()
                .any(|other| metadata_text(other, HASH_KEY) == Some(stored_prev));
            let (damage, detail) = if moved {
                (
                    Damage::OrderChanged,
                    format!(
                        "prev_hash points to an event other than sequence {}",
                        expected - 1
                    ),
                )
            } else {
                (
                    Damage::LinkBroken,
                    format!(
                        "prev_hash does not match the hash of sequence {}",
                        expected - 1
                    ),
                )
            };
            return Some(found(expected, damage, detail));
        }
        previous_hash = stored_hash.to_string();
    }
    None
}

fn metadata_text<'a>(event: &'a StoredEvent, key: &str) -> Option<&'a str> {
    event.metadata.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests;
