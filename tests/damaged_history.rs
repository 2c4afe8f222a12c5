//! The API's behaviour when a row was forged or history was changed behind its back: it reads
//! from the verified event log, and rejects appends to a chain that fails verification.

mod common;

use aggregates::chain::{self, StoredEvent};
use common::{TestServer, kinship_request};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Issues a kinship certificate; returns the application id and the certificate number.
async fn issued_certificate(server: &TestServer) -> (String, String) {
    let id = server.submit("hh", kinship_request()).await;
    let base = format!("/v1/applications/{id}");
    let steps = [
        (
            "evidence",
            json!({"source": "household_archives", "reference": "A-1", "result": "confirmed"}),
        ),
        (
            "signature",
            json!({"signer": "applicant", "name": "张伟", "phone": "13904310000"}),
        ),
        (
            "issuance",
            json!({"seal": "household_seal", "date": "2026-11-03"}),
        ),
    ];
    let mut last = Value::Null;
    for (step, body) in steps {
        let (status, answer) = server.post("hh", &format!("{base}/{step}"), body).await;
        assert_eq!(status, StatusCode::OK, "{step}: {answer}");
        last = answer;
    }
    let number = last["certificate_number"].as_str().expect("number");
    (id, number.to_string())
}

/// Waits until the public check finds `number` or a second has passed; returns the last answer.
async fn public_check(server: &TestServer, number: &str) -> (StatusCode, Value) {
    let path = format!("/v1/certificates/{number}");
    let mut answer = server.get(None, &path).await;
    for _ in 0..50 {
        if answer.0 != StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        answer = server.get(None, &path).await;
    }
    answer
}

/// Runs SQL with the append-only triggers disabled, as a superuser could.
async fn as_superuser(server: &TestServer, statement: &str) {
    let mut tx = server.pool().begin().await.expect("transaction");
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .expect("superuser disables triggers");
    sqlx::query(statement)
        .execute(&mut *tx)
        .await
        .expect("tampering statement runs");
    tx.commit().await.expect("tampering commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_certificate_row_is_rejected() {
    let server = TestServer::start().await;
    let (id, number) = issued_certificate(&server).await;
    let (status, answer) = public_check(&server, &number).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // A row naming a real application under another number, and one naming no application.
    let unissued = server.submit("hh", kinship_request()).await;
    for (forged, application) in [("S1-2026-99999999", &id), ("S1-2026-99999998", &unissued)] {
        sqlx::query(
            "INSERT INTO certificate_view (certificate_number, application_id, kind, station_code, issued_on, status)
             VALUES ($1, $2, 'kinship', 'S1', '2026-11-03', 'valid')",
        )
        .bind(forged)
        .bind(application)
        .execute(server.pool())
        .await
        .expect("forged row is written");
        let (status, answer) = server
            .get(None, &format!("/v1/certificates/{forged}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{forged}: {answer}");
        assert_eq!(answer["error"]["code"], "certificate_not_found");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_history_blocks_commands() {
    let server = TestServer::start().await;
    let (issued, number) = issued_certificate(&server).await;
    assert_eq!(public_check(&server, &number).await.0, StatusCode::OK);
    let open = server.submit("hh", kinship_request()).await;
    for id in [&issued, &open] {
        as_superuser(
            &server,
            &format!(
                "UPDATE events SET payload = json_build_object('ApplicationSubmitted', (payload->'ApplicationSubmitted')::jsonb || '{{\"purpose\": \"rewritten\"}}'::jsonb)
                  WHERE aggregate_id = '{id}' AND sequence = 1"
            ),
        )
        .await;
    }
    let before = server.event_count().await;

    let (status, answer) = server
        .post(
            "hh",
            &format!("/v1/applications/{open}/evidence"),
            json!({"source": "household_archives", "reference": "A-9", "result": "confirmed"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "history_damaged");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("sequence 1"), "{message}");
    assert_eq!(server.event_count().await, before, "nothing is appended");

    let (status, answer) = server
        .get(Some("hh"), &format!("/v1/applications/{open}"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "history_damaged");

    // The history is still shown, with the damage named, so that it can be examined.
    let (status, history) = server
        .get(
            Some("hh"),
            &format!("/v1/applications/{open}/history?purpose=damage+report"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["chain_verified"], false);
    assert_eq!(history["first_break"]["sequence"], 1);
    assert_eq!(history["first_break"]["damage"], "content_changed");

    // The public check does not vouch for a certificate whose history fails verification.
    let (status, answer) = server
        .get(None, &format!("/v1/certificates/{number}"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "history_damaged");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_read_log_blocks_reads() {
    let server = TestServer::start().await;
    let id = server.submit("hh", kinship_request()).await;
    let history = format!("/v1/applications/{id}/history?purpose=applicant+asks+for+a+copy");
    let (status, answer) = server.get(Some("hh"), &history).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    as_superuser(
        &server,
        &format!(
            "UPDATE events SET payload = jsonb_set(payload::jsonb, '{{ApplicationRead,purpose}}', '\"rewritten\"')::json
              WHERE aggregate_type = 'application_reads' AND aggregate_id = '{id}'"
        ),
    )
    .await;
    let before = server.event_count().await;

    // No read can be recorded on the damaged log, so the history is not shown, and the error
    // names the read log rather than the application.
    let (status, answer) = server.get(Some("hh"), &history).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "read_log_damaged");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("application_reads"), "{message}");
    assert!(
        message.contains("content changed at sequence 1"),
        "{message}"
    );
    assert_eq!(server.event_count().await, before, "nothing is appended");
    let (status, answer) = server
        .get(Some("hh"), &format!("/v1/applications/{id}"))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the application itself is intact: {answer}"
    );

    // An application event that no longer decodes still leaves the history readable.
    let odd = server.submit("hh", kinship_request()).await;
    as_superuser(
        &server,
        &format!(
            "UPDATE events SET payload = '{{\"Bogus\": {{}}}}'::json
              WHERE aggregate_type = 'application' AND aggregate_id = '{odd}' AND sequence = 2"
        ),
    )
    .await;
    let (status, answer) = server
        .get(
            Some("hh"),
            &format!("/v1/applications/{odd}/history?purpose=damage+report"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["chain_verified"], false);
    assert_eq!(answer["first_break"]["sequence"], 2);
    assert_eq!(answer["events"][1]["payload"], json!({"Bogus": {}}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_event_refuses_commands() {
    let server = TestServer::start().await;
    let id = server.submit("hh", kinship_request()).await;
    // An event of a type this version does not know, well linked after the last one: what a
    // newer version leaves behind when the server is rolled back.
    let (sequence, head): (i64, String) = sqlx::query_as(
        "SELECT sequence, metadata->>$2 FROM events
          WHERE aggregate_type = 'application' AND aggregate_id = $1
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&id)
    .bind(chain::HASH_KEY)
    .fetch_one(server.pool())
    .await
    .expect("last event is read");
    let mut newer = StoredEvent {
        aggregate_type: "application".into(),
        aggregate_id: id.clone(),
        sequence: sequence as u64 + 1,
        event_type: "ApplicationArchived".into(),
        event_version: "9.0".into(),
        payload: json!({"ApplicationArchived": {"archive": "A-7"}}),
        metadata: json!({"actor": "hh", "actor_role": "household_officer", "actor_station": "S1"}),
    };
    chain::link(&mut newer, &head).expect("event links");
    server.insert_event(&newer).await;
    let before = server.event_count().await;

    let evidence =
        json!({"source": "household_archives", "reference": "A-1", "result": "confirmed"});
    let (status, answer) = server
        .post("hh", &format!("/v1/applications/{id}/evidence"), evidence)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "history_undecodable");
    let message = answer["error"]["message"].as_str().expect("message");
    let named = format!(
        "event {} of this record (ApplicationArchived version 9.0)",
        sequence + 1
    );
    assert!(message.contains(&named), "{message}");
    assert_eq!(server.event_count().await, before, "nothing is appended");

    // The chain itself verifies, and the history shows the event as stored.
    let (status, answer) = server
        .get(
            Some("hh"),
            &format!("/v1/applications/{id}/history?purpose=damage+report"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["chain_verified"], true, "{answer}");
    let events = answer["events"].as_array().expect("events");
    assert_eq!(
        events.last().map(|event| &event["payload"]),
        Some(&newer.payload)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_exchange_record_is_rejected() {
    let server = TestServer::start().await;
    let department = json!({"code": "civil", "name": "民政局", "kind": "civil_affairs"});
    let (status, answer) = server
        .post("ld", "/v1/exchange/departments", department)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    as_superuser(
        &server,
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{DepartmentRegistered,kind}', '\"court\"')::json
          WHERE aggregate_type = 'exchange_department' AND aggregate_id = 'civil'",
    )
    .await;

    // The changed kind would let the department verify criminal records.
    let before = server.event_count().await;
    let agreement = json!({
        "household_unit": "K1", "department": "civil", "cadence": "ad_hoc",
        "items": ["name", "criminal_record"],
    });
    let (status, answer) = server
        .post("ld", "/v1/exchange/agreements", agreement)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "history_damaged");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}
