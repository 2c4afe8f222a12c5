use super::*;

fn checkpoint(tree_size: u64) -> Checkpoint {
    Checkpoint {
        tree_size,
        root: "ab".repeat(32),
        signed_at: "2026-12-04T15:00:00.000000Z".into(),
        key_id: "0123456789abcdef".into(),
        signature: "cd".repeat(64),
    }
}

async fn handle(
    ledger: &mut Ledger,
    checkpoint: Checkpoint,
) -> Result<Vec<LedgerEvent>, LedgerError> {
    let sink = EventSink::default();
    ledger
        .handle(LedgerCommand::RecordCheckpoint(checkpoint), &(), &sink)
        .await?;
    Ok(sink.collect().await)
}

#[tokio::test]
async fn first_checkpoint_is_recorded() {
    let mut ledger = Ledger::default();
    let events = handle(&mut ledger, checkpoint(3)).await.expect("recorded");
    assert_eq!(events, vec![LedgerEvent::CheckpointSigned(checkpoint(3))]);
    assert_eq!(ledger.checkpoints, 1);
    assert_eq!(ledger.last, Some(checkpoint(3)));
}

#[tokio::test]
async fn checkpoint_must_grow_the_tree() {
    let mut ledger = Ledger::default();
    handle(&mut ledger, checkpoint(3)).await.expect("recorded");
    let error = handle(&mut ledger, checkpoint(3))
        .await
        .expect_err("rejected");
    assert_eq!(
        error,
        LedgerError::NotNewer {
            tree_size: 3,
            last: 3
        }
    );
    assert_eq!(ledger.checkpoints, 1);
}

#[tokio::test]
async fn malformed_root_and_signature_are_rejected() {
    let mut ledger = Ledger::default();
    let mut bad_root = checkpoint(1);
    bad_root.root = "xyz".into();
    let error = handle(&mut ledger, bad_root).await.expect_err("rejected");
    assert!(matches!(error, LedgerError::Invalid { field: "root", .. }));
    let mut bad_signature = checkpoint(1);
    bad_signature.signature = "00".into();
    let error = handle(&mut ledger, bad_signature)
        .await
        .expect_err("rejected");
    assert!(matches!(
        error,
        LedgerError::Invalid {
            field: "signature",
            ..
        }
    ));
    assert_eq!(ledger.checkpoints, 0);
}

#[test]
fn signed_text_is_context_then_canonical_json() {
    let text = checkpoint(7).message();
    let expected = format!(
        "zhengming checkpoint v1\n{{\"key_id\":\"0123456789abcdef\",\"root\":\"{}\",\"signed_at\":\"2026-12-04T15:00:00.000000Z\",\"tree_size\":7}}",
        "ab".repeat(32)
    );
    assert_eq!(String::from_utf8(text).expect("UTF-8"), expected);
}

#[test]
fn hashes_round_trip_through_hex() {
    let hash = crate::merkle::leaf_hash(b"x");
    assert_eq!(decode_hash(&encode_hash(&hash)), Some(hash));
    assert_eq!(decode_hash("zz"), None);
    assert_eq!(decode_hash(&"g".repeat(64)), None);
}
