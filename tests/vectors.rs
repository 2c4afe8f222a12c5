//! Test vectors of the ledger: a small ledger with its expected hashes and roots, stored in
//! `tests/vectors/ledger.json` as a bundle that `ops/verify_bundle.py` verifies too.
//!
//! Set `ZHENGMING_WRITE_VECTORS=1` to rewrite the file after a deliberate format change.

use aggregates::chain::{self, GENESIS_HASH, StoredEvent};
use aggregates::ledger::{self, leaf_data};
use aggregates::merkle::{self, Hash};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zhengming::ledger::LedgerKey;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ledger.json");

/// The secret key of RFC 8032 section 7.1, test 1: a published key, for vectors only.
const TEST_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn event(kind: &str, id: &str, sequence: u64, event_type: &str, payload: Value) -> StoredEvent {
    StoredEvent {
        aggregate_type: kind.into(),
        aggregate_id: id.into(),
        sequence,
        event_type: event_type.into(),
        event_version: "1".into(),
        payload,
        metadata: json!({
            "actor": "hh",
            "request_id": format!("req-{id}-{sequence}"),
            "recorded_at": format!("2026-12-04T08:00:0{sequence}.000000Z"),
        }),
    }
}

/// Five events of two aggregates, interleaved, with a non-ASCII name, an escaped control
/// character and a negative integer.
fn vector_events() -> Vec<StoredEvent> {
    vec![
        event(
            "application",
            "A",
            1,
            "ApplicationSubmitted",
            json!({"ApplicationSubmitted": {"name": "张伟", "note": "line\nbreak"}}),
        ),
        event(
            "application",
            "B",
            1,
            "ApplicationSubmitted",
            json!({"ApplicationSubmitted": {"name": "Li \"Lei\"", "offset": -3}}),
        ),
        event(
            "application",
            "A",
            2,
            "EvidenceChecked",
            json!({"EvidenceChecked": {"reference": "A-1", "path": "a/b\\c"}}),
        ),
        event(
            "application",
            "A",
            3,
            "ApplicationApproved",
            json!({"ApplicationApproved": {"officer": "ld", "tab": "\t", "bell": "\u{7}"}}),
        ),
        event(
            "application",
            "B",
            2,
            "ApplicationWithdrawn",
            json!({"ApplicationWithdrawn": {"empty": {}, "list": [1, true, null]}}),
        ),
    ]
}

fn build() -> Value {
    let key = LedgerKey::from_secret_hex(TEST_SECRET).expect("test key");
    let mut previous: std::collections::HashMap<String, String> = Default::default();
    let mut leaves: Vec<Hash> = Vec::new();
    let mut bundled = Vec::new();
    let mut expected_leaves = Vec::new();
    for (index, mut event) in vector_events().into_iter().enumerate() {
        let prev = previous
            .get(&event.aggregate_id)
            .cloned()
            .unwrap_or_else(|| GENESIS_HASH.to_string());
        let hash = chain::link(&mut event, &prev).expect("event links");
        let hash_bytes = ledger::decode_hash(&hash).expect("hash is hex");
        let envelope = chain::envelope_bytes(&event, event.sequence, &prev).expect("canonical");
        let leaf = merkle::leaf_hash(&leaf_data(&event, &hash_bytes, &prev).expect("leaf data"));
        leaves.push(leaf);
        expected_leaves.push(ledger::encode_hash(&leaf));
        bundled.push(json!({
            "leaf_index": index,
            "global_position": index + 1,
            "hash": hash,
            "envelope": String::from_utf8(envelope).expect("UTF-8"),
        }));
        previous.insert(event.aggregate_id.clone(), hash);
    }
    let checkpoints: Vec<Value> = [
        (3usize, "2026-12-04T08:00:10.000000Z"),
        (5, "2026-12-04T08:00:20.000000Z"),
    ]
    .iter()
    .map(|(size, time)| {
        let root = ledger::encode_hash(&merkle::root(&leaves[..*size]));
        serde_json::to_value(key.sign_at(*size as u64, &root, time)).expect("checkpoint")
    })
    .collect();
    let roots: Vec<String> = (1..=leaves.len())
        .map(|size| ledger::encode_hash(&merkle::root(&leaves[..size])))
        .collect();
    json!({
        "format": "zhengming-bundle-1",
        "scope": "ledger",
        "public_keys": [key.public()],
        "checkpoints": checkpoints,
        "consistency_proofs": [],
        "events": bundled,
        "expected": {
            "comment": "leaf_hashes[i] is the leaf of events[i]; roots[n-1] is the root of the first n leaves",
            "leaf_hashes": expected_leaves,
            "roots": roots,
        }
    })
}

#[test]
fn vectors_match_the_stored_file() {
    let built = serde_json::to_string_pretty(&build()).expect("JSON") + "\n";
    if std::env::var_os("ZHENGMING_WRITE_VECTORS").is_some() {
        std::fs::write(VECTORS, &built).expect("vectors are written");
    }
    let stored = std::fs::read_to_string(VECTORS).expect("tests/vectors/ledger.json exists");
    assert_eq!(
        stored, built,
        "the ledger encoding changed; see tests/vectors.rs"
    );
}

#[test]
fn stored_vectors_recompute_and_verify() {
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(VECTORS).expect("vectors")).expect("JSON");
    let mut leaves = Vec::new();
    for (index, event) in stored["events"]
        .as_array()
        .expect("events")
        .iter()
        .enumerate()
    {
        let envelope = event["envelope"].as_str().expect("envelope");
        let hash = event["hash"].as_str().expect("hash");
        let digest: Hash = Sha256::digest(envelope.as_bytes()).into();
        assert_eq!(ledger::encode_hash(&digest), hash, "event {index}");
        let mut data = ledger::decode_hash(hash).expect("hex").to_vec();
        data.extend_from_slice(envelope.as_bytes());
        let leaf = merkle::leaf_hash(&data);
        assert_eq!(
            ledger::encode_hash(&leaf),
            stored["expected"]["leaf_hashes"][index]
                .as_str()
                .expect("leaf"),
            "leaf {index}"
        );
        leaves.push(leaf);
    }
    let key: zhengming::ledger::keys::PublicKey =
        serde_json::from_value(stored["public_keys"][0].clone()).expect("key");
    for checkpoint in stored["checkpoints"].as_array().expect("checkpoints") {
        let checkpoint: aggregates::ledger::Checkpoint =
            serde_json::from_value(checkpoint.clone()).expect("checkpoint");
        let size = checkpoint.tree_size as usize;
        assert_eq!(
            ledger::encode_hash(&merkle::root(&leaves[..size])),
            checkpoint.root
        );
        assert_eq!(
            stored["expected"]["roots"][size - 1].as_str(),
            Some(checkpoint.root.as_str())
        );
        zhengming::ledger::keys::verify_signature(&checkpoint, &key).expect("signature verifies");
    }
}

#[test]
fn independent_verifier_accepts_vectors() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/verify_bundle.py");
    let output = std::process::Command::new("python3")
        .args([script, VECTORS])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("verified 5 events in 2 chains against 2 signed checkpoints"),
        "{stdout}"
    );
}
