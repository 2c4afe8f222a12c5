//! The envelope of an event whose payload and metadata are given as JSON text, as the
//! database returns them.
//!
//! JSON that is already in canonical form (compact, keys sorted, integers that fit 64 bits,
//! strings escaped as the canonical encoding escapes them) is checked and copied byte for byte,
//! without building a [`Value`] tree. Any other text is parsed into a [`Value`] and encoded with
//! [`write_canonical`], so both routes produce the same bytes as [`envelope_bytes`] would for
//! the parsed event.
//!
//! NOTE: jsonb writes the keys of an object shorter first, so text from a `jsonb` column takes
//! the slower route through the tree for most objects.

use std::borrow::Cow;
use std::io::Write;

use serde_json::Value;

#[cfg(doc)]
use super::envelope_bytes;
use super::{HASH_KEY, NotCanonical, PREV_HASH_KEY, write_canonical, write_object_without};

/// An event's hashed columns, with payload and metadata as JSON text.
#[derive(Clone, Copy, Debug)]
pub struct EventText<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: u64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a str,
    /// Metadata including `hash` and `prev_hash`.
    pub metadata: &'a str,
}

/// The `hash` and `prev_hash` stored in an event's metadata; `None` when a key is absent or
/// its value is not a string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredLinks<'a> {
    pub hash: Option<Cow<'a, str>>,
    pub prev_hash: Option<Cow<'a, str>>,
}

/// An envelope that cannot be built from the event's text.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The payload or metadata is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The payload or metadata contains a floating-point number.
    #[error(transparent)]
    NotCanonical(#[from] NotCanonical),
}

/// Writes the canonical envelope of `event` into `out` (cleared first), with the event's own
/// stored `prev_hash`, and returns the stored `hash` and `prev_hash`.
///
/// When the metadata has no string `prev_hash`, the returned `prev_hash` is `None` and `out`
/// contains no complete envelope.
///
/// # Errors
/// Fails when the payload or metadata is not valid JSON or contains a floating-point number.
pub fn write_envelope<'a>(
    event: &EventText<'a>,
    out: &mut Vec<u8>,
) -> Result<StoredLinks<'a>, EnvelopeError> {
    out.clear();
    out.extend_from_slice(b"{\"aggregate_id\":");
    super::write_string(event.aggregate_id, out);
    out.extend_from_slice(b",\"aggregate_type\":");
    super::write_string(event.aggregate_type, out);
    out.extend_from_slice(b",\"event_type\":");
    super::write_string(event.event_type, out);
    out.extend_from_slice(b",\"event_version\":");
    super::write_string(event.event_version, out);
    out.extend_from_slice(b",\"metadata\":");
    let links = write_metadata(event.metadata, out)?;
    out.extend_from_slice(b",\"payload\":");
    write_value(event.payload, out)?;
    let Some(prev_hash) = &links.prev_hash else {
        return Ok(links);
    };
    out.extend_from_slice(b",\"prev_hash\":");
    super::write_string(prev_hash, out);
    out.extend_from_slice(b",\"sequence\":");
    write!(out, "{}", event.sequence).expect("writing to a Vec cannot fail");
    out.push(b'}');
    Ok(links)
}

/// Appends the canonical JSON of the value that `text` contains.
///
/// # Errors
/// Fails when `text` is not valid JSON or contains a floating-point number.
pub fn write_value(text: &str, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
    let start = out.len();
    let mut copier = Copier::new(text, out);
    if copier.value(0).is_ok() && copier.at_end() {
        return Ok(());
    }
    out.truncate(start);
    let value: Value = serde_json::from_str(text)?;
    write_canonical(&value, out)?;
    Ok(())
}

/// Appends the canonical JSON of the metadata object in `text` without `hash` and `prev_hash`,
/// and returns those two. A metadata value that is not an object is written as `{}`, as
/// [`envelope_bytes`] writes it.
fn write_metadata<'a>(text: &'a str, out: &mut Vec<u8>) -> Result<StoredLinks<'a>, EnvelopeError> {
    let start = out.len();
    let mut links = StoredLinks::default();
    let mut copier = Copier::new(text, out);
    copier.skip_whitespace();
    if copier.peek() == Some(b'{') && copier.object(1, Some(&mut links)).is_ok() && copier.at_end()
    {
        return Ok(links);
    }
    out.truncate(start);
    let value: Value = serde_json::from_str(text)?;
    match &value {
        Value::Object(map) => write_object_without(map, &[HASH_KEY, PREV_HASH_KEY], out)?,
        _ => out.extend_from_slice(b"{}"),
    }
    let owned = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .map(|text| Cow::Owned(text.to_string()))
    };
    Ok(StoredLinks {
        hash: owned(HASH_KEY),
        prev_hash: owned(PREV_HASH_KEY),
    })
}

/// Nesting depth beyond which the copier hands the text to serde_json, which applies its own
/// recursion limit.
const MAX_DEPTH: u32 = 64;

/// Maximum digits of an integer the copier accepts. Every integer of 18 digits fits an `i64`, so
/// serde_json reads it as an integer and writes it back unchanged. Longer ones go through
/// serde_json.
const MAX_INTEGER_DIGITS: usize = 18;

/// The text is not in canonical form, or the copier cannot tell: the caller parses it instead.
struct NotCopyable;

/// Copies canonical JSON text to `out`, skipping whitespace between tokens, and stops with
/// [`NotCopyable`] at anything that the canonical encoding would write differently.
struct Copier<'t, 'o> {
    text: &'t str,
    at: usize,
    out: &'o mut Vec<u8>,
}

impl<'t, 'o> Copier<'t, 'o> {
    fn new(text: &'t str, out: &'o mut Vec<u8>) -> Self {
        Copier { text, at: 0, out }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.text.len()
    }

    fn expect(&mut self, byte: u8) -> Result<(), NotCopyable> {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return Err(NotCopyable);
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: u32) -> Result<(), NotCopyable> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth + 1, None),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => {
                let (raw, _) = self.string()?;
                self.out.extend_from_slice(raw.as_bytes());
                Ok(())
            }
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => Err(NotCopyable),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), NotCopyable> {
        if !self.text[self.at..].starts_with(word) {
            return Err(NotCopyable);
        }
        self.at += word.len();
        self.out.extend_from_slice(word.as_bytes());
        Ok(())
    }

    /// Copies an integer written as the canonical encoding writes it: no leading zeros, no
    /// `-0`, no fraction or exponent, and few enough digits to fit an `i64`.
    fn integer(&mut self) -> Result<(), NotCopyable> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let negative = bytes[start] == b'-';
        let first = start + usize::from(negative);
        let end = first
            + bytes[first..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
        let digits = end - first;
        let leading_zero = bytes[first..end].first() == Some(&b'0') && (digits > 1 || negative);
        let fraction = matches!(bytes.get(end), Some(b'.' | b'e' | b'E'));
        if digits == 0 || digits > MAX_INTEGER_DIGITS || leading_zero || fraction {
            return Err(NotCopyable);
        }
        self.out.extend_from_slice(&bytes[start..end]);
        self.at = end;
        Ok(())
    }

    /// Reads a string that is escaped as the canonical encoding escapes it and returns its
    /// text with the quotes, and whether it contains an escape.
    fn string(&mut self) -> Result<(&'t str, bool), NotCopyable> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut index = start + 1;
        let mut escaped = false;
        loop {
            match bytes.get(index) {
                None => return Err(NotCopyable),
                Some(b'"') => break,
                Some(b'\\') => {
                    index += escape_length(&bytes[index..]).ok_or(NotCopyable)?;
                    escaped = true;
                }
                Some(byte) if *byte < 0x20 => return Err(NotCopyable),
                Some(_) => index += 1,
            }
        }
        self.at = index + 1;
        Ok((&self.text[start..self.at], escaped))
    }

    fn array(&mut self, depth: u32) -> Result<(), NotCopyable> {
        if depth > MAX_DEPTH {
            return Err(NotCopyable);
        }
        self.at += 1;
        self.out.push(b'[');
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.out.push(b','),
                Some(b']') => break,
                _ => return Err(NotCopyable),
            }
            self.at += 1;
        }
        self.at += 1;
        self.out.push(b']');
        Ok(())
    }

    /// Copies an object whose keys are in strictly increasing code-point order (so without
    /// duplicates) and hold no escapes. With `links`, `hash` and `prev_hash` are taken out.
    fn object(
        &mut self,
        depth: u32,
        mut links: Option<&mut StoredLinks<'t>>,
    ) -> Result<(), NotCopyable> {
        if depth > MAX_DEPTH {
            return Err(NotCopyable);
        }
        self.at += 1;
        self.out.push(b'{');
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.out.push(b'}');
            return Ok(());
        }
        let mut previous: Option<&str> = None;
        let mut written = 0usize;
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(NotCopyable);
            }
            let (raw, escaped) = self.string()?;
            let key = &raw[1..raw.len() - 1];
            // Escaped text sorts differently from the characters it stands for.
            if escaped || previous.is_some_and(|previous| previous >= key) {
                return Err(NotCopyable);
            }
            previous = Some(key);
            self.expect(b':')?;
            match links.as_deref_mut() {
                Some(links) if key == HASH_KEY || key == PREV_HASH_KEY => {
                    self.skip_whitespace();
                    if self.peek() != Some(b'"') {
                        return Err(NotCopyable);
                    }
                    let (raw, escaped) = self.string()?;
                    if escaped {
                        return Err(NotCopyable);
                    }
                    let text = Some(Cow::Borrowed(&raw[1..raw.len() - 1]));
                    if key == HASH_KEY {
                        links.hash = text;
                    } else {
                        links.prev_hash = text;
                    }
                }
                _ => {
                    if written > 0 {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(raw.as_bytes());
                    self.out.push(b':');
                    self.value(depth)?;
                    written += 1;
                }
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => break,
                _ => return Err(NotCopyable),
            }
        }
        self.at += 1;
        self.out.push(b'}');
        Ok(())
    }
}

/// Returns the length of the escape at the start of `bytes` when the canonical encoding writes
/// that character the same way: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, or `\u00xx` with
/// lowercase digits for the other characters below U+0020.
fn escape_length(bytes: &[u8]) -> Option<usize> {
    match bytes.get(1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let digits = bytes.get(2..6)?;
            let (b'0', b'0', high @ (b'0' | b'1'), low @ (b'0'..=b'9' | b'a'..=b'f')) =
                (digits[0], digits[1], digits[2], digits[3])
            else {
                return None;
            };
            let short_form = high == b'0' && matches!(low, b'8' | b'9' | b'a' | b'c' | b'd');
            (!short_form).then_some(6)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
