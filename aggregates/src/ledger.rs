//! The global ledger: every event, in commit order, is a leaf of one Merkle tree
//! ([`crate::merkle`]), and signed checkpoints of that tree are events of the `ledger`
//! aggregate, chained like every other aggregate.
//!
//! `docs/ledger.md` states the leaf encoding and the signed checkpoint text precisely enough for
//! another program to verify them.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::chain::{self, NotCanonical, StoredEvent};
use crate::merkle::Hash;

#[cfg(test)]
mod tests;

/// Aggregate id of the one ledger; all checkpoints form one chain.
pub const LEDGER_ID: &str = "global";

/// Text signed before the checkpoint's canonical JSON, so that a checkpoint signature can never
/// be mistaken for a signature over other data.
pub const SIGNING_CONTEXT: &[u8] = b"zhengming checkpoint v1\n";

/// Computes a leaf's data: the 32 bytes of the event's stored hash followed by the canonical
/// envelope that hash was computed from (the envelope of `docs/hash-chain.md`, with the event's
/// own `prev_hash`).
///
/// # Errors
/// Fails when the payload or metadata holds a floating-point number.
pub fn leaf_data(
    event: &StoredEvent,
    hash: &Hash,
    prev_hash: &str,
) -> Result<Vec<u8>, NotCanonical> {
    let mut data = Vec::with_capacity(544);
    data.extend_from_slice(hash);
    data.extend_from_slice(&chain::envelope_bytes(event, event.sequence, prev_hash)?);
    Ok(data)
}

/// A signed statement of the ledger's tree size and root at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Number of leaves: the events in commit order, from the first.
    pub tree_size: u64,
    /// Merkle root, 64 lowercase hexadecimal digits.
    pub root: String,
    /// Time of signing, UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub signed_at: String,
    /// First 16 hexadecimal digits of SHA-256 over the Ed25519 public key.
    pub key_id: String,
    /// Ed25519 signature over [`Checkpoint::signed_text`], 128 hexadecimal digits.
    pub signature: String,
}

impl Checkpoint {
    /// Builds the bytes the signature covers: [`SIGNING_CONTEXT`] followed by the canonical JSON
    /// of `key_id`, `root`, `signed_at` and `tree_size`.
    pub fn signed_text(tree_size: u64, root: &str, signed_at: &str, key_id: &str) -> Vec<u8> {
        let fields = serde_json::json!({
            "key_id": key_id,
            "root": root,
            "signed_at": signed_at,
            "tree_size": tree_size,
        });
        let mut text = SIGNING_CONTEXT.to_vec();
        chain::write_canonical(&fields, &mut text)
            .expect("checkpoint fields are strings and an integer");
        text
    }

    /// Returns the bytes this checkpoint's signature covers.
    pub fn message(&self) -> Vec<u8> {
        Checkpoint::signed_text(self.tree_size, &self.root, &self.signed_at, &self.key_id)
    }

    /// Decodes the root, or `None` when it is not 64 hexadecimal digits.
    pub fn root_hash(&self) -> Option<Hash> {
        decode_hash(&self.root)
    }
}

/// Decodes 64 hexadecimal digits into a hash.
pub fn decode_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).ok()?;
    }
    Some(hash)
}

/// Encodes a hash as 64 lowercase hexadecimal digits.
pub fn encode_hash(hash: &Hash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The command of the ledger aggregate.
#[derive(Clone, Debug)]
pub enum LedgerCommand {
    /// Records a checkpoint the sealer has signed.
    RecordCheckpoint(Checkpoint),
}

/// The events of the ledger aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEvent {
    CheckpointSigned(Checkpoint),
}

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        match self {
            LedgerEvent::CheckpointSigned(_) => "CheckpointSigned".into(),
        }
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// A rejected ledger command; nothing is recorded for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The checkpoint does not cover more leaves than the last one.
    #[error(
        "checkpoint of tree size {tree_size} does not extend the last checkpoint of size {last}"
    )]
    NotNewer { tree_size: u64, last: u64 },
    /// A field of the checkpoint is malformed.
    #[error("checkpoint field {field} is invalid: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// The ledger's state: the last recorded checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub last: Option<Checkpoint>,
    pub checkpoints: u64,
}

impl Ledger {
    fn record(&self, checkpoint: Checkpoint) -> Result<LedgerEvent, LedgerError> {
        let last = self.last.as_ref().map_or(0, |last| last.tree_size);
        if checkpoint.tree_size <= last {
            return Err(LedgerError::NotNewer {
                tree_size: checkpoint.tree_size,
                last,
            });
        }
        if checkpoint.root_hash().is_none() {
            return Err(LedgerError::Invalid {
                field: "root",
                message: "expected 64 hexadecimal digits".into(),
            });
        }
        let signature_ok = checkpoint.signature.len() == 128
            && checkpoint
                .signature
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit());
        if !signature_ok {
            return Err(LedgerError::Invalid {
                field: "signature",
                message: "expected 128 hexadecimal digits".into(),
            });
        }
        Ok(LedgerEvent::CheckpointSigned(checkpoint))
    }
}

impl Aggregate for Ledger {
    const TYPE: &'static str = "ledger";
    type Command = LedgerCommand;
    type Event = LedgerEvent;
    type Error = LedgerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), LedgerError> {
        match command {
            LedgerCommand::RecordCheckpoint(checkpoint) => {
                let event = self.record(checkpoint)?;
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            LedgerEvent::CheckpointSigned(checkpoint) => {
                self.last = Some(checkpoint);
                self.checkpoints += 1;
            }
        }
    }
}
