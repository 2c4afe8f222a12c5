//! No-criminal-record certificates end to end: the application form, the source checks,
//! approval and issuance, refusal after a record is found, objections, and the recorded reading
//! of results, on a real server and database.

mod common;

use aggregates::policy::Role;
use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zhengming::registry::{self, Officer};
use zhengming::server::ServerOptions;
use zhengming::verify::verify_all;

const MANDATORY: [&str; 5] = [
    "national_offenders_database",
    "provincial_offenders_system",
    "drug_control_system",
    "police_integrated_platform",
    "intelligence_platform",
];

fn form() -> Value {
    json!({
        "applicant": {"name": "李娜", "id_number": "220104200002290047"},
        "purpose": "going_abroad",
        "destination": "Consulate General of Canada, emigration visa",
        "decision_date": "2026-11-02"
    })
}

fn check(source: &str, result: &str) -> Value {
    json!({
        "source": source,
        "query_reference": format!("Q-{source}"),
        "result": result,
        "checked_at": "2026-11-03T02:00:00Z"
    })
}

/// Adds an inspector of the county office, who belongs to station S2, and their token.
async fn add_inspector(server: &mut TestServer) {
    let inspector = Officer {
        id: "in".into(),
        name: "inspector".into(),
        role: Role::Inspector,
    };
    registry::add_officer(server.pool(), &inspector, "S2")
        .await
        .expect("inspector is recorded");
    let token = registry::create_token(server.pool(), "in")
        .await
        .expect("token is created");
    server.tokens.insert("in".into(), token);
}

async fn submit(server: &TestServer) -> String {
    let (status, body) = server.post("hh", "/v1/record-checks", form()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["application_id"].as_str().expect("id").to_string()
}

async fn check_all(server: &TestServer, id: &str, result_of: impl Fn(&str) -> &'static str) {
    for source in MANDATORY {
        let (status, body) = server
            .post(
                "hh",
                &format!("/v1/record-checks/{id}/checks"),
                check(source, result_of(source)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{source}: {body}");
    }
}

async fn events_of(server: &TestServer, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'record_check' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(server.pool())
    .await
    .expect("events are read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_issued_when_nothing_found() {
    let server = TestServer::start().await;
    let id = submit(&server).await;
    let base = format!("/v1/record-checks/{id}");
    let (_, shown) = server.get(Some("hh"), &base).await;
    assert_eq!(shown["status"], "investigating");
    assert_eq!(shown["promised_date"], "2026-11-05");
    assert_eq!(
        shown["unchecked_mandatory_sources"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    // The policy reads a sealed juvenile record and administrative violations as "no record".
    check_all(&server, &id, |source| match source {
        "drug_control_system" => "administrative_violation",
        "intelligence_platform" => "sealed_juvenile_record",
        _ => "no_record",
    })
    .await;

    let (status, body) = server
        .post(
            "ld",
            &format!("{base}/approval"),
            json!({"date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/issuance"),
            json!({"seal": "household_seal", "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "wrong_seal");
    assert_eq!(body["error"]["field"], "seal");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/issuance"),
            json!({"seal": "official_seal", "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "issued");
    let text = body.to_string();
    assert!(
        !text.contains("sealed_juvenile"),
        "summary shows a result: {text}"
    );
    let number = body["certificate_number"]
        .as_str()
        .expect("number")
        .to_string();
    // The same format as every certificate: station, year, serial and a check code.
    let parts: Vec<&str> = number.split('-').collect();
    assert_eq!(parts.len(), 4, "{number}");
    assert_eq!(parts[0], "S1", "{number}");
    assert_eq!(parts[3].len(), 6, "{number}");

    let (status, public) = server
        .get(None, &format!("/v1/record-checks/certificates/{number}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(public["kind"], "no_criminal_record");
    assert_eq!(public["issued_on"], "2026-11-04");
    let text = public.to_string();
    assert!(
        !text.contains("220104200002290047"),
        "public check leaks the ID: {text}"
    );
    assert!(
        !text.contains("李娜"),
        "public check leaks the name: {text}"
    );
    let (status, _) = server
        .get(None, "/v1/record-checks/certificates/S1-2026-99999999")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let events = events_of(&server, &id).await;
    assert_eq!(events.len(), 8, "{events:?}");
    assert_eq!(events[7], "CertificateIssued");
    let report = verify_all(server.pool()).await.expect("verify runs");
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_outside_allowance_are_rejected() {
    let options = ServerOptions {
        backdate_days: 7,
        ledger: None,
    };
    let server = TestServer::start_with(options).await;
    let before = server.event_count().await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
    let mut future = form();
    future["decision_date"] = json!(tomorrow.to_string());
    let (status, body) = server.post("hh", "/v1/record-checks", future).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "date_out_of_range");
    assert_eq!(body["error"]["field"], "decision_date");
    // The fixed form is dated 2026-11-02, long before this server's seven-day allowance.
    let (status, body) = server.post("hh", "/v1/record-checks", form()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "decision_date");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_form_names_field_and_records_nothing() {
    let server = TestServer::start().await;
    let with = |key: &str, value: Value| {
        let mut body = form();
        body[key] = value;
        body
    };
    let cases = [
        (
            "hh",
            with(
                "applicant",
                json!({"name": "李娜", "id_number": "220102199001011235"}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_id_number",
            "applicant.id_number",
        ),
        (
            "hh",
            with("purpose", json!("new_job")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "purpose_not_allowed",
            "purpose",
        ),
        (
            "hh",
            with("destination", json!("  ")),
            StatusCode::BAD_REQUEST,
            "missing_field",
            "destination",
        ),
        (
            "hh",
            with("decision_date", json!("2014-03-03")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "date_outside_calendar",
            "decision_date",
        ),
        ("ld", form(), StatusCode::FORBIDDEN, "wrong_role", "role"),
    ];
    for (officer, body, status, code, field) in cases {
        let (answered, answer) = server.post(officer, "/v1/record-checks", body).await;
        assert_eq!(answered, status, "{code}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let id = submit(&server).await;
    let (status, answer) = server
        .post(
            "hh",
            &format!("/v1/record-checks/{id}/checks"),
            check("horoscope", "no_record"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "source");
    let mut future = check("paper_archives", "no_record");
    future["checked_at"] = json!("2999-01-01T00:00:00Z");
    let (status, answer) = server
        .post("hh", &format!("/v1/record-checks/{id}/checks"), future)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "checked_at");
    let (status, _) = server
        .post(
            "hh9",
            &format!("/v1/record-checks/{id}/checks"),
            check("paper_archives", "no_record"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        server.event_count().await,
        1,
        "only the valid submission is recorded"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_mandatory_source_blocks_issuance() {
    let server = TestServer::start().await;
    let id = submit(&server).await;
    let base = format!("/v1/record-checks/{id}");
    for source in &MANDATORY[..4] {
        server
            .post("hh", &format!("{base}/checks"), check(source, "no_record"))
            .await;
    }
    server
        .post(
            "hh",
            &format!("{base}/checks"),
            check("paper_archives", "no_record"),
        )
        .await;
    // A source checked again, after others, is listed once, where it was first checked.
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/checks"),
            check(MANDATORY[0], "no_record"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut listed = MANDATORY[..4].to_vec();
    listed.push("paper_archives");
    assert_eq!(body["sources_checked"], json!(listed), "{body}");
    let before = server.event_count().await;
    let (status, body) = server
        .post(
            "ld",
            &format!("{base}/approval"),
            json!({"date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "mandatory_source_unchecked");
    assert_eq!(body["error"]["field"], "checks");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("intelligence_platform"), "{message}");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/issuance"),
            json!({"seal": "official_seal", "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "mandatory_source_unchecked");
    assert_eq!(server.event_count().await, before);
    let (_, shown) = server.get(Some("hh"), &base).await;
    assert_eq!(
        shown["unchecked_mandatory_sources"],
        json!(["intelligence_platform"])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_found_is_never_issued() {
    let server = TestServer::start().await;
    let id = submit(&server).await;
    let base = format!("/v1/record-checks/{id}");
    check_all(&server, &id, |source| {
        if source == "provincial_offenders_system" {
            "criminal_record"
        } else {
            "no_record"
        }
    })
    .await;
    let before = server.event_count().await;
    let (status, body) = server
        .post(
            "ld",
            &format!("{base}/approval"),
            json!({"date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "record_found");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/refusal"),
            json!({"explanation": "short", "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "explanation");
    assert_eq!(server.event_count().await, before);

    let explanation =
        "The investigation does not allow this certificate; you may object at the station.";
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/refusal"),
            json!({"explanation": explanation, "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "refused");
    let refused = server.event_count().await;
    let attempts = [
        ("ld", "approval", json!({"date": "2026-11-05"})),
        (
            "hh",
            "issuance",
            json!({"seal": "official_seal", "date": "2026-11-05"}),
        ),
        ("hh", "checks", check("paper_archives", "no_record")),
    ];
    for (officer, step, request) in attempts {
        let (status, body) = server
            .post(officer, &format!("{base}/{step}"), request)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{step}: {body}");
        assert_eq!(body["error"]["code"], "investigation_closed", "{step}");
    }
    assert_eq!(
        server.event_count().await,
        refused,
        "rejected commands record nothing"
    );

    let (status, notice) = server
        .get(Some("hh"), &format!("{base}/refusal-notice"))
        .await;
    assert_eq!(status, StatusCode::OK, "{notice}");
    let text = notice["text"].as_str().unwrap_or_default();
    assert!(text.contains("object"), "{text}");
    let leaked = [
        "provincial_offenders_system",
        "Q-",
        "criminal_record",
        "220104200002290047",
    ];
    for detail in leaked {
        assert!(
            !notice.to_string().contains(detail),
            "notice reveals {detail}: {notice}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_found_after_approval_blocks_issuance() {
    let server = TestServer::start().await;
    let id = submit(&server).await;
    let base = format!("/v1/record-checks/{id}");
    check_all(&server, &id, |_| "no_record").await;
    let (status, body) = server
        .post(
            "ld",
            &format!("{base}/approval"),
            json!({"date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server
        .post(
            "hh",
            &format!("{base}/checks"),
            check("paper_archives", "criminal_record"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let before = server.event_count().await;
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/issuance"),
            json!({"seal": "official_seal", "date": "2026-11-05"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "record_found");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

/// Takes an application to a refusal dated 2026-11-04.
async fn refused(server: &TestServer) -> String {
    let id = submit(server).await;
    check_all(server, &id, |source| {
        if source == "national_offenders_database" {
            "criminal_record"
        } else {
            "no_record"
        }
    })
    .await;
    let explanation =
        "The investigation does not allow this certificate; you may object at the station.";
    let (status, body) = server
        .post(
            "hh",
            &format!("/v1/record-checks/{id}/refusal"),
            json!({"explanation": explanation, "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_objection_answer_is_overdue() {
    let server = TestServer::start().await;
    let id = refused(&server).await;
    let base = format!("/v1/record-checks/{id}");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/objection"),
            json!({"reason": "I have never been convicted.", "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // 15 working days after Wednesday 2026-11-04, with no holiday in November 2026.
    assert_eq!(body["objection"]["due_on"], "2026-11-25");
    let answer = json!({"decision": "upheld", "explanation": "The re-check confirmed the record; the refusal stands.", "date": "2026-12-01"});
    let (status, body) = server
        .post("ld", &format!("{base}/objection/answer"), answer.clone())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "recheck_missing");
    let mut recheck = check("national_offenders_database", "criminal_record");
    recheck["checked_at"] = json!("2026-11-20T03:00:00Z");
    let (status, body) = server
        .post("hh", &format!("{base}/objection/rechecks"), recheck)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .post("hh", &format!("{base}/objection/answer"), answer.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server
        .post("ld", &format!("{base}/objection/answer"), answer)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["objection"]["decision"], "upheld");
    assert_eq!(body["objection"]["answered_on"], "2026-12-01");
    assert_eq!(body["objection"]["overdue"], true);
    assert_eq!(body["status"], "refused");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objection_extends_once_and_reverses() {
    let server = TestServer::start().await;
    let id = refused(&server).await;
    let base = format!("/v1/record-checks/{id}");
    server
        .post(
            "hh",
            &format!("{base}/objection"),
            json!({"reason": "The record belongs to another person.", "date": "2026-11-04"}),
        )
        .await;
    let extension = json!({"reason": "The court file must be requested from another province.", "date": "2026-11-20"});
    let (status, body) = server
        .post(
            "ld",
            &format!("{base}/objection/extension"),
            extension.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // 30 working days after 2026-11-04.
    assert_eq!(body["objection"]["due_on"], "2026-12-16");
    assert_eq!(body["objection"]["extended"], true);
    let before = server.event_count().await;
    let (status, body) = server
        .post("ld", &format!("{base}/objection/extension"), extension)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_extended");
    assert_eq!(server.event_count().await, before);
    let mut recheck = check("national_offenders_database", "no_record");
    recheck["checked_at"] = json!("2026-12-01T03:00:00Z");
    server
        .post("hh", &format!("{base}/objection/rechecks"), recheck)
        .await;
    let answer = json!({"decision": "reversed", "explanation": "The record belonged to a namesake; apply again and the station handles it first.", "date": "2026-12-03"});
    let (status, body) = server
        .post("ld", &format!("{base}/objection/answer"), answer)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "refusal_reversed");
    assert_eq!(body["objection"]["overdue"], false);
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/issuance"),
            json!({"seal": "official_seal", "date": "2026-12-03"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_results_reads_are_all_recorded() {
    let mut server = TestServer::start().await;
    add_inspector(&mut server).await;
    let id = refused(&server).await;
    let path = format!("/v1/record-checks/{id}/results?purpose=review");
    let reads = (0..16).map(|index| {
        let reader = if index % 2 == 0 { "hh" } else { "in" };
        server.get(Some(reader), &path)
    });

    let answers = futures_util::future::join_all(reads).await;

    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["record_found"], true);
    }
    let events = events_of(&server, &id).await;
    assert_eq!(events.iter().filter(|e| *e == "ResultsRead").count(), 16);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_reads_are_restricted_and_recorded() {
    let mut server = TestServer::start().await;
    add_inspector(&mut server).await;
    let id = refused(&server).await;
    let results = |purpose: &str| format!("/v1/record-checks/{id}/results?purpose={purpose}");
    let before = server.event_count().await;
    let (status, body) = server.get(Some("hh9"), &results("curiosity")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "results_access_denied");
    let (status, _) = server.get(Some("cm"), &results("curiosity")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an officer who does not handle the case"
    );
    let (status, body) = server
        .get(Some("in"), &format!("/v1/record-checks/{id}/results"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "purpose");
    let (status, body) = server.get(Some("in"), &results("review%00")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_text");
    assert_eq!(body["error"]["field"], "purpose");
    assert_eq!(
        server.event_count().await,
        before,
        "rejected reads record nothing"
    );

    let (status, body) = server
        .get(Some("in"), &results("inspection%202026-11"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["record_found"], true);
    assert_eq!(body["checks"][0]["result"], "criminal_record");
    let (status, _) = server.get(Some("hh"), &results("objection%20review")).await;
    assert_eq!(status, StatusCode::OK);
    let events = events_of(&server, &id).await;
    assert_eq!(events.iter().filter(|e| *e == "ResultsRead").count(), 2);

    let (status, log) = server
        .get(Some("in"), &format!("/v1/record-checks/{id}/reads"))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log[0]["reader"], "in");
    assert_eq!(log[0]["role"], "inspector");
    assert_eq!(log[0]["purpose"], "inspection 2026-11");
    assert_eq!(log[1]["reader"], "hh");
    let (status, _) = server
        .get(Some("hh"), &format!("/v1/record-checks/{id}/reads"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let report = verify_all(server.pool()).await.expect("verify runs");
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_naming_source_is_rejected() {
    let server = TestServer::start().await;
    let id = submit(&server).await;
    check_all(&server, &id, |source| {
        if source == "drug_control_system" {
            "criminal_record"
        } else {
            "no_record"
        }
    })
    .await;
    let before = server.event_count().await;
    let explanation = "The drug_control_system holds an entry, so no certificate can be issued.";
    let (status, body) = server
        .post(
            "hh",
            &format!("/v1/record-checks/{id}/refusal"),
            json!({"explanation": explanation, "date": "2026-11-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "record_details_disclosed");
    assert_eq!(body["error"]["field"], "explanation");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_path_cannot_issue_certificate() {
    let server = TestServer::start().await;
    let request = json!({
        "applicant": {"name": "李娜", "id_number": "220104200002290047"},
        "unit": {"name": "Foreign consulate", "unit_type": "foreign_consulate", "level": "none", "provincial_rule_requires": true},
        "matter": "criminal_record",
        "circumstances": {},
        "purpose": "emigration visa",
        "decision_date": "2026-11-02"
    });
    let id = server.submit("hh", request).await;
    let (_, shown) = server
        .get(Some("hh"), &format!("/v1/applications/{id}"))
        .await;
    assert_eq!(shown["outcome"]["kind"], "no_criminal_record", "{shown}");
    let before = server.event_count().await;
    let (status, body) = server
        .post(
            "hh",
            &format!("/v1/applications/{id}/issuance"),
            json!({"seal": "official_seal", "date": "2026-11-03"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "record_check_required");
    assert_eq!(body["error"]["field"], "kind");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}
