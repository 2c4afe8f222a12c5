//! Tampering with the event log as a database superuser, and `verify` naming the first damage.

mod common;

use aggregates::chain::Damage;
use common::{TestServer, kinship_request};
use serde_json::json;
use zhengming::verify::verify_all;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intact_log_verifies() {
    let server = TestServer::start().await;
    four_events(&server).await;
    four_events(&server).await;
    let report = verify_all(server.pool()).await.expect("verify runs");
    assert_eq!(report.first_break, None);
    assert_eq!(report.events, 8);
    assert_eq!(report.aggregates, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_only_trigger_rejects_changes() {
    let server = TestServer::start().await;
    let id = four_events(&server).await;
    for statement in [
        format!("UPDATE events SET payload = '{{}}' WHERE aggregate_id = '{id}'"),
        format!("DELETE FROM events WHERE aggregate_id = '{id}'"),
        "TRUNCATE events".to_string(),
    ] {
        let error = sqlx::query(&statement)
            .execute(server.pool())
            .await
            .expect_err("trigger rejects the change");
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(server.event_count().await, 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_payload_is_named() {
    let server = TestServer::start().await;
    let id = four_events(&server).await;
    let edit = format!(
        "UPDATE events SET payload = json_build_object('EvidenceChecked', json_build_object('source', 'household_archives', 'reference', 'FORGED', 'result', 'confirmed', 'officer', 'hh'))
          WHERE aggregate_id = '{id}' AND sequence = 3"
    );
    as_superuser(&server, &[edit]).await;
    let found = verify_all(server.pool())
        .await
        .expect("verify runs")
        .first_break
        .expect("damage is found");
    assert_eq!(found.aggregate_id, id);
    assert_eq!(found.sequence, 3);
    assert_eq!(found.damage, Damage::ContentChanged);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_event_is_named() {
    let server = TestServer::start().await;
    let id = four_events(&server).await;
    as_superuser(
        &server,
        &[format!(
            "DELETE FROM events WHERE aggregate_id = '{id}' AND sequence = 2"
        )],
    )
    .await;
    let found = verify_all(server.pool())
        .await
        .expect("verify runs")
        .first_break
        .expect("damage is found");
    assert_eq!(found.aggregate_id, id);
    assert_eq!(found.sequence, 2);
    assert_eq!(found.damage, Damage::EventMissing);
    server.stop().await;
}

/// Chains are defined in sequence order: events whose places in the commit order were swapped
/// within one aggregate still form an intact chain, although a pass in commit order meets them
/// out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_positions_keep_chains_intact() {
    let server = TestServer::start().await;
    let id = four_events(&server).await;
    four_events(&server).await;
    let position = |sequence: i64| {
        sqlx::query_scalar::<_, i64>(
            "SELECT global_position FROM events WHERE aggregate_id = $1 AND sequence = $2",
        )
        .bind(id.clone())
        .bind(sequence)
        .fetch_one(server.pool())
    };
    let second = position(2).await.expect("sequence 2 is stored");
    let third = position(3).await.expect("sequence 3 is stored");
    let swap = [
        format!(
            "UPDATE events e SET transaction_id = o.transaction_id FROM events o
              WHERE (e.global_position, o.global_position) IN (({second}, {third}), ({third}, {second}))"
        ),
        format!("UPDATE events SET global_position = -1 WHERE global_position = {second}"),
        format!("UPDATE events SET global_position = {second} WHERE global_position = {third}"),
        format!("UPDATE events SET global_position = {third} WHERE global_position = -1"),
    ];
    as_superuser(&server, &swap).await;
    assert_eq!(position(2).await.expect("sequence 2 is stored"), third);
    let report = verify_all(server.pool()).await.expect("verify runs");
    assert_eq!(report.first_break, None);
    assert_eq!(report.events, 8);
    assert_eq!(report.aggregates, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_events_are_named() {
    let server = TestServer::start().await;
    let id = four_events(&server).await;
    let swap = [
        format!("UPDATE events SET sequence = 100 WHERE aggregate_id = '{id}' AND sequence = 2"),
        format!("UPDATE events SET sequence = 2 WHERE aggregate_id = '{id}' AND sequence = 3"),
        format!("UPDATE events SET sequence = 3 WHERE aggregate_id = '{id}' AND sequence = 100"),
    ];
    as_superuser(&server, &swap).await;
    let found = verify_all(server.pool())
        .await
        .expect("verify runs")
        .first_break
        .expect("damage is found");
    assert_eq!(found.aggregate_id, id);
    assert_eq!(found.sequence, 2);
    assert_eq!(found.damage, Damage::OrderChanged);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reports_damage() {
    let server = TestServer::start().await;
    let id = four_events(&server).await;
    as_superuser(
        &server,
        &[format!(
            "DELETE FROM events WHERE aggregate_id = '{id}' AND sequence = 3"
        )],
    )
    .await;
    let (status, history) = server
        .get(
            Some("hh"),
            &format!("/v1/applications/{id}/history?purpose=missing+event"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(history["chain_verified"], false);
    assert_eq!(history["first_break"]["damage"], "event_missing");
    assert_eq!(history["first_break"]["sequence"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_command_names_damage_and_fails() {
    let mut server = TestServer::start().await;
    let id = four_events(&server).await;
    as_superuser(
        &server,
        &[format!(
            "DELETE FROM events WHERE aggregate_id = '{id}' AND sequence = 2"
        )],
    )
    .await;
    server
        .server
        .take()
        .expect("server runs")
        .stop()
        .await
        .expect("server stops");
    // The embedded database serves one client at a time: release the pool's connection so
    // that the command can connect.
    let database = server.database.take().expect("database is open");
    database.pool.close().await;
    let output = common::run_cli(&["verify"], &database.url, &[]);
    database.close().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "verify exits 2 on damage: {stdout} {stderr}"
    );
    assert!(
        stdout.contains(&format!("event missing at application {id} sequence 2")),
        "{stdout}"
    );
    server.stop().await;
}
