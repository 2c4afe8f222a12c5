//! Inspections, training records, problem reports and accountability trails through the real
//! server: each workflow end to end, each refused step recording nothing, and the projection
//! that the trail and the compliance report read, rebuilt equal.

mod common;

use std::time::Duration;

use aggregates::policy::Role;
use chrono::{Days, NaiveDate};
use common::{TestServer, kinship_request};
use reqwest::StatusCode;
use serde_json::{Value, json};
use zhengming::registry::{self, Officer};

/// Adds inspector `insp` and provincial officer `prov`, both recorded at station S2.
async fn with_supervisors(mut server: TestServer) -> TestServer {
    for (id, role) in [("insp", Role::Inspector), ("prov", Role::ProvincialOfficer)] {
        let officer = Officer {
            id: id.into(),
            name: format!("officer {id}"),
            role,
        };
        registry::add_officer(server.pool(), &officer, "S2")
            .await
            .expect("officer is recorded");
        let token = registry::create_token(server.pool(), id)
            .await
            .expect("token is created");
        server.tokens.insert(id.into(), token);
    }
    server
}

fn today() -> NaiveDate {
    zhengming::http::today_in_china()
}

fn day(offset: i64) -> String {
    let date = if offset >= 0 {
        today() + Days::new(offset as u64)
    } else {
        today() - Days::new(offset.unsigned_abs())
    };
    date.to_string()
}

/// Waits until every projection has caught up with the log.
async fn settle(server: &TestServer) {
    for _ in 0..200 {
        let inspections = projections::inspection::lag(server.pool())
            .await
            .expect("lag");
        let supervision = projections::supervision::lag(server.pool())
            .await
            .expect("lag");
        if inspections.behind == 0 && supervision.behind == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("projections did not catch up within 10 seconds");
}

async fn expect(
    server: &TestServer,
    officer: &str,
    path: &str,
    body: Value,
    want: StatusCode,
) -> Value {
    let (status, answer) = server.post(officer, path, body).await;
    assert_eq!(status, want, "{path}: {answer}");
    answer
}

/// Posts a step that must be refused with `code` and checks that it recorded nothing.
async fn refused(
    server: &TestServer,
    officer: &str,
    path: &str,
    body: Value,
    want: (StatusCode, &str),
) {
    let before = server.event_count().await;
    let (status, answer) = server.post(officer, path, body).await;
    assert_eq!(status, want.0, "{path}: {answer}");
    assert_eq!(answer["error"]["code"], want.1, "{path}: {answer}");
    assert_eq!(
        server.event_count().await,
        before,
        "{path} recorded nothing"
    );
}

async fn open_inspection(server: &TestServer) -> String {
    let body = json!({"body": "inspectorate", "target": {"kind": "station", "id": "S1"},
                      "reason": "quarterly inspection of refusals at station S1"});
    let opened = expect(server, "insp", "/v1/inspections", body, StatusCode::CREATED).await;
    opened["inspection_id"].as_str().expect("id").to_string()
}

/// Opens an inspection of station S1, records `finding` in it, and returns the inspection's path.
async fn inspection_with_finding(server: &TestServer, finding: Value) -> String {
    let id = open_inspection(server).await;
    let base = format!("/v1/inspections/{id}");
    expect(
        server,
        "insp",
        &format!("{base}/findings"),
        finding,
        StatusCode::OK,
    )
    .await;
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_from_opening_to_accountability() {
    let server = with_supervisors(TestServer::start().await).await;
    let id = open_inspection(&server).await;
    let base = format!("/v1/inspections/{id}");

    let case = server.submit("hh", kinship_request()).await;
    let finding = json!({"category": "inaction", "rule": "refused_issuable", "officer": "hh",
                         "case_id": case, "description": "refused a kinship certificate the catalogue issues"});
    let answer = expect(
        &server,
        "insp",
        &format!("{base}/findings"),
        finding,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["findings"][0]["number"], 1);
    let notice = json!({"text": "station S1 refused kinship certificates it must issue"});
    expect(
        &server,
        "insp",
        &format!("{base}/notices"),
        notice,
        StatusCode::OK,
    )
    .await;
    let requirement = json!({"requirement": "retrain the household officers on the catalogue",
                             "due_on": day(20)});
    let answer = expect(
        &server,
        "insp",
        &format!("{base}/rectification"),
        requirement,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["status"], "rectification_required");

    let report = json!({"report": "training held for every household officer"});
    expect(
        &server,
        "ld",
        &format!("{base}/rectification/report"),
        report.clone(),
        StatusCode::OK,
    )
    .await;
    let rejection = json!({"accepted": false, "note": "two officers missed the training",
                           "next_due_on": day(30)});
    let answer = expect(
        &server,
        "insp",
        &format!("{base}/rectification/verification"),
        rejection,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["status"], "rectification_required");
    assert_eq!(answer["rectifications"][1]["round"], 2);
    expect(
        &server,
        "ld2",
        &format!("{base}/rectification/report"),
        report,
        StatusCode::OK,
    )
    .await;
    let acceptance = json!({"accepted": true, "note": "attendance sheets checked, all present"});
    expect(
        &server,
        "insp",
        &format!("{base}/rectification/verification"),
        acceptance,
        StatusCode::OK,
    )
    .await;
    let closing = json!({"outcome": "admonishment", "officers": ["hh"],
                         "reason": "refusals against the catalogue, rectified after notice"});
    let answer = expect(
        &server,
        "insp",
        &format!("{base}/closing"),
        closing,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["status"], "closed");
    assert_eq!(answer["closing"]["officers"], json!(["hh"]));

    let report = zhengming::verify::verify_all(server.pool())
        .await
        .expect("verify runs");
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    assert_eq!(
        report.events, 11,
        "the application's two and the inspection's nine"
    );

    settle(&server).await;
    let (status, list) = server.get(Some("ld"), "/v1/inspections").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = &list["inspections"][0];
    assert_eq!(listed["status"], "closed");
    assert_eq!(listed["outcome"], "admonishment");
    assert_eq!(listed["notices"], 1);
    assert_eq!(listed["accountable"], json!(["hh"]));

    let period = format!("from={}&to={}", day(-1), day(0));
    let (status, trail) = server
        .get(
            Some("insp"),
            &format!("/v1/supervision/trail?officer=hh&{period}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    assert_eq!(trail["inspections"][0]["inspection_id"], id.as_str());
    assert_eq!(trail["inspection_findings"][0]["rule"], "refused_issuable");
    assert_eq!(trail["rectifications"].as_array().map(Vec::len), Some(2));
    let (status, trail) = server
        .get(
            Some("ld"),
            &format!("/v1/supervision/trail?station=S1&{period}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    assert_eq!(
        trail["actions_per_type"]["RectificationReported"], 2,
        "{trail}"
    );
    assert_eq!(trail["actions_truncated"], false);
    let (status, other) = server
        .get(
            Some("ld"),
            &format!("/v1/supervision/trail?station=S2&{period}"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{other}");
    // The inspector is recorded at S2 but acts for the inspectorate, not for the station.
    let (status, other) = server
        .get(
            Some("insp"),
            &format!("/v1/supervision/trail?station=S2&{period}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(other["actions_per_type"], json!({}), "{other}");
    let (status, far) = server
        .get(
            Some("insp"),
            "/v1/supervision/trail?officer=hh&from=0001-01-01&to=2026-12-31",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{far}");
    assert_eq!(far["error"]["field"], "from");

    let path = format!("/v1/supervision/compliance?level=station&code=S1&{period}");
    let (status, compliance) = server.get(Some("insp"), &path).await;
    assert_eq!(status, StatusCode::OK, "{compliance}");
    assert_eq!(compliance["inspections_opened"], 1);
    assert_eq!(compliance["notices_published"], 1);
    assert_eq!(compliance["rectifications_required"], 2);
    assert_eq!(compliance["open_rectifications"], 0);
    assert_eq!(compliance["closed_per_outcome"]["admonishment"], 1);
    assert_eq!(
        compliance["inspection_findings_per_category"]["inaction"],
        1
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notice_reaches_the_area_addressed() {
    let server = with_supervisors(TestServer::start().await).await;
    let finding = json!({"category": "inaction", "officer": "hh",
                         "description": "refused a kinship certificate the catalogue issues"});
    let base = inspection_with_finding(&server, finding).await;
    let notices = format!("{base}/notices");
    for (level, code) in [
        ("county", "K9"),
        ("city", "C9"),
        ("province", "C1"),
        ("station", "S2"),
    ] {
        let notice = json!({"text": "station S1 refused kinship certificates it must issue",
                            "audience": {"level": level, "code": code}});
        let want = (StatusCode::UNPROCESSABLE_ENTITY, "audience_outside_area");
        refused(&server, "insp", &notices, notice, want).await;
    }
    let to_station = json!({"text": "station S1 refused kinship certificates it must issue"});
    expect(&server, "insp", &notices, to_station, StatusCode::OK).await;
    let to_county = json!({"text": "every station of K1: kinship certificates are issued, not refused",
                           "audience": {"level": "county", "code": "K1"}});
    let inspection = expect(&server, "insp", &notices, to_county, StatusCode::OK).await;
    assert_eq!(
        inspection["notices"][1]["audience"],
        json!({"level": "county", "code": "K1"})
    );
    let to_province = json!({"text": "every station of the province: kinship certificates are issued",
                             "audience": {"level": "province", "code": "C"}});
    expect(&server, "insp", &notices, to_province, StatusCode::OK).await;
    settle(&server).await;

    let levels = |answer: &Value| -> Vec<String> {
        answer
            .as_array()
            .expect("notices")
            .iter()
            .map(|notice| {
                notice["audience_level"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    // The inspected station receives all three, another station of its county two of them.
    let (status, own) = server.get(Some("hh"), "/v1/notices").await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let mut received = levels(&own);
    received.sort();
    assert_eq!(received, ["county", "province", "station"]);
    let (status, other) = server.get(Some("hh9"), "/v1/notices").await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let mut received = levels(&other);
    received.sort();
    assert_eq!(received, ["county", "province"]);
    assert_eq!(other[0]["station_code"], "S1");
    let (status, answer) = server.get(Some("hh9"), "/v1/notices?station=S1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, all) = server.get(Some("insp"), "/v1/notices").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    let (status, of_s2) = server.get(Some("prov"), "/v1/notices?station=S2").await;
    assert_eq!(status, StatusCode::OK, "{of_s2}");
    assert_eq!(of_s2.as_array().map(Vec::len), Some(2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_inspection_steps_record_nothing() {
    let server = with_supervisors(TestServer::start().await).await;
    let open = |kind: &str, id: &str| {
        json!({"body": "discipline", "target": {"kind": kind, "id": id},
               "reason": "complaint about refusals received"})
    };
    let forbidden = (StatusCode::FORBIDDEN, "inspectors_only");
    refused(
        &server,
        "ld",
        "/v1/inspections",
        open("station", "S1"),
        forbidden,
    )
    .await;
    refused(
        &server,
        "prov",
        "/v1/inspections",
        open("station", "S1"),
        forbidden,
    )
    .await;
    let unknown = (StatusCode::UNPROCESSABLE_ENTITY, "unknown_target");
    refused(
        &server,
        "insp",
        "/v1/inspections",
        open("officer", "nobody"),
        unknown,
    )
    .await;
    refused(
        &server,
        "insp",
        "/v1/inspections",
        open("application", "no-such-case"),
        unknown,
    )
    .await;
    let short =
        json!({"body": "discipline", "target": {"kind": "station", "id": "S1"}, "reason": "why"});
    refused(
        &server,
        "insp",
        "/v1/inspections",
        short,
        (StatusCode::BAD_REQUEST, "text_too_short"),
    )
    .await;
    let future = json!({"body": "discipline", "target": {"kind": "station", "id": "S1"},
                        "reason": "complaint about refusals received", "date": day(1)});
    refused(
        &server,
        "insp",
        "/v1/inspections",
        future,
        (StatusCode::UNPROCESSABLE_ENTITY, "date_out_of_range"),
    )
    .await;

    // A case target resolves to the case's station.
    let application = server.submit("hh", kinship_request()).await;
    let opened = expect(
        &server,
        "insp",
        "/v1/inspections",
        open("application", &application),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(opened["station"], "S1");

    let id = open_inspection(&server).await;
    let base = format!("/v1/inspections/{id}");
    let notice = json!({"text": "station S1 refused kinship certificates it must issue"});
    refused(
        &server,
        "insp",
        &format!("{base}/notices"),
        notice,
        (StatusCode::CONFLICT, "no_findings"),
    )
    .await;
    let finding = |rule: &str, officer: &str| {
        json!({"category": "misconduct", "rule": rule, "officer": officer,
               "description": "issued without the required evidence check"})
    };
    refused(
        &server,
        "insp",
        &format!("{base}/findings"),
        finding("made_up", "hh"),
        (StatusCode::BAD_REQUEST, "unknown_rule"),
    )
    .await;
    let unknown_case = json!({"category": "inaction", "case_id": "no-such-case",
                              "description": "refused a kinship certificate the catalogue issues"});
    refused(
        &server,
        "insp",
        &format!("{base}/findings"),
        unknown_case,
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_case"),
    )
    .await;
    refused(
        &server,
        "insp",
        &format!("{base}/findings"),
        finding("issued_without_evidence", "ghost"),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_officer"),
    )
    .await;
    refused(
        &server,
        "ld",
        &format!("{base}/findings"),
        finding("issued_without_evidence", "hh"),
        (StatusCode::FORBIDDEN, "inspectors_only"),
    )
    .await;
    let (status, answer) = server
        .post(
            "insp",
            &format!("{base}/findings"),
            json!({"category": "sloth", "description": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    expect(
        &server,
        "insp",
        &format!("{base}/findings"),
        finding("issued_without_evidence", "hh"),
        StatusCode::OK,
    )
    .await;

    let requirement = |due: String| json!({"requirement": "check every issued certificate's evidence", "due_on": due});
    refused(
        &server,
        "insp",
        &format!("{base}/rectification"),
        requirement(day(0)),
        (StatusCode::BAD_REQUEST, "due_date_out_of_range"),
    )
    .await;
    refused(
        &server,
        "insp",
        &format!("{base}/rectification"),
        requirement(day(400)),
        (StatusCode::BAD_REQUEST, "due_date_out_of_range"),
    )
    .await;
    expect(
        &server,
        "insp",
        &format!("{base}/rectification"),
        requirement(day(10)),
        StatusCode::OK,
    )
    .await;
    let report = json!({"report": "every certificate of the month rechecked"});
    refused(
        &server,
        "hh",
        &format!("{base}/rectification/report"),
        report.clone(),
        (StatusCode::FORBIDDEN, "station_leader_only"),
    )
    .await;
    refused(
        &server,
        "insp",
        &format!("{base}/rectification/report"),
        report,
        (StatusCode::FORBIDDEN, "station_leader_only"),
    )
    .await;
    let closing = json!({"outcome": "admonishment", "officers": ["hh"], "reason": "evidence missing on issuance"});
    refused(
        &server,
        "insp",
        &format!("{base}/closing"),
        closing,
        (StatusCode::CONFLICT, "rectification_pending"),
    )
    .await;
    let verification = json!({"accepted": true, "note": "nothing reported yet to check"});
    refused(
        &server,
        "insp",
        &format!("{base}/rectification/verification"),
        verification,
        (StatusCode::CONFLICT, "wrong_stage"),
    )
    .await;

    let (status, missing) = server.get(Some("insp"), "/v1/inspections/no-such-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(missing["error"]["code"], "inspection_not_found");
    refused(
        &server,
        "insp",
        "/v1/inspections/no-such-id/notices",
        json!({"text": "a notice about nothing at all"}),
        (StatusCode::NOT_FOUND, "inspection_not_found"),
    )
    .await;
    // Another station's officer gets not found, so ids cannot be probed.
    let (status, _) = server.get(Some("hh9"), &base).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = server.get(Some("ld"), "/v1/inspections?station=S2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{list}");
    let (status, list) = server
        .get(Some("insp"), "/v1/inspections?status=lost")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{list}");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_is_recorded_once_per_version_and_counted() {
    let server = with_supervisors(TestServer::start().await).await;
    let (_, policy) = server.get(Some("hh"), "/v1/policy").await;
    let version = policy["version"]
        .as_str()
        .expect("policy version")
        .to_string();
    let body = |officer: &str, version: &str| json!({"officer": officer, "policy_version": version, "course": "certificate catalogue and the four principles"});
    let answer = expect(
        &server,
        "ld",
        "/v1/training-records",
        body("hh", &version),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(answer["trainings"][0]["recorded_by"], "ld");
    refused(
        &server,
        "ld",
        "/v1/training-records",
        body("hh", &version),
        (StatusCode::CONFLICT, "training_already_recorded"),
    )
    .await;
    refused(
        &server,
        "hh9",
        "/v1/training-records",
        body("hh", &version),
        (StatusCode::FORBIDDEN, "station_leader_only"),
    )
    .await;
    refused(
        &server,
        "ld",
        "/v1/training-records",
        body("hh9", &version),
        (StatusCode::FORBIDDEN, "station_leader_only"),
    )
    .await;
    refused(
        &server,
        "ld",
        "/v1/training-records",
        body("ghost", &version),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_officer"),
    )
    .await;
    // An inspector is recorded at a station but is no officer of it, whichever station it is.
    refused(
        &server,
        "ld",
        "/v1/training-records",
        body("insp", &version),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "officer_not_station_staff",
        ),
    )
    .await;
    refused(
        &server,
        "ld",
        "/v1/training-records",
        body("cm", "1999-01"),
        (StatusCode::BAD_REQUEST, "unknown_policy_version"),
    )
    .await;
    settle(&server).await;

    let (status, coverage) = server.get(Some("ld"), "/v1/training-records").await;
    assert_eq!(status, StatusCode::OK, "{coverage}");
    assert_eq!(coverage["officers"], 4, "hh, cm, ld and ld2 at S1");
    assert_eq!(coverage["trained"], 1);
    let (status, coverage) = server.get(Some("insp"), "/v1/training-records").await;
    assert_eq!(status, StatusCode::OK, "{coverage}");
    assert_eq!(coverage["officers"], 5, "supervisors are not counted");
    let (status, _) = server.get(Some("hh"), "/v1/training-records").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let period = format!("from={}&to={}", day(0), day(0));
    let (_, compliance) = server
        .get(
            Some("insp"),
            &format!("/v1/supervision/compliance?level=county&code=K1&{period}"),
        )
        .await;
    assert_eq!(compliance["officers"], 5);
    assert_eq!(compliance["officers_trained"], 1);
    assert_eq!(compliance["training_coverage"], 0.2);
    assert_eq!(compliance["training_policy_version"], version.as_str());

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem_report_answered_by_province() {
    let server = with_supervisors(TestServer::start().await).await;
    let problem = json!({"situation": "a consulate asks for proof of a name used before 1990",
                         "matter": "kinship"});
    let answer = expect(
        &server,
        "hh",
        "/v1/problem-reports",
        problem.clone(),
        StatusCode::CREATED,
    )
    .await;
    let id = answer["report_id"].as_str().expect("id").to_string();
    assert_eq!(answer["status"], "reported");
    assert_eq!(answer["station"], "S1");

    refused(
        &server,
        "insp",
        "/v1/problem-reports",
        problem,
        (StatusCode::FORBIDDEN, "station_officers_only"),
    )
    .await;
    let unknown = json!({"situation": "a consulate asks for proof of a name used before 1990", "matter": "astrology"});
    refused(
        &server,
        "hh",
        "/v1/problem-reports",
        unknown,
        (StatusCode::BAD_REQUEST, "unknown_matter"),
    )
    .await;
    let reply = json!({"answer": "issue the name-change certificate from the household archive"});
    refused(
        &server,
        "ld",
        &format!("/v1/problem-reports/{id}/answer"),
        reply.clone(),
        (StatusCode::FORBIDDEN, "provincial_office_only"),
    )
    .await;
    refused(
        &server,
        "prov",
        "/v1/problem-reports/nope/answer",
        reply.clone(),
        (StatusCode::NOT_FOUND, "problem_report_not_found"),
    )
    .await;

    expect(
        &server,
        "prov",
        &format!("/v1/problem-reports/{id}/acknowledgement"),
        json!({}),
        StatusCode::OK,
    )
    .await;
    refused(
        &server,
        "prov",
        &format!("/v1/problem-reports/{id}/acknowledgement"),
        json!({}),
        (StatusCode::CONFLICT, "already_acknowledged"),
    )
    .await;
    let answer = expect(
        &server,
        "prov",
        &format!("/v1/problem-reports/{id}/answer"),
        reply.clone(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["status"], "answered");
    refused(
        &server,
        "prov",
        &format!("/v1/problem-reports/{id}/answer"),
        reply,
        (StatusCode::CONFLICT, "already_answered"),
    )
    .await;

    // The provincial officer reads supervision records and acts on no case.
    let (status, answer) = server
        .post("prov", "/v1/applications", kinship_request())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "inspector_reads_only");

    settle(&server).await;
    let (status, list) = server
        .get(Some("prov"), "/v1/problem-reports?status=answered")
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["reports"].as_array().map(Vec::len), Some(1));
    let (_, list) = server.get(Some("hh9"), "/v1/problem-reports").await;
    assert_eq!(list["reports"], json!([]), "S2 does not see S1's reports");
    let (status, _) = server
        .get(Some("hh9"), &format!("/v1/problem-reports/{id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, shown) = server
        .get(Some("cm"), &format!("/v1/problem-reports/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");

    server.stop().await;
}

/// Rows of every table of the inspections projection, in a stable order.
async fn snapshot(server: &TestServer) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, order) in [
        ("inspections", "inspection_id"),
        ("inspection_findings", "inspection_id, number"),
        ("inspection_notices", "inspection_id, number"),
        ("rectifications", "inspection_id, round"),
        ("training_records", "officer_id, policy_version"),
        ("problem_reports", "report_id"),
    ] {
        let table_rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY {order}"
        ))
        .fetch_all(server.pool())
        .await
        .expect("table reads");
        rows.extend(table_rows);
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspections_rebuild_equals_running() {
    let mut server = with_supervisors(TestServer::start().await).await;
    let finding =
        json!({"category": "inaction", "description": "refusals without a referral named"});
    let base = inspection_with_finding(&server, finding).await;
    let requirement =
        json!({"requirement": "name the referral on every refusal notice", "due_on": day(5)});
    expect(
        &server,
        "insp",
        &format!("{base}/rectification"),
        requirement,
        StatusCode::OK,
    )
    .await;
    let problem = json!({"situation": "a school asks for proof of a former address"});
    expect(
        &server,
        "hh",
        "/v1/problem-reports",
        problem,
        StatusCode::CREATED,
    )
    .await;
    let (_, policy) = server.get(Some("hh"), "/v1/policy").await;
    let training = json!({"officer": "cm", "policy_version": policy["version"], "course": "catalogue training"});
    expect(
        &server,
        "ld",
        "/v1/training-records",
        training,
        StatusCode::CREATED,
    )
    .await;
    settle(&server).await;
    let running = snapshot(&server).await;
    assert_eq!(running.len(), 5, "{running:?}");

    // As `zhengming rebuild` does, rebuild with the server stopped: the embedded database
    // serves one connection, which the running projector would compete for.
    server.stop_server().await;
    let applied = projections::inspection::rebuild(server.pool())
        .await
        .expect("rebuild runs");
    assert_eq!(applied, 5);
    assert_eq!(snapshot(&server).await, running);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accountability_rests_on_findings() {
    let server = with_supervisors(TestServer::start().await).await;
    let id = open_inspection(&server).await;
    let base = format!("/v1/inspections/{id}");
    let finding = |officer: &str| {
        json!({"category": "inaction", "officer": officer,
               "description": "refused a kinship certificate the catalogue issues"})
    };
    refused(
        &server,
        "insp",
        &format!("{base}/findings"),
        finding("hh9"),
        (StatusCode::UNPROCESSABLE_ENTITY, "officer_of_other_station"),
    )
    .await;
    expect(
        &server,
        "insp",
        &format!("{base}/findings"),
        finding("hh"),
        StatusCode::OK,
    )
    .await;
    let early =
        json!({"text": "station S1 refused kinship certificates it must issue", "date": day(-1)});
    refused(
        &server,
        "insp",
        &format!("{base}/notices"),
        early,
        (StatusCode::BAD_REQUEST, "date_out_of_order"),
    )
    .await;
    let closing = json!({"outcome": "admonishment", "officers": ["hh", "cm"],
                         "reason": "refusals against the catalogue"});
    refused(
        &server,
        "insp",
        &format!("{base}/closing"),
        closing,
        (StatusCode::UNPROCESSABLE_ENTITY, "officer_not_in_findings"),
    )
    .await;

    // Supervisors' trails are not for station leaders, even of the station they are recorded at.
    let local = Officer {
        id: "dc1".into(),
        name: "inspector at S1".into(),
        role: Role::Inspector,
    };
    registry::add_officer(server.pool(), &local, "S1")
        .await
        .expect("officer is recorded");
    let period = format!("from={}&to={}", day(-1), day(0));
    let (status, answer) = server
        .get(
            Some("ld"),
            &format!("/v1/supervision/trail?officer=dc1&{period}"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    server.stop().await;
}
