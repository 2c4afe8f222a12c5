//! The supervision projection against a real database: a failed batch and a restart, rebuild
//! against the incremental result, findings of imported histories, and the inspector API.

mod common;

use std::time::Duration;

use aggregates::application::{ApplicationEvent, Person};
use aggregates::application_reads::{ApplicationReadEvent, ReadView};
use aggregates::chain::{self, GENESIS_HASH, StoredEvent};
use aggregates::id_number::IdNumber;
use aggregates::policy::{Circumstances, Policy, PolicyBook, RequestingUnit, Role, bundled};
use aggregates::record_check::{CheckResult, RecordCheckEvent};
use aggregates::unit_visit::{IntroductionLetter, Unit, UnitVisitEvent};
use chrono::NaiveDate;
use common::{TestServer, death_request, kinship_request};
use cqrs_es::DomainEvent;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zhengming::registry::{self, Officer};

fn policies() -> PolicyBook {
    PolicyBook::new(Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("policy loads"))
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

/// Appends `events` to application `id` as a correctly linked chain, bypassing the command
/// handlers: a history imported from paper records or written under an older policy.
async fn import_history(server: &TestServer, id: &str, events: Vec<(ApplicationEvent, &str)>) {
    import_events(server, "application", id, events).await;
}

/// Appends `events`, each with the role recorded as its actor's, to aggregate `id` of
/// `aggregate_type` as a correctly linked chain, bypassing the command handlers.
async fn import_events<E: DomainEvent>(
    server: &TestServer,
    aggregate_type: &str,
    id: &str,
    events: Vec<(E, &str)>,
) {
    let mut prev_hash = GENESIS_HASH.to_string();
    for (index, (event, role)) in events.into_iter().enumerate() {
        let mut stored = StoredEvent {
            aggregate_type: aggregate_type.into(),
            aggregate_id: id.into(),
            sequence: index as u64 + 1,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(&event).expect("event encodes"),
            metadata: json!({"actor": "import", "actor_role": role, "actor_station": "S1"}),
        };
        prev_hash = chain::link(&mut stored, &prev_hash).expect("event links");
        server.insert_event(&stored).await;
    }
}

/// Submission and screening of a kinship request at station S1, handled by `hh`.
fn submitted(same_register: bool) -> Vec<(ApplicationEvent, &'static str)> {
    let unit = RequestingUnit {
        name: "Bank of China".into(),
        unit_type: "bank".into(),
        level: "city".into(),
        provincial_rule_requires: true,
    };
    let circumstances = Circumstances::from([("same_household_register".into(), same_register)]);
    let decision = policies()
        .current()
        .screen("kinship", &unit, &circumstances, date("2026-11-02"))
        .expect("screening decides");
    let applicant = Person {
        name: "张伟".into(),
        id_number: IdNumber::parse("220102199001011239").expect("valid id"),
    };
    vec![
        (
            ApplicationEvent::ApplicationSubmitted {
                applicant,
                agent: None,
                unit,
                matter: "kinship".into(),
                circumstances,
                purpose: "transfer".into(),
                station: "S1".into(),
                decision_date: date("2026-11-02"),
                handling_officer: "hh".into(),
            },
            "household_officer",
        ),
        (
            ApplicationEvent::ApplicationScreened { decision },
            "household_officer",
        ),
    ]
}

/// Returns a kinship certificate issued by a community officer under the official seal, with no
/// evidence check and no signed stub: four rules broken by one event.
fn improper_issuance() -> Vec<(ApplicationEvent, &'static str)> {
    let mut events = submitted(false);
    events.push((
        ApplicationEvent::CertificateIssued {
            certificate_number: "IMPORTED-1".into(),
            kind: "kinship".into(),
            seal: "official_seal".into(),
            officer: "cm".into(),
            station: "S1".into(),
            issued_on: date("2026-11-03"),
            transitional: false,
        },
        "community_officer",
    ));
    events
}

/// Returns a refusal with a two-character explanation.
fn unexplained_refusal() -> Vec<(ApplicationEvent, &'static str)> {
    let mut events = submitted(true);
    events.push((
        ApplicationEvent::ApplicationRefused {
            principle: "legal_document".into(),
            referral: "出示户口簿".into(),
            explanation: "不行".into(),
            cannot_issue: false,
            officer: "hh".into(),
            refused_on: date("2026-11-03"),
        },
        "household_officer",
    ));
    events
}

type FindingRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    NaiveDate,
    String,
    Value,
);

async fn findings(server: &TestServer) -> Vec<FindingRow> {
    sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, rule, station_code, officer_id, occurred_on, detail, evidence
           FROM supervision_findings ORDER BY aggregate_type, aggregate_id, rule, occurrence",
    )
    .fetch_all(server.pool())
    .await
    .expect("findings read")
}

fn rules_of(rows: &[FindingRow], id: &str) -> Vec<String> {
    rows.iter()
        .filter(|row| row.1 == id)
        .map(|row| row.2.clone())
        .collect()
}

async fn checkpoint(server: &TestServer) -> projections::projector::Checkpoint {
    projections::supervision::lag(server.pool())
        .await
        .expect("lag reads")
        .checkpoint
}

async fn run_sql(server: &TestServer, statement: &str) {
    sqlx::query(statement)
        .execute(server.pool())
        .await
        .expect("statement runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_batch_resumes_without_loss() {
    let mut server = TestServer::start().await;
    let issued = server.submit("hh", kinship_request()).await;
    // The projector of a running server would race the batches below.
    server.stop_server().await;
    let policies = policies();
    projections::supervision::catch_up(server.pool(), &policies)
        .await
        .expect("projection catches up");
    let before = checkpoint(&server).await;
    assert!(before.global_position > 0, "the submission was projected");

    import_history(&server, "imported-issuance", improper_issuance()).await;
    import_history(&server, "imported-refusal", unexplained_refusal()).await;
    // Fail the batch after its first findings were written, as a crash would.
    run_sql(
        &server,
        "CREATE FUNCTION fail_seal_finding() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
    )
    .await;
    run_sql(
        &server,
        "CREATE TRIGGER fail_seal_finding BEFORE INSERT ON supervision_findings FOR EACH ROW
         WHEN (NEW.rule = 'issued_wrong_seal') EXECUTE FUNCTION fail_seal_finding()",
    )
    .await;
    // The imported events are read only once every older transaction of the database has ended.
    let readable =
        projections::projector::wait_until_readable(server.pool(), before, Duration::from_secs(30))
            .await
            .expect("log reads");
    assert!(readable, "the imported events can be read");
    let failed = projections::supervision::apply_next_batch(server.pool(), &policies, 100).await;
    assert!(failed.is_err(), "the injected failure fails the batch");
    assert_eq!(checkpoint(&server).await, before, "checkpoint did not move");
    assert!(
        findings(&server).await.is_empty(),
        "no finding of the batch was kept"
    );
    let cases: i64 = sqlx::query_scalar("SELECT count(*) FROM supervision_cases")
        .fetch_one(server.pool())
        .await
        .expect("count cases");
    assert_eq!(cases, 1, "only the case projected before the failure");

    run_sql(
        &server,
        "DROP TRIGGER fail_seal_finding ON supervision_findings",
    )
    .await;
    // Resume in small batches, so that the imported case spans two transactions.
    let applied = projections::supervision::apply_next_batch(server.pool(), &policies, 2)
        .await
        .expect("batch applies");
    assert_eq!(applied, 2);
    projections::supervision::catch_up(server.pool(), &policies)
        .await
        .expect("projection catches up");
    let resumed = findings(&server).await;
    assert_eq!(
        rules_of(&resumed, "imported-issuance"),
        vec![
            "issued_without_evidence",
            "issued_without_signature",
            "issued_wrong_role",
            "issued_wrong_seal",
        ]
    );
    assert_eq!(
        rules_of(&resumed, "imported-refusal"),
        vec!["refusal_unexplained"]
    );
    assert_eq!(resumed.len(), 5);
    let wrong_seal = resumed
        .iter()
        .find(|row| row.2 == "issued_wrong_seal")
        .expect("wrong seal finding");
    assert_eq!(wrong_seal.3.as_deref(), Some("S1"));
    assert_eq!(wrong_seal.4, "cm");
    assert_eq!(wrong_seal.7[0]["aggregate_id"], "imported-issuance");
    assert_eq!(wrong_seal.7[0]["sequence"], 3);
    assert!(wrong_seal.7[0]["global_position"].as_i64().unwrap_or(0) > before.global_position);

    let again = projections::supervision::catch_up(server.pool(), &policies)
        .await
        .expect("catch up runs");
    assert_eq!(again, 0, "nothing is applied twice");
    assert_eq!(
        findings(&server).await,
        resumed,
        "no finding is counted twice"
    );
    let lag = projections::supervision::lag(server.pool())
        .await
        .expect("lag reads");
    assert_eq!(lag.behind, 0);

    let today = date("2026-11-04");
    projections::supervision::rebuild(server.pool(), &policies, today)
        .await
        .expect("rebuild runs");
    assert_eq!(
        findings(&server).await,
        resumed,
        "rebuild equals the resumed result"
    );
    assert!(rules_of(&resumed, &issued).is_empty());
    server.stop().await;
}

/// Waits until both projections of a running server reach the head of the log.
async fn settle(server: &TestServer) {
    for _ in 0..200 {
        let views = projections::projector::lag(server.pool())
            .await
            .expect("lag");
        let supervision = projections::supervision::lag(server.pool())
            .await
            .expect("lag");
        if views.behind == 0 && supervision.behind == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("projections did not catch up within 10 seconds");
}

async fn step(server: &TestServer, officer: &str, id: &str, name: &str, body: Value) {
    let (status, answer) = server
        .post(officer, &format!("/v1/applications/{id}/{name}"), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{name}: {answer}");
}

/// Issues a kinship application on `day`.
async fn issue_kinship(server: &TestServer, day: &str) -> String {
    let id = server.submit("hh", kinship_request()).await;
    let evidence =
        json!({"source": "household_archives", "reference": "A-1", "result": "confirmed"});
    step(server, "hh", &id, "evidence", evidence).await;
    let signature = json!({"signer": "applicant", "name": "张伟", "phone": "13904310000"});
    step(server, "hh", &id, "signature", signature).await;
    let issuance = json!({"seal": "household_seal", "date": day});
    step(server, "hh", &id, "issuance", issuance).await;
    id
}

/// Adds inspector `insp`, recorded at station S2, and returns the server with its token.
async fn with_inspector(mut server: TestServer) -> TestServer {
    let inspector = Officer {
        id: "insp".into(),
        name: "inspector".into(),
        role: Role::Inspector,
    };
    registry::add_officer(server.pool(), &inspector, "S2")
        .await
        .expect("inspector is recorded");
    let token = registry::create_token(server.pool(), "insp")
        .await
        .expect("token is created");
    server.tokens.insert("insp".into(), token);
    server
}

/// Application ids of a month at S1: issued on time, issued late, still open, refused after a
/// justified override, and overridden from a refusal to an issuance and still open. One more
/// application stays open at S2.
struct Month {
    on_time: String,
    late: String,
    open: String,
    refused: String,
    overridden: String,
}

async fn month(server: &TestServer) -> Month {
    let on_time = issue_kinship(server, "2026-11-03").await;
    let late = issue_kinship(server, "2026-11-20").await;
    let open = server.submit("hh", kinship_request()).await;
    let refused = server.submit("hh", kinship_request()).await;
    let outcome = json!({"outcome": "refuse", "principle": "legal_document", "referral": "出示户口簿",
                         "justification": "申请人户口簿已载明关系，所领导同意不予出具。"});
    step(server, "hh", &refused, "override", outcome).await;
    let refusal = json!({"explanation": "户口簿已载明亲属关系，请出示户口簿。", "referral": "出示户口簿", "date": "2026-11-04"});
    step(server, "hh", &refused, "refusal", refusal).await;
    let mut same_register = kinship_request();
    same_register["circumstances"]["same_household_register"] = json!(true);
    let overridden = server.submit("hh", same_register).await;
    let outcome = json!({"outcome": "issue", "kind": "kinship",
                         "justification": "申请人户口簿遗失，所领导同意出具亲属关系证明。"});
    let (status, answer) = server
        .post(
            "hh",
            &format!("/v1/applications/{overridden}/override"),
            outcome,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Decided on Monday 2026-11-02: a kinship certificate is due three working days later.
    assert_eq!(answer["promised_date"], "2026-11-05", "{answer}");
    let (status, answer) = server
        .post("hh9", "/v1/applications", kinship_request())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    settle(server).await;
    Month {
        on_time,
        late,
        open,
        refused,
        overridden,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_equals_incremental_findings() {
    let mut server = TestServer::start().await;
    let cases = month(&server).await;
    // Stop the server's own sweep, which counts from the real date. It may have run once
    // before the stop: take back what it found on open cases, so that the sweeps below count
    // from a fixed date.
    server.stop_server().await;
    sqlx::query(
        "DELETE FROM supervision_findings f USING supervision_cases c
          WHERE f.aggregate_type = c.aggregate_type AND f.aggregate_id = c.aggregate_id
            AND c.due_on IS NOT NULL AND f.rule IN ('overdue', 'feedback_late')",
    )
    .execute(server.pool())
    .await
    .expect("server's sweep findings removed");
    let due_on = |id: String| {
        let pool = server.pool().clone();
        async move {
            sqlx::query_scalar::<_, Option<NaiveDate>>(
                "SELECT due_on FROM supervision_cases WHERE aggregate_type = 'application' AND aggregate_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("case is projected")
        }
    };
    assert!(
        due_on(cases.open.clone()).await.is_some(),
        "open case is due"
    );
    assert_eq!(
        due_on(cases.on_time.clone()).await,
        None,
        "issued case is not due"
    );
    assert_eq!(
        due_on(cases.refused.clone()).await,
        None,
        "refused case is not due"
    );
    let today = date("2026-11-30");
    let added = projections::supervision::sweep(server.pool(), today)
        .await
        .expect("sweep runs");
    // The open and the overridden applications at S1 and the one at S2 are past their promised
    // date.
    assert_eq!(added, Some(3));
    let again = projections::supervision::sweep(server.pool(), today)
        .await
        .expect("sweep runs");
    assert_eq!(again, Some(0), "a second sweep adds nothing");
    let incremental = findings(&server).await;
    assert!(rules_of(&incremental, &cases.on_time).is_empty());
    assert_eq!(rules_of(&incremental, &cases.late), vec!["overdue"]);
    assert_eq!(rules_of(&incremental, &cases.open), vec!["overdue"]);
    assert_eq!(
        rules_of(&incremental, &cases.refused),
        vec!["refused_issuable"]
    );
    assert_eq!(rules_of(&incremental, &cases.overridden), vec!["overdue"]);
    assert_eq!(incremental.len(), 5);

    projections::supervision::rebuild(server.pool(), &policies(), today)
        .await
        .expect("rebuild runs");
    assert_eq!(
        findings(&server).await,
        incremental,
        "rebuild equals incremental"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backdated_closing_clears_overdue() {
    let server = TestServer::start().await;
    let id = server.submit("hh", kinship_request()).await;
    settle(&server).await;
    projections::supervision::sweep(server.pool(), date("2026-11-30"))
        .await
        .expect("sweep runs");
    assert_eq!(rules_of(&findings(&server).await, &id), vec!["overdue"]);
    // The withdrawal, entered later from a paper form, is dated on the day of the decision,
    // before the promised date.
    step(
        &server,
        "hh",
        &id,
        "withdrawal",
        json!({"reason": "no longer needed", "date": "2026-11-02"}),
    )
    .await;
    settle(&server).await;
    assert!(rules_of(&findings(&server).await, &id).is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_api_scopes_readers() {
    let server = with_inspector(TestServer::start().await).await;
    let cases = month(&server).await;
    import_history(&server, "imported-refusal", unexplained_refusal()).await;
    settle(&server).await;

    let (status, own) = server.get(Some("ld"), "/v1/supervision/findings").await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let ids: Vec<&str> = own["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|finding| finding["aggregate_id"].as_str().unwrap_or_default())
        .collect();
    assert!(ids.contains(&cases.late.as_str()));
    assert!(ids.contains(&"imported-refusal"));
    assert_eq!(own["count"], ids.len());
    assert_eq!(own["lag"]["events"], 0);
    let refusal = own["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|finding| finding["rule"] == "refusal_unexplained")
        .expect("unexplained refusal is listed");
    assert_eq!(refusal["evidence"][0]["event_type"], "ApplicationRefused");
    assert_eq!(refusal["evidence"][0]["sequence"], 3);

    let (status, filtered) = server
        .get(
            Some("ld"),
            "/v1/supervision/findings?officer=hh&from=2026-11-04&to=2026-11-04",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{filtered}");
    let rules: Vec<&str> = filtered["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|finding| finding["rule"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        rules,
        vec!["refused_issuable"],
        "only the refusal of 4 November"
    );

    let (status, other) = server
        .get(Some("ld"), "/v1/supervision/findings?station=S2")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{other}");
    // A repeated parameter is rejected rather than read as its last value.
    let (status, answer) = server
        .get(
            Some("insp"),
            "/v1/supervision/findings?station=S1&station=S2",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_query");
    assert_eq!(answer["error"]["field"], "station");
    let (status, answer) = server.get(Some("hh"), "/v1/supervision/findings").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = server.get(None, "/v1/supervision/findings").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");

    let (status, lag) = server.get(Some("ld"), "/v1/supervision/lag").await;
    assert_eq!(status, StatusCode::OK, "{lag}");
    assert_eq!(lag["events"], 0);
    assert_eq!(lag["checkpoint"], lag["head"]);
    let (status, answer) = server.get(Some("hh"), "/v1/supervision/lag").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    let (status, all) = server.get(Some("insp"), "/v1/supervision/findings").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let (status, s1) = server
        .get(Some("insp"), "/v1/supervision/findings?station=S1")
        .await;
    assert_eq!(status, StatusCode::OK, "{s1}");
    assert_eq!(
        s1["count"], own["count"],
        "the inspector reads what the leader reads"
    );
    let (status, s2) = server
        .get(Some("insp"), "/v1/supervision/findings?station=S2")
        .await;
    assert_eq!(status, StatusCode::OK, "{s2}");
    let total = all["count"].as_u64().unwrap_or(0);
    let per_station = s1["count"].as_u64().unwrap_or(0) + s2["count"].as_u64().unwrap_or(0);
    assert_eq!(
        total, per_station,
        "every station's findings are in the full list"
    );

    for (query, field) in [
        ("from=2026-13-01", "from"),
        ("from=2026-11-05&to=2026-11-01", "from"),
        ("rule=late", "rule"),
        ("station=S9", "station"),
        ("stations=S1", "stations"),
    ] {
        let (status, answer) = server
            .get(Some("insp"), &format!("/v1/supervision/findings?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{query}");
    }
    server.stop().await;
}

/// Purpose stated with every replay: it shows identity numbers unmasked.
const PURPOSE: &str = "purpose=inspection+of+station+S1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_shows_state_per_step() {
    let server = with_inspector(TestServer::start().await).await;
    let id = server.submit("cm", death_request()).await;
    let evidence =
        json!({"source": "station_dispatch_records", "reference": "D-1", "result": "confirmed"});
    step(&server, "cm", &id, "evidence", evidence).await;
    settle(&server).await;

    let (status, replay) = server
        .get(
            Some("insp"),
            &format!("/v1/supervision/applications/{id}/replay?{PURPOSE}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["chain_verified"], true);
    assert_eq!(replay["station"], "S1");
    let steps = replay["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["event_type"], "ApplicationSubmitted");
    assert_eq!(steps[0]["state"]["status"], "not_submitted");
    assert_eq!(steps[1]["state"]["status"], "accepted");
    assert_eq!(
        steps[1]["state"]["evidence"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(
        steps[2]["state"]["evidence"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(steps[1]["prev_hash"], steps[0]["hash"]);
    assert_eq!(steps[2]["prev_hash"], steps[1]["hash"]);
    assert_eq!(replay["read_by"], "insp");
    assert_eq!(replay["read_purpose"], "inspection of station S1");

    let (status, answer) = server
        .get(
            Some("ld"),
            &format!("/v1/supervision/applications/{id}/replay?{PURPOSE}"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the station's leader reads it: {answer}"
    );
    let (status, answer) = server
        .get(
            Some("cm"),
            &format!("/v1/supervision/applications/{id}/replay?{PURPOSE}"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let s2 = server.submit("hh9", kinship_request()).await;
    let (status, answer) = server
        .get(
            Some("ld"),
            &format!("/v1/supervision/applications/{s2}/replay?{PURPOSE}"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another station's case: {answer}"
    );
    let (status, answer) = server
        .get(
            Some("insp"),
            &format!("/v1/supervision/applications/missing/replay?{PURPOSE}"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    // The replay shows identity numbers unmasked, so it needs a purpose. Every read is recorded
    // on the application's read chain, and a rejected read records nothing.
    let (status, answer) = server
        .get(
            Some("insp"),
            &format!("/v1/supervision/applications/{id}/replay"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "purpose");
    let readers: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'ApplicationRead'->>'reader' FROM events
          WHERE aggregate_type = 'application_reads' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(server.pool())
    .await
    .expect("reads are listed");
    assert_eq!(readers, ["insp", "ld"]);

    // An event altered after the fact shows as a chain break.
    run_sql(
        &server,
        "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete",
    )
    .await;
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{EvidenceChecked,reference}', '\"D-2\"')::json
          WHERE aggregate_type = 'application' AND aggregate_id = $1 AND sequence = 3",
    )
    .bind(&id)
    .execute(server.pool())
    .await
    .expect("payload is altered");
    let (status, damaged) = server
        .get(
            Some("insp"),
            &format!("/v1/supervision/applications/{id}/replay?{PURPOSE}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{damaged}");
    assert_eq!(damaged["chain_verified"], false);
    assert_eq!(damaged["first_break"]["sequence"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspector_cannot_submit_applications() {
    let server = with_inspector(TestServer::start().await).await;
    let before = server.event_count().await;
    let (status, answer) = server
        .post("insp", "/v1/applications", kinship_request())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "inspector_reads_only");
    assert_eq!(server.event_count().await, before, "nothing is recorded");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_projection_lag() {
    let server = TestServer::start().await;
    server.submit("hh", kinship_request()).await;
    settle(&server).await;
    let (status, health) = server.get(None, "/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["projections"]["supervision"]["lag"], 0);
    assert_eq!(health["projections"]["applications"]["lag"], 0);
    assert!(
        health["projections"]["supervision"]["head"]
            .as_i64()
            .unwrap_or(0)
            >= 2
    );
    server.stop().await;
}

/// Flattens a compliance report to `(metric, key) -> value` as the CSV lays it out.
fn flatten_json(report: &Value) -> std::collections::BTreeMap<(String, String), String> {
    let mut flat = std::collections::BTreeMap::new();
    for (metric, value) in report.as_object().expect("report is an object") {
        let mut put = |key: &str, text: String| {
            flat.insert((metric.clone(), key.to_string()), text);
        };
        match value {
            Value::Object(counts) => {
                for (key, count) in counts {
                    put(key, count.to_string());
                }
            }
            Value::Array(items) => {
                let codes: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                put("", codes.join(" "));
            }
            Value::String(text) => put("", text.clone()),
            Value::Null => put("", String::new()),
            number => put("", number.to_string()),
        }
    }
    flat
}

fn parse_csv(text: &str) -> std::collections::BTreeMap<(String, String), String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header row").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        vec!["metric", "key", "value"]
    );
    reader
        .records()
        .map(|record| {
            let record = record.expect("CSV row parses");
            (
                (record[0].to_string(), record[1].to_string()),
                record[2].to_string(),
            )
        })
        .collect()
}

/// Reads the `<tr><td>metric</td><td>key</td><td class="value">value</td></tr>` rows of the
/// printable report.
fn html_rows(html: &str) -> std::collections::BTreeMap<(String, String), String> {
    let unescape = |text: &str| {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    html.lines()
        .filter_map(|line| line.strip_prefix("<tr><td>")?.strip_suffix("</td></tr>"))
        .map(|row| {
            let (metric, rest) = row.split_once("</td><td>").expect("metric cell");
            let (key, value) = rest
                .split_once("</td><td class=\"value\">")
                .expect("value cell");
            ((unescape(metric), unescape(key)), unescape(value))
        })
        .collect()
}

async fn get_text(server: &TestServer, officer: &str, path: &str) -> (StatusCode, String, String) {
    let response = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.tokens[officer])
        .send()
        .await
        .expect("server answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_csv_equals_json() {
    let server = with_inspector(TestServer::start().await).await;
    month(&server).await;
    import_history(&server, "imported-refusal", unexplained_refusal()).await;
    settle(&server).await;
    projections::supervision::sweep(server.pool(), date("2026-11-30"))
        .await
        .expect("sweep runs");
    let path = "/v1/supervision/compliance?level=county&code=K1&from=2026-11-01&to=2026-11-30";

    let (status, json_report) = server.get(Some("insp"), path).await;
    assert_eq!(status, StatusCode::OK, "{json_report}");
    assert_eq!(json_report["stations"], json!(["S1", "S2"]));
    assert_eq!(json_report["applications"], 7);
    assert_eq!(json_report["applications_per_matter"]["kinship"], 7);
    assert_eq!(json_report["issued"], 2);
    assert_eq!(json_report["issued_per_kind"]["kinship"], 2);
    assert_eq!(json_report["transitional_issued"], 0);
    assert_eq!(json_report["refusals"], 2);
    assert_eq!(json_report["refused_per_principle"]["legal_document"], 2);
    assert_eq!(json_report["refusals_explained"], 1);
    assert_eq!(json_report["explanation_rate"], 0.5);
    assert_eq!(
        json_report["overdue_applications"], 4,
        "late, open at S1, overridden to an issuance, open at S2"
    );
    assert_eq!(json_report["findings_per_rule"]["overdue"], 4);
    assert_eq!(json_report["findings_per_rule"]["refused_issuable"], 1);
    assert_eq!(json_report["findings_per_rule"]["refusal_unexplained"], 1);
    assert_eq!(json_report["findings_per_rule"]["issued_wrong_seal"], 0);
    assert_eq!(json_report["findings"], 6);

    let (status, content_type, csv_text) =
        get_text(&server, "insp", &format!("{path}&format=csv")).await;
    assert_eq!(status, StatusCode::OK, "{csv_text}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let from_csv = parse_csv(&csv_text);
    let from_json = flatten_json(&json_report);
    assert_eq!(
        from_csv.keys().collect::<Vec<_>>(),
        from_json.keys().collect::<Vec<_>>(),
        "CSV and JSON carry the same metrics"
    );
    for (key, json_value) in &from_json {
        let csv_value = &from_csv[key];
        match (json_value.parse::<f64>(), csv_value.parse::<f64>()) {
            (Ok(left), Ok(right)) => assert_eq!(left, right, "{key:?}"),
            _ => assert_eq!(json_value, csv_value, "{key:?}"),
        }
    }
    assert_eq!(json_report["findings_per_category"]["inaction"], 6);
    assert_eq!(json_report["findings_per_category"]["misconduct"], 0);

    // The printable page shows every row of the CSV, with the same value.
    let (status, content_type, html) =
        get_text(&server, "insp", &format!("{path}&format=html")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let cells = html_rows(&html);
    assert_eq!(cells, from_csv, "HTML and CSV carry the same rows");

    let (status, later) = server
        .get(
            Some("insp"),
            "/v1/supervision/compliance?level=city&code=C1&from=2026-11-21&to=2026-11-30",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{later}");
    assert_eq!(later["applications"], 0);
    assert_eq!(later["issued"], 0);
    assert_eq!(later["explanation_rate"], Value::Null);
    let (status, province) = server
        .get(
            Some("insp"),
            "/v1/supervision/compliance?level=province&code=C&from=2026-11-01&to=2026-11-30",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{province}");
    assert_eq!(province["applications"], 7);
    let (status, whole_city) = server
        .get(
            Some("insp"),
            "/v1/supervision/compliance?level=province&code=C1&from=2026-11-01&to=2026-11-30",
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a city code is not a province: {whole_city}"
    );
    assert_eq!(whole_city["error"]["code"], "area_not_found");

    let (status, own) = server
        .get(
            Some("ld"),
            "/v1/supervision/compliance?level=station&code=S1&from=2026-11-01&to=2026-11-30",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["applications"], 6);
    assert_eq!(own["overdue_applications"], 3);
    let (status, answer) = server.get(Some("ld"), path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    for (query, status, field) in [
        (
            "level=district&code=K1&from=2026-11-01&to=2026-11-30",
            StatusCode::BAD_REQUEST,
            Some("level"),
        ),
        (
            "code=K1&from=2026-11-01&to=2026-11-30",
            StatusCode::BAD_REQUEST,
            Some("level"),
        ),
        (
            "level=county&from=2026-11-01&to=2026-11-30",
            StatusCode::BAD_REQUEST,
            Some("code"),
        ),
        (
            "level=county&code=K1&to=2026-11-30",
            StatusCode::BAD_REQUEST,
            Some("from"),
        ),
        (
            "level=county&code=K1&from=2026-11-30&to=2026-11-01",
            StatusCode::BAD_REQUEST,
            Some("from"),
        ),
        (
            "level=county&code=K1&from=2026-11-01&to=2026-11-30&format=xml",
            StatusCode::BAD_REQUEST,
            Some("format"),
        ),
        (
            "level=county&code=K9&from=2026-11-01&to=2026-11-30",
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let (answered, answer) = server
            .get(Some("insp"), &format!("/v1/supervision/compliance?{query}"))
            .await;
        assert_eq!(answered, status, "{query}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{query}");
        }
    }
    server.stop().await;
}

/// Appends `events` to record check `id`, recorded by a household officer.
async fn import_record_check(server: &TestServer, id: &str, events: Vec<RecordCheckEvent>) {
    let events = events
        .into_iter()
        .map(|event| (event, "household_officer"))
        .collect();
    import_events(server, "record_check", id, events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_check_findings_projected() {
    let server = with_inspector(TestServer::start().await).await;
    let submitted = RecordCheckEvent::RecordCheckSubmitted {
        applicant: Person {
            name: "李娜".into(),
            id_number: IdNumber::parse("220102199001011239").expect("valid id"),
        },
        agent: None,
        purpose: "study_abroad".into(),
        destination: "Canada".into(),
        station: "S1".into(),
        handling_officer: "hh".into(),
        decision_date: date("2026-11-02"),
        policy_version: policies().current().version.clone(),
        promised_date: date("2026-11-09"),
    };
    let found = RecordCheckEvent::SourceChecked {
        source: "national_criminal_records".into(),
        query_reference: "Q-1".into(),
        result: CheckResult::CriminalRecord,
        counts_as_record: true,
        officer: "hh".into(),
        checked_at: "2026-11-02T02:00:00Z".parse().expect("time"),
    };
    let issued = RecordCheckEvent::CertificateIssued {
        certificate_number: "N-1".into(),
        seal: "official_seal".into(),
        officer: "hh".into(),
        station: "S1".into(),
        issued_on: date("2026-11-04"),
    };
    let refused = RecordCheckEvent::RecordCheckRefused {
        explanation: "a record was found; ask the court for details".into(),
        officer: "hh".into(),
        refused_on: date("2026-11-04"),
    };
    let objection = RecordCheckEvent::ObjectionFiled {
        reason: "the record belongs to a namesake".into(),
        officer: "hh".into(),
        filed_on: date("2026-11-05"),
        due_on: date("2026-11-26"),
    };
    let wrongly_issued = vec![submitted.clone(), found.clone(), issued];
    import_record_check(&server, "imported-issued", wrongly_issued).await;
    let unanswered = vec![submitted, found, refused, objection];
    import_record_check(&server, "imported-objection", unanswered).await;
    settle(&server).await;
    projections::supervision::sweep(server.pool(), date("2026-11-30"))
        .await
        .expect("sweep runs");

    let (status, answer) = server
        .get(Some("insp"), "/v1/supervision/findings?station=S1")
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let found: Vec<(String, String)> = answer["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["aggregate_type"] == "record_check")
        .map(|f| {
            let text = |key: &str| f[key].as_str().unwrap_or_default().to_string();
            (text("aggregate_id"), text("rule"))
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "imported-issued".to_string(),
                "issued_despite_record".to_string()
            ),
            (
                "imported-objection".to_string(),
                "objection_overdue".to_string()
            ),
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_visit_reads_projected() {
    let server = with_inspector(TestServer::start().await).await;
    let person = |name: &str| Person {
        name: name.into(),
        id_number: IdNumber::parse("220102199001011239").expect("valid id"),
    };
    let registered = UnitVisitEvent::VisitRegistered {
        unit: Unit {
            name: "city human resources bureau".into(),
            unit_type: "government".into(),
            level: "city".into(),
        },
        staff: person("王强"),
        letter: IntroductionLetter {
            number: "L-7".into(),
            date: date("2026-11-09"),
            issuing_unit: "city human resources bureau".into(),
            scan_sha256: "0".repeat(64),
        },
        purpose: "civil service recruitment".into(),
        subject: person("李娜"),
        station: "S1".into(),
        handling_officer: "hh".into(),
        decision_date: date("2026-11-10"),
        policy_version: policies().current().version.clone(),
        rule_id: "civil_service".into(),
    };
    let read = |reader: &str, role: Role, purpose: &str| UnitVisitEvent::VisitResultsRead {
        reader: reader.into(),
        role,
        station: "S1".into(),
        purpose: purpose.into(),
    };
    let outsider = vec![
        (registered.clone(), "household_officer"),
        (
            read("hh", Role::HouseholdOfficer, "certificate"),
            "household_officer",
        ),
        (read("cm", Role::CommunityOfficer, ""), "community_officer"),
    ];
    import_events(&server, "unit_visit", "visit-outsider", outsider).await;
    let proper = vec![
        (registered, "household_officer"),
        (
            read("hh", Role::HouseholdOfficer, "certificate"),
            "household_officer",
        ),
        (
            read("ld", Role::StationLeader, "approval"),
            "station_leader",
        ),
    ];
    import_events(&server, "unit_visit", "visit-proper", proper).await;
    settle(&server).await;

    let expected = |rule: &str| {
        (
            "visit-outsider".to_string(),
            rule.to_string(),
            "cm".to_string(),
            "unit_visit#3".to_string(),
        )
    };
    assert_eq!(
        read_findings(&server, "unit_visit").await,
        vec![
            expected("read_outside_case"),
            expected("read_without_purpose")
        ]
    );
    server.stop().await;
}

/// Lists the read findings of station S1 on cases of `case_type`, as case id, rule, officer
/// and the cited read (`aggregate_type#sequence`).
async fn read_findings(
    server: &TestServer,
    case_type: &str,
) -> Vec<(String, String, String, String)> {
    let (status, answer) = server
        .get(Some("insp"), "/v1/supervision/findings?station=S1")
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    answer["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["aggregate_type"] == case_type)
        .filter(|f| {
            f["rule"]
                .as_str()
                .is_some_and(|rule| rule.starts_with("read_"))
        })
        .map(|f| {
            let cited = &f["evidence"][0];
            (
                text(&f["aggregate_id"]),
                text(&f["rule"]),
                text(&f["officer"]),
                format!("{}#{}", text(&cited["aggregate_type"]), cited["sequence"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_reads_projected() {
    let mut server = with_inspector(TestServer::start().await).await;
    let id = server.submit("hh", kinship_request()).await;
    let (status, answer) = server
        .get(
            Some("hh"),
            &format!("/v1/applications/{id}/history?purpose=applicant+asks+for+a+copy"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // These reads are written around the API by officers of another station and name the wrong
    // station for the case. The detector takes the case's station from the application.
    let read = |reader: &str, purpose: &str| ApplicationReadEvent::ApplicationRead {
        reader: reader.into(),
        role: Role::HouseholdOfficer,
        station: "S2".into(),
        case_station: "S2".into(),
        view: ReadView::History,
        purpose: purpose.into(),
    };
    let outsider = format!("{id}-copy");
    import_events(&server, "application", &outsider, submitted(false)).await;
    // Two outsiders read the case: each read is a finding of its own.
    let reads = vec![
        (read("hh9", " "), "household_officer"),
        (read("hh8", "a neighbour asked"), "household_officer"),
    ];
    import_events(&server, "application_reads", &outsider, reads).await;
    settle(&server).await;

    let expected = |rule: &str, officer: &str, read: &str| {
        (
            outsider.clone(),
            rule.to_string(),
            officer.to_string(),
            read.to_string(),
        )
    };
    assert_eq!(
        read_findings(&server, "application").await,
        vec![
            expected("read_outside_case", "hh9", "application_reads#1"),
            expected("read_outside_case", "hh8", "application_reads#2"),
            expected("read_without_purpose", "hh9", "application_reads#1"),
        ]
    );

    // The read log takes the case's station from the application, not from the read.
    let (status, log) = server
        .get(Some("ld"), "/v1/record-reads?station=S1&reader=hh9")
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log[0]["case_id"], outsider.as_str(), "{log}");
    assert_eq!(log[0]["case_station"], "S1");
    assert_eq!(log[0]["view"], "history");
    let (status, log) = server
        .get(Some("insp"), "/v1/record-reads?station=S2")
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log, json!([]), "no case of S2 was read");

    // A rebuild, with the server's projector stopped, finds the same, each read once.
    server.stop_server().await;
    let before = findings(&server).await;
    projections::supervision::rebuild(server.pool(), &policies(), date("2026-11-30"))
        .await
        .expect("rebuild runs");
    let after = findings(&server).await;
    let reads_of = |rows: &[FindingRow]| -> Vec<FindingRow> {
        rows.iter()
            .filter(|row| row.2.starts_with("read_"))
            .cloned()
            .collect()
    };
    assert_eq!(reads_of(&after), reads_of(&before));
    assert_eq!(reads_of(&after).len(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_with_many_overrides_stands_out() {
    let server = with_inspector(TestServer::start().await).await;
    let outcome = json!({"outcome": "refuse", "principle": "legal_document", "referral": "出示户口簿",
                         "justification": "申请人户口簿已载明关系，所领导同意不予出具。"});
    for _ in 0..4 {
        let id = server.submit("hh", kinship_request()).await;
        step(&server, "hh", &id, "override", outcome.clone()).await;
        server.submit("cm", death_request()).await;
    }
    server.submit("cm", death_request()).await;
    settle(&server).await;

    // Both requests are decided on 2026-11-02.
    let path = "/v1/supervision/overrides?from=2026-11-01&to=2026-11-30";
    let (status, answer) = server.get(Some("ld"), path).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let officers = answer["officers"].as_array().expect("officers");
    let of = |id: &str| {
        officers
            .iter()
            .find(|o| o["officer"] == id)
            .unwrap_or_else(|| panic!("{id} listed in {answer}"))
    };
    assert_eq!(of("hh")["handled"], 4);
    assert_eq!(of("hh")["overrides"], 4);
    assert_eq!(of("hh")["rate"], 1.0);
    assert_eq!(of("hh")["others_rate"], 0.0);
    assert_eq!(of("hh")["stands_out"], true);
    assert_eq!(of("cm")["handled"], 5);
    assert_eq!(of("cm")["stands_out"], false);

    let (status, answer) = server.get(Some("ld"), &format!("{path}&station=S2")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = server
        .get(
            Some("insp"),
            "/v1/supervision/overrides?from=2026-11-30&to=2026-11-01",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    server.stop().await;
}
