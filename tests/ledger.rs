//! The global ledger: sealing, signed and exported checkpoints, the start-up check against the
//! exported copy, and verification naming each kind of tampering a database superuser can do.

mod common;

use std::path::Path;
use std::time::Duration;

use aggregates::chain::{self, GENESIS_HASH, StoredEvent};
use aggregates::{ledger, merkle};
use common::{TestServer, kinship_request};
use serde_json::{Value, json};
use zhengming::ledger::audit::{self, AuditReport, LedgerDamage, LedgerFinding};
use zhengming::ledger::{CheckpointDirectory, LedgerKey, LedgerSettings, Sealer, bundle, records};

/// Settings with the key file `key` and the checkpoint directory `checkpoints` under `dir`,
/// creating the key explicitly on first use. The interval is long, so checkpoints in these
/// tests come from the final sealing round of a stopping server.
fn settings(dir: &Path, key: &str, checkpoints: &str) -> LedgerSettings {
    let key_path = dir.join(key);
    let key = if key_path.exists() {
        LedgerKey::load(&key_path).expect("key file loads")
    } else {
        LedgerKey::write_new(&key_path).expect("key file is written")
    };
    LedgerSettings {
        key,
        directory: CheckpointDirectory::open(&dir.join(checkpoints)).expect("directory opens"),
        interval: Duration::from_secs(3600),
    }
}

/// Submits an application and records two evidence checks: four events, sequences 1 to 4.
async fn four_events(server: &TestServer) -> String {
    let id = server.submit("hh", kinship_request()).await;
    for reference in ["A-1", "A-2"] {
        let body =
            json!({"source": "household_archives", "reference": reference, "result": "confirmed"});
        let (status, answer) = server
            .post("hh", &format!("/v1/applications/{id}/evidence"), body)
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    }
    id
}

/// Two cases of four events each, sealed by the server's final round into a checkpoint of
/// eight events; the server is stopped and the database stays open.
async fn sealed_cases(dir: &Path) -> (TestServer, String, String) {
    let mut server =
        TestServer::start_with_ledger(Some(settings(dir, "ledger.key", "published"))).await;
    let first = four_events(&server).await;
    let second = four_events(&server).await;
    server.stop_server().await;
    (server, first, second)
}

fn published(dir: &Path) -> CheckpointDirectory {
    CheckpointDirectory::open(&dir.join("published")).expect("directory opens")
}

async fn audit_against(
    server: &TestServer,
    directory: Option<&CheckpointDirectory>,
) -> AuditReport {
    audit::audit(server.pool(), directory)
        .await
        .expect("verify runs")
}

async fn first_damage(server: &TestServer, dir: &Path) -> LedgerFinding {
    let report = audit_against(server, Some(&published(dir))).await;
    report.first_damage.expect("damage is found")
}

/// Runs SQL with the append-only triggers disabled, as a superuser could.
async fn as_superuser(server: &TestServer, statements: &[String]) {
    let mut tx = server.pool().begin().await.expect("transaction");
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .expect("superuser disables triggers");
    for statement in statements {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .expect("tampering statement runs");
    }
    tx.commit().await.expect("tampering commits");
}

async fn position(server: &TestServer, id: &str, sequence: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT global_position FROM events WHERE aggregate_id = $1 AND sequence = $2",
    )
    .bind(id)
    .bind(sequence)
    .fetch_one(server.pool())
    .await
    .expect("event exists")
}

async fn events_of(server: &TestServer, id: &str) -> Vec<StoredEvent> {
    let rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
           FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(server.pool())
    .await
    .expect("events are read");
    rows.iter()
        .map(|row| records::stored_event(row).expect("event decodes"))
        .collect()
}

fn text(value: &Value) -> String {
    value.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_server_seals_and_exports_checkpoint() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, _, _) = sealed_cases(dir.path()).await;
    let checkpoints = records::database_checkpoints(server.pool())
        .await
        .expect("read");
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].tree_size, 8);
    let exported = published(dir.path())
        .checkpoints()
        .expect("exported checkpoints read");
    assert_eq!(exported, checkpoints);
    let keys = published(dir.path()).keys().expect("keys read");
    assert!(keys.contains_key(&checkpoints[0].key_id));
    let report = audit_against(&server, Some(&published(dir.path()))).await;
    assert_eq!(report.first_damage, None, "{report:?}");
    assert_eq!(report.events, 9);
    assert_eq!(report.chains, 3);
    assert_eq!(report.sealed, 8);
    // The ninth event is the checkpoint's own record, which only a later checkpoint can cover.
    assert!(
        report.notes.contains(
            &"1 newest event is the ledger's own checkpoint record, which the next checkpoint covers; every other event is covered".to_string()
        ),
        "{:?}",
        report.notes
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsealed_station_work_is_noted() {
    let server = TestServer::start().await;
    four_events(&server).await;

    let report = audit_against(&server, None).await;

    assert_eq!(report.first_damage, None, "{report:?}");
    assert_eq!(report.sealed, 0);
    assert!(
        report.notes.contains(
            &"4 newest events are not covered by a checkpoint yet; their chains were checked"
                .to_string()
        ),
        "{:?}",
        report.notes
    );
    server.stop().await;
}

/// Appends commit concurrently while the sealer runs every 20 ms: every event is sealed exactly
/// once, in the order the audit reads the log, under checkpoints signed between the waves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_sealed() {
    let dir = tempfile::tempdir().expect("directory");
    let mut ledger = settings(dir.path(), "ledger.key", "published");
    ledger.interval = Duration::from_millis(20);
    let mut server = TestServer::start_with_ledger(Some(ledger)).await;
    // Four waves of ten, with pauses of several sealing intervals between them.
    for _ in 0..4 {
        let submissions = (0..10).map(|_| server.submit("hh", kinship_request()));
        futures_util::future::join_all(submissions).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop_server().await;

    let report = audit_against(&server, Some(&published(dir.path()))).await;
    assert_eq!(report.first_damage, None, "{report:?}");
    assert!(
        report.checkpoints > 1,
        "checkpoints were signed between the waves: {report:?}"
    );
    let unsealed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, global_position FROM events e
          WHERE NOT EXISTS (SELECT 1 FROM ledger_leaves l WHERE l.global_position = e.global_position)",
    )
    .fetch_all(server.pool())
    .await
    .expect("events read");
    // At most the checkpoint recorded by the last round waits for the next round.
    assert!(unsealed.len() <= 1, "{unsealed:?}");
    assert!(
        unsealed.iter().all(|(kind, _)| kind == "ledger"),
        "{unsealed:?}"
    );
    let applications: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT aggregate_id) FROM ledger_leaves WHERE aggregate_type = 'application'")
            .fetch_one(server.pool())
            .await
            .expect("leaves read");
    assert_eq!(applications, 40);
    server.stop().await;
}

/// A database restored from a logical dump into another server carries transaction ids that
/// server has not reached: the server refuses it until the ids are shifted below zero, and then
/// seals and projects new events after the restored ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_transaction_ids_are_refused_until_shifted() {
    let dir = tempfile::tempdir().expect("directory");
    let (mut server, _, _) = sealed_cases(dir.path()).await;
    // The source server was a trillion transactions ahead of this one.
    as_superuser(
        &server,
        &[
            "UPDATE events SET transaction_id = transaction_id + 1000000000000".to_string(),
            "UPDATE projection_checkpoints SET transaction_id = transaction_id + 1000000000000
              WHERE transaction_id >= 0"
                .to_string(),
        ],
    )
    .await;
    let ledger = || Some(settings(dir.path(), "ledger.key", "published"));
    let rejected = server
        .restart(ledger())
        .await
        .expect_err("the server rejects the restored ids");
    assert!(
        rejected
            .to_string()
            .contains("Shift the stored ids below zero"),
        "{rejected:#}"
    );

    // The repair of docs/ledger.md.
    let mut tx = server.pool().begin().await.expect("transaction");
    for statement in [
        "CREATE TEMP TABLE shift ON COMMIT DROP AS SELECT max(transaction_id) + 1 AS by FROM events",
        "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete",
        "UPDATE events SET transaction_id = transaction_id - (SELECT by FROM shift)",
        "UPDATE projection_checkpoints SET transaction_id = transaction_id - (SELECT by FROM shift)
          WHERE transaction_id > -9223372036854775808",
        "ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete",
    ] {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .expect("repair statement runs");
    }
    tx.commit().await.expect("repair commits");

    server.restart(ledger()).await.expect("the server starts");
    let id = four_events(&server).await;
    server.stop_server().await;
    let report = audit_against(&server, Some(&published(dir.path()))).await;
    assert_eq!(report.first_damage, None, "{report:?}");
    let sealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger_leaves WHERE aggregate_type = 'application' AND aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(server.pool())
    .await
    .expect("leaves read");
    assert_eq!(sealed, 4, "the new case is sealed after the restored ones");
    projections::projector::catch_up(server.pool())
        .await
        .expect("projection applies");
    let views: i64 = sqlx::query_scalar("SELECT count(*) FROM application_view")
        .fetch_one(server.pool())
        .await
        .expect("views read");
    assert_eq!(views, 3, "two restored applications and the new one");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_follows_commit_within_interval() {
    let dir = tempfile::tempdir().expect("directory");
    let mut ledger = settings(dir.path(), "ledger.key", "published");
    ledger.interval = Duration::from_secs(1);
    let server = TestServer::start_with_ledger(Some(ledger)).await;
    four_events(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let checkpoints = records::database_checkpoints(server.pool())
            .await
            .expect("read");
        if checkpoints.last().is_some_and(|last| last.tree_size == 4) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint of 4 events within 10 s: {checkpoints:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(published(dir.path()).has_checkpoint(4));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_payload_is_content_changed() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, _) = sealed_cases(dir.path()).await;
    let expected_position = position(&server, &first, 3).await;
    as_superuser(
        &server,
        &[format!(
            "UPDATE events SET payload = json_build_object('EvidenceChecked', json_build_object('source', 'household_archives', 'reference', 'FORGED', 'result', 'confirmed', 'officer', 'hh'))
              WHERE aggregate_id = '{first}' AND sequence = 3"
        )],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::ContentChanged);
    assert_eq!(found.global_position, Some(expected_position));
    assert_eq!(found.event, Some(("application".into(), first, 3)));
    server.stop().await;
}

/// Changes sequence 3 of `id` and recomputes the hashes of 3 and 4, so the chain verifies.
async fn rewrite_with_recomputed_hashes(server: &TestServer, id: &str) {
    let mut events = events_of(server, id).await;
    let mut previous = events[1].metadata["hash"]
        .as_str()
        .expect("hash")
        .to_string();
    events[2].payload["EvidenceChecked"]["reference"] = json!("FORGED");
    let mut tx = server.pool().begin().await.expect("transaction");
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .expect("superuser disables triggers");
    for event in &mut events[2..] {
        previous = chain::link(event, &previous).expect("event links");
        sqlx::query(
            "UPDATE events SET payload = $1::text::json, metadata = $2::text::json WHERE aggregate_id = $3 AND sequence = $4",
        )
        .bind(text(&event.payload))
        .bind(text(&event.metadata))
        .bind(id)
        .bind(event.sequence as i64)
        .execute(&mut *tx)
        .await
        .expect("rewrite runs");
    }
    tx.commit().await.expect("rewrite commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_history_is_caught_by_checkpoint() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, _) = sealed_cases(dir.path()).await;
    let expected_position = position(&server, &first, 3).await;
    rewrite_with_recomputed_hashes(&server, &first).await;
    let chains = zhengming::verify::verify_all(server.pool())
        .await
        .expect("verify runs");
    assert_eq!(
        chains.first_break, None,
        "the rewrite keeps every chain intact"
    );
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::HistoryRewritten);
    assert_eq!(found.global_position, Some(expected_position));
    assert_eq!(found.event, Some(("application".into(), first, 3)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_with_rebuilt_leaves_fails_checkpoint_root() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, _) = sealed_cases(dir.path()).await;
    rewrite_with_recomputed_hashes(&server, &first).await;
    // The attacker also empties the sealed leaves: only the signed root is left to compare.
    as_superuser(&server, &["DELETE FROM ledger_leaves".to_string()]).await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::HistoryRewritten);
    assert_eq!(found.checkpoint, Some(8));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_last_event_of_case_is_missing() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, _) = sealed_cases(dir.path()).await;
    let expected_position = position(&server, &first, 4).await;
    as_superuser(
        &server,
        &[format!(
            "DELETE FROM events WHERE aggregate_id = '{first}' AND sequence = 4"
        )],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::EventMissing);
    assert_eq!(found.global_position, Some(expected_position));
    assert_eq!(found.event, Some(("application".into(), first, 4)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_case_is_named() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, _) = sealed_cases(dir.path()).await;
    let expected_position = position(&server, &first, 1).await;
    as_superuser(
        &server,
        &[format!("DELETE FROM events WHERE aggregate_id = '{first}'")],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::CaseDeleted);
    assert_eq!(found.global_position, Some(expected_position));
    assert_eq!(found.event, Some(("application".into(), first, 1)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_tail_is_named() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, _, second) = sealed_cases(dir.path()).await;
    let cut = position(&server, &second, 3).await;
    as_superuser(
        &server,
        &[format!("DELETE FROM events WHERE global_position >= {cut}")],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::Truncated);
    assert_eq!(found.global_position, Some(cut));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_with_leaves_is_caught_by_exported_checkpoint() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, _, second) = sealed_cases(dir.path()).await;
    let cut = position(&server, &second, 3).await;
    as_superuser(
        &server,
        &[
            format!("DELETE FROM events WHERE global_position >= {cut}"),
            format!("DELETE FROM ledger_leaves WHERE global_position >= {cut}"),
        ],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::Truncated);
    assert_eq!(found.checkpoint, Some(8));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_events_table_fails_verification() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, _, _) = sealed_cases(dir.path()).await;
    as_superuser(
        &server,
        &[
            "DELETE FROM events".to_string(),
            "DELETE FROM ledger_leaves".to_string(),
        ],
    )
    .await;
    let report = audit_against(&server, Some(&published(dir.path()))).await;
    assert_eq!(report.events, 0);
    let found = report.first_damage.expect("damage is found");
    assert_eq!(found.damage, LedgerDamage::Truncated);
    assert_eq!(found.checkpoint, Some(8));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_positions_are_order_changed() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, second) = sealed_cases(dir.path()).await;
    let a = position(&server, &first, 4).await;
    let b = position(&server, &second, 1).await;
    as_superuser(
        &server,
        &[
            format!(
                "UPDATE events e SET transaction_id = o.transaction_id FROM events o
                  WHERE (e.global_position, o.global_position) IN (({a}, {b}), ({b}, {a}))"
            ),
            format!("UPDATE events SET global_position = -1 WHERE global_position = {a}"),
            format!("UPDATE events SET global_position = {a} WHERE global_position = {b}"),
            format!("UPDATE events SET global_position = {b} WHERE global_position = -1"),
        ],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::OrderChanged);
    assert_eq!(found.global_position, Some(a));
    assert_eq!(found.event, Some(("application".into(), second, 1)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_sequences_named_by_bundle_verifier() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, _) = sealed_cases(dir.path()).await;
    as_superuser(
        &server,
        &[
            format!(
                "UPDATE events SET sequence = 1000 WHERE aggregate_id = '{first}' AND sequence = 2"
            ),
            format!(
                "UPDATE events SET sequence = 2 WHERE aggregate_id = '{first}' AND sequence = 3"
            ),
            format!(
                "UPDATE events SET sequence = 3 WHERE aggregate_id = '{first}' AND sequence = 1000"
            ),
        ],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::OrderChanged);
    let (path, _) = write_bundle(&server, dir.path(), Some(&first)).await;
    let (ok, text) = run_python_verifier(&path, &dir.path().join("published"));
    assert!(!ok, "{text}");
    assert!(text.contains("order changed"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sealer_shows_in_health() {
    let dir = tempfile::tempdir().expect("directory");
    let mut server =
        TestServer::start_with_ledger(Some(settings(dir.path(), "ledger.key", "published"))).await;
    let first = four_events(&server).await;
    let (_, health) = server.get(None, "/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["ledger"]["sealing"], "ok");
    let counted = |health: &Value| {
        let count = |key: &str| health["ledger"][key].as_i64().expect("a count");
        (count("sealed_events"), count("unsealed_events"))
    };
    let (sealed, unsealed) = counted(&health);
    assert_eq!(sealed + unsealed, server.event_count().await, "{health}");
    assert!(
        unsealed >= 4,
        "the four new events wait for the hourly round: {health}"
    );
    server.stop_server().await;
    // An event whose hash does not match its content is never sealed.
    let mut forged = events_of(&server, &first).await.remove(0);
    forged.aggregate_id = "forged-unsealable".into();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, 1, $3, $4, $5::text::json, $6::text::json)",
    )
    .bind(&forged.aggregate_type)
    .bind(&forged.aggregate_id)
    .bind(&forged.event_type)
    .bind(&forged.event_version)
    .bind(text(&forged.payload))
    .bind(text(&forged.metadata))
    .execute(server.pool())
    .await
    .expect("insert runs");
    let mut ledger = settings(dir.path(), "ledger.key", "published");
    ledger.interval = Duration::from_millis(200);
    server.restart(Some(ledger)).await.expect("server restarts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let health = loop {
        let (_, health) = server.get(None, "/health").await;
        if health["status"] != "ok" || std::time::Instant::now() > deadline {
            break health;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["ledger"]["sealing"], "failing", "{health}");
    let error = health["ledger"]["error"].as_str().expect("error text");
    assert!(error.contains("cannot be sealed"), "{error}");
    let (sealed, unsealed) = counted(&health);
    assert!(
        sealed >= 4,
        "the final round of the first run sealed its events: {health}"
    );
    assert!(unsealed >= 1, "the forged event stays unsealed: {health}");
    assert_eq!(sealed + unsealed, server.event_count().await, "{health}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backdated_event_is_inserted() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, first, _) = sealed_cases(dir.path()).await;
    let mut forged = events_of(&server, &first).await.remove(0);
    forged.aggregate_id = "forged-backdated".into();
    forged.metadata["recorded_at"] = json!("2020-01-02T09:00:00.000000Z");
    chain::link(&mut forged, GENESIS_HASH).expect("forged event links");
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, recorded_at)
         VALUES ($1, $2, 1, $3, $4, $5::text::json, $6::text::json, 0, '2020-01-02T09:00:00Z')",
    )
    .bind(&forged.aggregate_type)
    .bind(&forged.aggregate_id)
    .bind(&forged.event_type)
    .bind(&forged.event_version)
    .bind(text(&forged.payload))
    .bind(text(&forged.metadata))
    .execute(server.pool())
    .await
    .expect("insert runs: the trigger assigns a position, so fix it below");
    as_superuser(
        &server,
        &[
            "UPDATE events SET transaction_id = 0, global_position = 0 WHERE aggregate_id = 'forged-backdated'"
                .to_string(),
        ],
    )
    .await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::EventInserted);
    assert_eq!(found.global_position, Some(0));
    assert_eq!(
        found.event,
        Some(("application".into(), "forged-backdated".into(), 1))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_old_backup_is_refused_and_fork_is_named() {
    let dir = tempfile::tempdir().expect("directory");
    let mut server =
        TestServer::start_with_ledger(Some(settings(dir.path(), "ledger.key", "published"))).await;
    four_events(&server).await;
    server.stop_server().await;
    // The backup: four events and the checkpoint event that covers them.
    let backup_end: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(server.pool())
        .await
        .expect("position");
    server
        .restart(Some(settings(dir.path(), "ledger.key", "published")))
        .await
        .expect("server restarts");
    four_events(&server).await;
    server.stop_server().await;
    assert!(published(dir.path()).has_checkpoint(9));
    as_superuser(
        &server,
        &[
            format!("DELETE FROM events WHERE global_position > {backup_end}"),
            "DELETE FROM ledger_leaves WHERE leaf_index >= 4".to_string(),
        ],
    )
    .await;
    let refusal = server
        .restart(Some(settings(dir.path(), "ledger.key", "published")))
        .await
        .expect_err("a restored old backup must not serve");
    assert!(
        refusal
            .to_string()
            .contains("behind the exported checkpoints"),
        "{refusal:#}"
    );
    // Someone serves the restored database with a fresh checkpoint directory and keeps writing.
    server
        .restart(Some(settings(dir.path(), "ledger.key", "elsewhere")))
        .await
        .expect("server starts with another directory");
    let forked_case = four_events(&server).await;
    server.stop_server().await;
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::Forked);
    assert_eq!(found.checkpoint, Some(9));
    // The independent verifier names the fork from a bundle of the new history, whole or one
    // case, checked against the original directory.
    for case in [None, Some(forked_case.as_str())] {
        let (path, _) = write_bundle(&server, dir.path(), case).await;
        let (ok, text) = run_python_verifier(&path, &dir.path().join("published"));
        assert!(!ok, "{case:?}: {text}");
        assert!(text.contains("forked"), "{case:?}: {text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_by_unknown_key_is_named() {
    let dir = tempfile::tempdir().expect("directory");
    let (mut server, _, _) = sealed_cases(dir.path()).await;
    server
        .restart(Some(settings(dir.path(), "intruder.key", "intruder")))
        .await
        .expect("server restarts with another key");
    four_events(&server).await;
    server.stop_server().await;
    let intruder = LedgerKey::load(&dir.path().join("intruder.key")).expect("key loads");
    let found = first_damage(&server, dir.path()).await;
    assert_eq!(found.damage, LedgerDamage::UnknownKey);
    assert_eq!(found.checkpoint, Some(13));
    assert!(found.detail.contains(&intruder.key_id), "{}", found.detail);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonb_payload_column_still_verifies() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, _, _) = sealed_cases(dir.path()).await;
    // jsonb reorders keys and drops whitespace; the canonical encoding does not depend on either.
    as_superuser(
        &server,
        &["ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb".to_string()],
    )
    .await;
    let report = audit_against(&server, Some(&published(dir.path()))).await;
    assert_eq!(report.first_damage, None, "{report:?}");
    assert_eq!(report.sealed, 8);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_key_is_refused() {
    let dir = tempfile::tempdir().expect("directory");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zhengming"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("ZHENGMING_LEDGER_KEY")
        .env_remove("ZHENGMING_LEDGER_KEY_FILE")
        .env("ZHENGMING_CHECKPOINT_DIR", dir.path().join("published"))
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("zhengming runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no checkpoint signing key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_missing_checkpoint_directory() {
    let dir = tempfile::tempdir().expect("directory");
    let missing = dir.path().join("no-such-directory");
    // The check comes before any database is opened, so an unreachable one does not matter.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zhengming"))
        .arg("verify")
        .arg("--checkpoint-dir")
        .arg(&missing)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("zhengming runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!missing.exists(), "verify does not create the directory");
}

/// Two checkpoints: eight events of two cases, then a third case after a restart.
async fn two_checkpoints(dir: &Path) -> (TestServer, String) {
    let (mut server, first, _) = sealed_cases(dir).await;
    server
        .restart(Some(settings(dir, "ledger.key", "published")))
        .await
        .expect("server restarts");
    four_events(&server).await;
    server.stop_server().await;
    (server, first)
}

fn run_python_verifier(bundle: &Path, checkpoints: &Path) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/verify_bundle.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(bundle)
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn write_bundle(
    server: &TestServer,
    dir: &Path,
    case: Option<&str>,
) -> (std::path::PathBuf, Value) {
    let bundle = bundle::export(server.pool(), &published(dir), case)
        .await
        .expect("bundle is built");
    let value = serde_json::to_value(&bundle).expect("bundle serializes");
    let path = dir.join(format!("bundle-{}.json", case.unwrap_or("ledger")));
    std::fs::write(&path, serde_json::to_string_pretty(&value).expect("JSON")).expect("written");
    (path, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_bundle_verifies_independently() {
    let dir = tempfile::tempdir().expect("directory");
    let (mut server, first) = two_checkpoints(dir.path()).await;
    // A read of the case's history is sealed into a third checkpoint and bundled with the case.
    server
        .restart(Some(settings(dir.path(), "ledger.key", "published")))
        .await
        .expect("server restarts");
    let (status, answer) = server
        .get(
            Some("hh"),
            &format!("/v1/applications/{first}/history?purpose=export+check"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    server.stop_server().await;
    let (path, mut value) = write_bundle(&server, dir.path(), Some(&first)).await;
    assert_eq!(value["events"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        value["consistency_proofs"].as_array().map(Vec::len),
        Some(2)
    );
    let read = value["events"][4]["envelope"].as_str().expect("envelope");
    assert!(
        read.contains("\"aggregate_type\":\"application_reads\""),
        "{read}"
    );
    let (ok, output) = run_python_verifier(&path, &dir.path().join("published"));
    assert!(ok, "{output}");
    assert!(
        output.contains("verified 5 events in 2 chains against 3 signed checkpoints"),
        "{output}"
    );
    let envelope = value["events"][2]["envelope"]
        .as_str()
        .expect("envelope")
        .replace("A-1", "A-9");
    value["events"][2]["envelope"] = json!(envelope);
    std::fs::write(&path, value.to_string()).expect("tampered bundle written");
    let (ok, output) = run_python_verifier(&path, &dir.path().join("published"));
    assert!(!ok, "{output}");
    assert!(output.contains("DAMAGE: content changed"), "{output}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_bundle_verifies_independently() {
    let dir = tempfile::tempdir().expect("directory");
    let (server, _) = two_checkpoints(dir.path()).await;
    let (path, mut value) = write_bundle(&server, dir.path(), None).await;
    assert_eq!(value["events"].as_array().map(Vec::len), Some(13));
    let (ok, output) = run_python_verifier(&path, &dir.path().join("published"));
    assert!(ok, "{output}");
    value["events"].as_array_mut().expect("events").remove(5);
    std::fs::write(&path, value.to_string()).expect("tampered bundle written");
    let (ok, output) = run_python_verifier(&path, &dir.path().join("published"));
    assert!(!ok, "{output}");
    assert!(output.contains("DAMAGE: event missing"), "{output}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_proves_inclusion_in_checkpoint() {
    let dir = tempfile::tempdir().expect("directory");
    let (mut server, first) = two_checkpoints(dir.path()).await;
    server
        .restart(Some(settings(dir.path(), "ledger.key", "published")))
        .await
        .expect("server restarts");
    let (status, receipt) = server
        .get(
            Some("hh"),
            &format!("/v1/ledger/applications/{first}/receipt"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{receipt}");
    assert_eq!(receipt["checkpoint"]["tree_size"], 13);
    let root =
        ledger::decode_hash(receipt["checkpoint"]["root"].as_str().expect("root")).expect("hex");
    let events = receipt["events"].as_array().expect("events");
    assert_eq!(events.len(), 4);
    for event in events {
        let index = event["leaf_index"].as_u64().expect("sealed");
        let leaf: Vec<u8> =
            sqlx::query_scalar("SELECT leaf_hash FROM ledger_leaves WHERE leaf_index = $1")
                .bind(index as i64)
                .fetch_one(server.pool())
                .await
                .expect("leaf");
        let proof: Vec<_> = event["inclusion_proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|hash| ledger::decode_hash(hash.as_str().expect("text")).expect("hex"))
            .collect();
        let leaf = leaf.try_into().expect("32 bytes");
        assert_eq!(
            merkle::root_from_inclusion(leaf, index, 13, &proof),
            Some(root),
            "{event}"
        );
    }
    let (status, other) = server
        .get(
            Some("hh9"),
            &format!("/v1/ledger/applications/{first}/receipt"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{other}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_proof_links_checkpoints() {
    let dir = tempfile::tempdir().expect("directory");
    let (mut server, _) = two_checkpoints(dir.path()).await;
    server
        .restart(Some(settings(dir.path(), "ledger.key", "published")))
        .await
        .expect("server restarts");
    let (status, answer) = server
        .get(Some("ld"), "/v1/ledger/consistency?old=8&new=13")
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    let hash = |value: &Value| ledger::decode_hash(value.as_str().expect("text")).expect("hex");
    let proof: Vec<_> = answer["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(hash)
        .collect();
    let old_root = hash(&answer["old"]["root"]);
    let new_root = hash(&answer["new"]["root"]);
    assert!(merkle::verify_consistency(
        8, &old_root, 13, &new_root, &proof
    ));
    assert!(!merkle::verify_consistency(
        8, &new_root, 13, &new_root, &proof
    ));
    let (status, latest) = server
        .get(Some("ld"), "/v1/ledger/checkpoints/latest")
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(latest, answer["new"]);
    for (query, field) in [
        ("old=x&new=13", "old"),
        ("old=8", "new"),
        ("old=13&new=8", "old"),
    ] {
        let (status, error) = server
            .get(Some("ld"), &format!("/v1/ledger/consistency?{query}"))
            .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["error"]["field"], field, "{query}");
    }
    let (status, error) = server
        .get(Some("ld"), "/v1/ledger/consistency?old=7&new=13")
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["error"]["code"], "checkpoint_not_found");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_export_commands_report() {
    let dir = tempfile::tempdir().expect("directory");
    let mut server =
        TestServer::start_with_ledger(Some(settings(dir.path(), "ledger.key", "published"))).await;
    let id = four_events(&server).await;
    server.stop_server().await;
    // The embedded database serves one client at a time: release the pool's connection.
    let database = server.database.take().expect("database is open");
    database.pool.close().await;
    let published = dir.path().join("published");
    let command = |args: &[&str]| {
        common::run_cli(
            args,
            &database.url,
            &[("ZHENGMING_CHECKPOINT_DIR", published.as_path())],
        )
    };
    let output = command(&["verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("verified 5 events in 2 chains"), "{stdout}");
    assert!(
        stdout.contains("1 checkpoint in the database and 1 exported"),
        "{stdout}"
    );
    let bundle_path = dir.path().join("case.json");
    let bundle_arg = bundle_path.to_str().expect("UTF-8 path");
    let output = command(&["export", "--out", bundle_arg, "--case", &id]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (ok, text) = run_python_verifier(&bundle_path, &dir.path().join("published"));
    assert!(ok, "{text}");
    let output = command(&["export", "--out", bundle_arg, "--case", "no-such-case"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("application no-such-case has no sealed event"),
        "{stderr}"
    );
    database.close().await;
    server.stop().await;
}

/// A second sealer of the same database waits as a standby while the first has the sealing lock,
/// then continues from the leaves the first stored once it stops. The embedded database serves
/// one process and seals without the lock. There the second sealer's round fails on the leaves
/// the first stored, and its next round continues from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealer_continues_from_leaves_another_stored() {
    let dir = tempfile::tempdir().expect("directory");
    let server = TestServer::start().await;
    four_events(&server).await;
    let mut first = Sealer::open(
        server.pool(),
        settings(dir.path(), "ledger.key", "published"),
    )
    .await
    .expect("first sealer opens");
    let mut second = Sealer::open(
        server.pool(),
        settings(dir.path(), "ledger.key", "published"),
    )
    .await
    .expect("second sealer opens");
    let sealed = first.seal().await.expect("first sealer seals");
    assert_eq!(sealed.map(|checkpoint| checkpoint.tree_size), Some(4));

    four_events(&server).await;
    let standby = second.seal().await;
    if server.database_url.is_some() {
        let standby = standby.expect("the standby round succeeds");
        assert_eq!(standby.map(|checkpoint| checkpoint.tree_size), None);
        drop(first);
    } else {
        // The second sealer's tree is still empty, so its leaves collide with the stored ones.
        assert!(standby.is_err(), "the stale round fails");
    }
    // The server ends the first sealer's session, and with it the lock, soon after its
    // connection closes.
    let mut sealed = None;
    for _ in 0..50 {
        sealed = second.seal().await.expect("second sealer takes over");
        if sealed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Four events of the first case, its checkpoint record, and four of the second.
    assert_eq!(sealed.map(|checkpoint| checkpoint.tree_size), Some(9));
    let report = audit_against(&server, Some(&published(dir.path()))).await;
    assert_eq!(report.first_damage, None, "{report:?}");
    server.stop().await;
}
