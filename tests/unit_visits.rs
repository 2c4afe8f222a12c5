//! Unit verification visits end to end: registration and screening of the unit, findings,
//! the approved certificate, and the restricted, recorded reading of findings, on a real
//! server and database.

mod common;

use aggregates::policy::Role;
use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use zhengming::registry::{self, Officer};
use zhengming::verify::verify_all;

const MANDATORY: [&str; 5] = [
    "national_offenders_database",
    "provincial_offenders_system",
    "drug_control_system",
    "police_integrated_platform",
    "intelligence_platform",
];

fn visit(unit_type: &str, purpose: &str) -> Value {
    json!({
        "unit": {"name": "Changchun intermediate court", "unit_type": unit_type, "level": "municipal"},
        "staff": {"name": "王强", "id_number": "220104199001011231"},
        "letter": {
            "number": "CZ-2026-118",
            "date": "2026-11-01",
            "issuing_unit": "Changchun intermediate court",
            "scan_sha256": "ab".repeat(32)
        },
        "purpose": purpose,
        "subject": {"name": "李娜", "id_number": "220104200002290047"},
        "visit_date": "2026-11-02"
    })
}

fn findings(sources: &[&str]) -> Value {
    json!({
        "sources": sources,
        "query_reference": "Q-2026-1102-7",
        "result": "no_record",
        "disclosed": "Told the staff member that no record was found.",
        "checked_at": "2026-11-02T03:00:00Z"
    })
}

async fn events_of(server: &TestServer, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'unit_visit' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(server.pool())
    .await
    .expect("events are read")
}

async fn register(server: &TestServer, unit_type: &str, purpose: &str) -> (String, Value) {
    let (status, body) = server
        .post("hh", "/v1/unit-visits", visit(unit_type, purpose))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["visit_id"].as_str().expect("visit id").to_string();
    (id, body)
}

/// Adds an inspector, who belongs to station S2, and their token.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn court_visit_gets_certificate() {
    let server = TestServer::start().await;
    let (id, body) = register(&server, "judicial_organ", "case_handling").await;
    assert_eq!(body["status"], "checking");
    assert_eq!(body["rule_id"], "unit_verification.organ_review_or_case");
    assert_eq!(body["staff"], "王强 (220104********1231)");
    let base = format!("/v1/unit-visits/{id}");

    let (status, body) = server
        .post("hh", &format!("{base}/findings"), findings(&MANDATORY))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "checked");
    assert!(body.get("result").is_none(), "{body}");
    assert!(!body.to_string().contains("no_record"), "{body}");

    let issuance = json!({"seal": "official_seal", "date": "2026-11-03"});
    let (status, body) = server
        .post("hh", &format!("{base}/certificate"), issuance.clone())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "approval_missing");

    let need = json!({"need": "The court must file a written result with the case record.", "date": "2026-11-03"});
    let (status, body) = server
        .post("hh", &format!("{base}/certificate-approval"), need.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server
        .post("ld", &format!("{base}/certificate-approval"), need)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["certificate_approved_by"], "ld");

    let (status, body) = server
        .post("hh", &format!("{base}/certificate"), issuance)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "certificate_issued");
    assert!(body["certificate_number"].as_str().is_some(), "{body}");
    assert_eq!(
        events_of(&server, &id).await,
        [
            "VisitRegistered",
            "VisitChecked",
            "VisitCertificateApproved",
            "VisitCertificateIssued"
        ]
    );
    let report = verify_all(server.pool()).await.expect("verify runs");
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unqualified_unit_is_refused() {
    let server = TestServer::start().await;
    let (id, body) = register(&server, "private_employer", "employment_screening").await;
    assert_eq!(body["status"], "refused");
    assert_eq!(body["rule_id"], "unit_verification.unqualified");
    assert_eq!(body["refusal"]["principle"], "no_provincial_requirement");
    assert!(
        !body["refusal"]["principle_name"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{body}"
    );
    let explanation = body["refusal"]["explanation"].as_str().unwrap_or("");
    assert!(explanation.contains("private_employer"), "{body}");
    assert!(body["refusal"]["referral"].as_str().is_some(), "{body}");
    assert_eq!(
        events_of(&server, &id).await,
        ["VisitRegistered", "VisitRefused"]
    );

    // A refused visit checks nothing.
    let before = server.event_count().await;
    let (status, body) = server
        .post(
            "hh",
            &format!("/v1/unit-visits/{id}/findings"),
            findings(&MANDATORY),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "wrong_visit_status");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registration_names_field() {
    let server = TestServer::start().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("unit.unit_type", json!("charity"), "unknown_unit_type"),
        ("unit.name", json!(" "), "missing_field"),
        ("letter.scan_sha256", json!("abc"), "invalid_scan_digest"),
        (
            "letter.date",
            json!("2026-11-09"),
            "letter_date_after_visit",
        ),
        (
            "staff.id_number",
            json!("220104199001011232"),
            "invalid_id_number",
        ),
        ("subject.name", json!(""), "missing_field"),
        ("purpose", json!("curiosity"), "unknown_purpose"),
    ];
    let before = server.event_count().await;
    for (field, value, code) in cases {
        let mut body = visit("judicial_organ", "case_handling");
        let mut target = &mut body;
        let parts: Vec<&str> = field.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            target = &mut target[*part];
        }
        target[parts[parts.len() - 1]] = value;
        let (status, response) = server.post("hh", "/v1/unit-visits", body).await;
        assert!(status.is_client_error(), "{field}: {status} {response}");
        assert_eq!(response["error"]["code"], code, "{field}: {response}");
        assert_eq!(response["error"]["field"], field, "{field}: {response}");
    }
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_need_every_mandatory_source() {
    let server = TestServer::start().await;
    let (id, _) = register(&server, "special_industry", "recruitment").await;
    let base = format!("/v1/unit-visits/{id}");
    let before = server.event_count().await;
    let (status, body) = server
        .post("hh", &format!("{base}/findings"), findings(&MANDATORY[..4]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "mandatory_source_unchecked");
    assert_eq!(body["error"]["field"], "sources");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("intelligence_platform"), "{body}");

    let mut unknown = MANDATORY.to_vec();
    unknown.push("rumour_mill");
    let (status, body) = server
        .post("hh", &format!("{base}/findings"), findings(&unknown))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "unknown_source");

    let mut empty_disclosure = findings(&MANDATORY);
    empty_disclosure["disclosed"] = json!("");
    let (status, body) = server
        .post("hh", &format!("{base}/findings"), empty_disclosure)
        .await;
    assert!(status.is_client_error(), "{body}");
    assert_eq!(body["error"]["field"], "disclosed");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_reads_restricted_and_recorded() {
    let mut server = TestServer::start().await;
    add_inspector(&mut server).await;
    let (id, _) = register(&server, "state_organ", "political_review").await;
    let base = format!("/v1/unit-visits/{id}");
    let (status, body) = server
        .post("hh", &format!("{base}/findings"), findings(&MANDATORY))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let before = server.event_count().await;
    let path = format!("{base}/results?purpose=audit");
    let (status, body) = server.get(Some("hh9"), &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "results_access_denied");
    let (status, body) = server.get(Some("cm"), &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server.get(Some("hh"), &format!("{base}/results")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "purpose");
    assert_eq!(server.event_count().await, before);

    let (status, body) = server
        .get(
            Some("in"),
            &format!("{base}/results?purpose=quarterly%20inspection"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "no_record");
    assert_eq!(
        body["disclosed"],
        "Told the staff member that no record was found."
    );
    assert_eq!(server.event_count().await, before + 1);

    let (status, log) = server.get(Some("ld"), &format!("{base}/reads")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
    assert_eq!(log[0]["reader"], "in");
    assert_eq!(log[0]["role"], "inspector");
    assert_eq!(log[0]["purpose"], "quarterly inspection");
    let (status, _) = server.get(Some("hh"), &format!("{base}/reads")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_log_spans_both_workflows() {
    let mut server = TestServer::start().await;
    add_inspector(&mut server).await;
    let (visit_id, _) = register(&server, "judicial_organ", "case_handling").await;
    let (status, body) = server
        .post(
            "hh",
            &format!("/v1/unit-visits/{visit_id}/findings"),
            findings(&MANDATORY),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let form = json!({
        "applicant": {"name": "李娜", "id_number": "220104200002290047"},
        "purpose": "going_abroad",
        "destination": "Consulate General of Canada",
        "decision_date": "2026-11-02"
    });
    let (status, body) = server.post("hh", "/v1/record-checks", form).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let check_id = body["application_id"].as_str().expect("id").to_string();

    let (status, body) = server
        .get(
            Some("ld"),
            &format!("/v1/unit-visits/{visit_id}/results?purpose=approval"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .get(
            Some("in"),
            &format!("/v1/record-checks/{check_id}/results?purpose=inspection"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, log) = server.get(Some("in"), "/v1/record-reads").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log.as_array().map(Vec::len), Some(2), "{log}");
    assert_eq!(log[0]["case_type"], "record_check");
    assert_eq!(log[0]["case_id"], check_id.as_str());
    assert_eq!(log[0]["case_station"], "S1");
    assert_eq!(log[0]["reader_station"], "S2");
    assert_eq!(log[0]["purpose"], "inspection");
    assert_eq!(log[1]["case_type"], "unit_visit");
    assert_eq!(log[1]["reader"], "ld");

    // Paging: one read per page, the second page starting below the first page's position.
    let (status, first) = server.get(Some("in"), "/v1/record-reads?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first.as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(first[0], log[0]);
    let position = first[0]["position"].as_i64().expect("position");
    let (status, second) = server
        .get(
            Some("in"),
            &format!("/v1/record-reads?limit=1&before={position}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second, json!([log[1].clone()]));
    let last = log[1]["position"].as_i64().expect("position");
    let (status, rest) = server
        .get(Some("in"), &format!("/v1/record-reads?before={last}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest, json!([]));
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=many", "limit"),
        ("before=0", "before"),
        ("before=-5", "before"),
    ] {
        let (status, body) = server
            .get(Some("in"), &format!("/v1/record-reads?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }

    // Blank parameters, as a form sends them, filter nothing.
    let (status, blank) = server
        .get(
            Some("in"),
            "/v1/record-reads?station=&reader=&limit=&before=",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{blank}");
    assert_eq!(blank, log);

    let (status, log) = server.get(Some("in"), "/v1/record-reads?reader=ld").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
    let (status, log) = server.get(Some("in"), "/v1/record-reads?station=S2").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log.as_array().map(Vec::len), Some(0), "{log}");

    let (status, log) = server.get(Some("ld"), "/v1/record-reads").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log.as_array().map(Vec::len), Some(2), "{log}");
    let (status, blank) = server.get(Some("ld"), "/v1/record-reads?station=").await;
    assert_eq!(status, StatusCode::OK, "{blank}");
    assert_eq!(blank, log);
    let (status, body) = server.get(Some("ld"), "/v1/record-reads?station=S2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server.get(Some("hh"), "/v1/record-reads").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "reads_access_denied");
    server.stop().await;
}
