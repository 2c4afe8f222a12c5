//! Information exchange end to end: organisation, requests with CSV batches, working-day
//! deadlines, verification, feedback timeliness, handover and filing, on a real server.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zhengming::server::ServerOptions;

/// Register rows: a man, a woman with a former name, and a deceased woman.
const REGISTER: &str = "\
id_number,name,former_name,sex,ethnicity,date_of_birth,place_of_birth,native_place,registered_address,household_moves,registration_status,criminal_record
220102199001011239,张伟,,male,汉族,1990-01-01,长春市,吉林省长春市,长春市南关区自强街1号,,active,none
220104200002290047,李娜,李小娜,female,满族,2000-02-29,吉林市,吉林省吉林市,长春市朝阳区红旗街2号,,active,none
11010519491231002X,王芳,,female,汉族,1949-12-31,北京市,北京市,北京市朝阳区某街3号,,deceased,none
";

/// A valid ID number that the register does not hold.
const UNKNOWN_ID: &str = "220102198506151232";

/// Loads the register, registers department `civil` and designates `hh` for county K1.
async fn organised() -> TestServer {
    organised_on(TestServer::start().await).await
}

async fn organised_on(server: TestServer) -> TestServer {
    let loaded = zhengming::exchange::population::load_csv(server.pool(), REGISTER.as_bytes())
        .await
        .expect("register loads");
    assert_eq!(loaded, 3);
    let (status, body) = server
        .post(
            "ld",
            "/v1/exchange/departments",
            json!({"code": "civil", "name": "民政局 (civil affairs)", "kind": "civil_affairs"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .post(
            "ld",
            "/v1/exchange/units/K1/responsible-officer",
            json!({"officer": "hh"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["responsible_officer"], "hh");
    server
}

/// Registers an agreement of `cadence` for K1 and returns its id.
async fn agreement(server: &TestServer, cadence: &str) -> String {
    let body = json!({
        "household_unit": "K1", "department": "civil", "cadence": cadence,
        "items": ["name", "sex", "date_of_birth", "id_number", "registration_status"]
    });
    let (status, answer) = server.post("ld", "/v1/exchange/agreements", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["agreement_id"].as_str().expect("id").to_string()
}

/// Uploads a subject CSV as `officer` and returns the status and body.
async fn upload(
    server: &TestServer,
    officer: &str,
    query: &[(&str, &str)],
    csv: &str,
) -> (StatusCode, Value) {
    let response = server
        .http
        .post(format!("{}/v1/exchange/requests", server.base))
        .bearer_auth(&server.tokens[officer])
        .header("content-type", "text/csv")
        .query(query)
        .body(csv.to_string())
        .send()
        .await
        .expect("server answers");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

const NAME_SEX_CSV: &str = "id_number,name,sex\n220102199001011239,张伟,male\n";

/// Receives a request for name and sex under `agreement` at `received_at`.
async fn receive(server: &TestServer, agreement: &str, received_at: &str) -> (StatusCode, Value) {
    let query = [
        ("agreement_id", agreement),
        ("received_at", received_at),
        ("items", "name,sex"),
    ];
    upload(server, "hh", &query, NAME_SEX_CSV).await
}

async fn subject_rows(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM exchange_subjects")
        .fetch_one(server.pool())
        .await
        .expect("count subjects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_follows_cadence_and_calendar() {
    let server = organised().await;
    // (cadence, received at, deadline). Spring Festival 2026 is 02-15..02-23 with swap
    // Saturdays 02-14 and 02-28; National Day is 10-01..10-07 with swap Saturday 10-10.
    let cases = [
        ("annual", "2026-01-30T10:00:00+08:00", "2026-03-05"),
        ("semi_annual", "2026-01-30T10:00:00+08:00", "2026-03-05"),
        ("quarterly", "2026-09-30T10:00:00+08:00", "2026-10-20"),
        ("monthly", "2026-02-12T10:00:00+08:00", "2026-02-26"),
        ("monthly", "2026-09-30T16:00:00+08:00", "2026-10-13"),
        // Received on the swap Saturday, a working day: due the same day.
        ("ad_hoc", "2026-02-14T09:00:00+08:00", "2026-02-14"),
        // Received during National Day: due the first working day after it.
        ("ad_hoc", "2026-10-03T09:00:00+08:00", "2026-10-08"),
        // 20:00 UTC on 02-13 is already Saturday 02-14 in China.
        ("ad_hoc", "2026-02-13T20:00:00Z", "2026-02-14"),
    ];
    for (cadence, received_at, deadline) in cases {
        let id = agreement(&server, cadence).await;
        let (status, body) = receive(&server, &id, received_at).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{cadence} {received_at}: {body}"
        );
        assert_eq!(body["deadline"], deadline, "{cadence} {received_at}");
        assert_eq!(body["cadence"], cadence);
        assert_eq!(body["status"], "received");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn year_without_calendar_is_rejected() {
    let server = organised().await;
    let id = agreement(&server, "monthly").await;
    let before = server.event_count().await;
    // The calendar covers 2015 to 2026. Receipts are never in the future, so a year before
    // the data stands for the years after it.
    let (status, body) = receive(&server, &id, "2014-03-03T09:00:00+08:00").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "calendar_year_not_covered");
    assert_eq!(body["error"]["field"], "received_at");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("2014"), "{message}");
    assert_eq!(server.event_count().await, before);
    assert_eq!(subject_rows(&server).await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_responsible_officer_is_rejected() {
    let server = organised().await;
    let path = "/v1/exchange/units/K1/responsible-officer";
    let before = server.event_count().await;
    let (status, body) = server.post("ld", path, json!({"officer": "hh9"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"]["code"],
        "responsible_officer_already_designated"
    );
    assert_eq!(server.event_count().await, before);

    let change = json!({"officer": "hh9", "replaces": "hh"});
    let (status, body) = server.post("ld", path, change).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "reason");

    let change = json!({"officer": "hh9", "replaces": "hh", "reason": "hh moved to patrol"});
    let (status, body) = server.post("ld", path, change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["responsible_officer"], "hh9");

    // A household officer may not designate, and an officer outside the unit cannot be named.
    let (status, _) = server.post("hh", path, json!({"officer": "hh"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let change = json!({"officer": "nobody", "replaces": "hh9", "reason": "x"});
    let (status, body) = server.post("ld", path, change).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "officer");

    // The former responsible officer no longer handles requests.
    let id = agreement(&server, "monthly").await;
    let (status, body) = receive(&server, &id, "2026-11-02T09:00:00+08:00").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "not_responsible_officer");

    let (status, unit) = server.get(Some("hh"), "/v1/exchange/units/K1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unit["responsible_officer"], "hh9");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_without_responsible_officer_rejects_requests() {
    let server = TestServer::start().await;
    let (status, _) = server
        .post(
            "ld",
            "/v1/exchange/departments",
            json!({"code": "civil", "name": "civil", "kind": "civil_affairs"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = agreement(&server, "monthly").await;
    let (status, body) = receive(&server, &id, "2026-11-02T09:00:00+08:00").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "no_responsible_officer");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_agreement_input_is_rejected() {
    let server = organised().await;
    let cases = [
        (
            json!({"household_unit": "K1", "department": "civil", "cadence": "monthly", "items": ["shoe_size"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items",
        ),
        (
            json!({"household_unit": "K1", "department": "civil", "cadence": "monthly", "items": []}),
            StatusCode::BAD_REQUEST,
            "items",
        ),
        (
            json!({"household_unit": "K1", "department": "civil", "cadence": "weekly", "items": ["name"]}),
            StatusCode::BAD_REQUEST,
            "cadence",
        ),
        (
            json!({"household_unit": "K1", "department": "tax", "cadence": "monthly", "items": ["name"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "department",
        ),
        (
            json!({"household_unit": "K1", "department": "civil", "cadence": "monthly", "items": ["name", "criminal_record"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items",
        ),
    ];
    let before = server.event_count().await;
    for (body, expected, field) in cases {
        let (status, answer) = server.post("ld", "/v1/exchange/agreements", body).await;
        assert_eq!(status, expected, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backdated_or_future_times_are_rejected() {
    let options = ServerOptions {
        backdate_days: 7,
        ledger: None,
    };
    let server = organised_on(TestServer::start_with(options).await).await;
    let id = agreement(&server, "monthly").await;
    let before = server.event_count().await;
    let now = chrono::Utc::now();
    for (offset, what) in [(-30, "a month ago"), (1, "tomorrow")] {
        let at = (now + chrono::Duration::days(offset)).to_rfc3339();
        let (status, body) = receive(&server, &id, &at).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(body["error"]["code"], "date_out_of_range", "{what}");
        assert_eq!(body["error"]["field"], "received_at", "{what}");
    }
    assert_eq!(server.event_count().await, before);

    let at = (now - chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = receive(&server, &id, &at).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let request = body["request_id"].as_str().expect("id").to_string();
    let path = format!("/v1/exchange/requests/{request}/verification");
    let (status, body) = server.post("hh", &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Feedback dated before the allowance would turn late feedback into on-time feedback.
    let before = server.event_count().await;
    let early = (now - chrono::Duration::days(20)).to_rfc3339();
    let path = format!("/v1/exchange/requests/{request}/feedback");
    let (status, body) = server
        .post("hh", &path, json!({"delivered_at": early}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "delivered_at");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn criminal_records_only_for_courts() {
    let server = organised().await;
    let before = server.event_count().await;
    let (status, body) = server
        .post(
            "ld",
            "/v1/exchange/departments",
            json!({"code": "bank", "name": "某银行", "kind": "bank"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "unknown_department_kind");
    assert_eq!(body["error"]["field"], "kind");
    let items = json!(["name", "criminal_record"]);
    let agreement =
        json!({"household_unit": "K1", "department": "civil", "cadence": "ad_hoc", "items": items});
    let (status, body) = server
        .post("ld", "/v1/exchange/agreements", agreement)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "item_not_for_department");
    assert_eq!(server.event_count().await, before);

    let (status, body) = server
        .post(
            "ld",
            "/v1/exchange/departments",
            json!({"code": "court", "name": "南关区人民法院", "kind": "court"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "court");
    let agreement =
        json!({"household_unit": "K1", "department": "court", "cadence": "ad_hoc", "items": items});
    let (status, body) = server
        .post("ld", "/v1/exchange/agreements", agreement)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.stop().await;
}

/// Rows 3, 4 and 6 are invalid: a wrong check character, a sex outside the format, and a
/// missing field. Line 5 is blank.
const BAD_ROWS_CSV: &str = "id_number,sex,name\n\
220102199001011239,male,张伟\n\
220102199001011235,male,张伟\n\
220104200002290047,F,李娜\n\
\n\
11010519491231002X,female\n\
220102198506151232,male,赵六\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_with_bad_rows() {
    let server = organised().await;
    let id = agreement(&server, "monthly").await;
    let before = server.event_count().await;
    let query = [
        ("agreement_id", id.as_str()),
        ("received_at", "2026-11-02T09:00:00+08:00"),
        ("items", "name,sex"),
    ];
    let (status, body) = upload(&server, "hh", &query, BAD_ROWS_CSV).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_rows");
    assert_eq!(body["error"]["field"], "subjects");
    let rows = body["error"]["rows"].as_array().expect("rows");
    let lines: Vec<u64> = rows
        .iter()
        .map(|row| row["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 6]);
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap()
            .contains("check character"),
        "{body}"
    );
    assert!(
        rows[1]["reason"].as_str().unwrap().contains("male, female"),
        "{body}"
    );
    assert!(
        rows[2]["reason"].as_str().unwrap().contains("2 fields"),
        "{body}"
    );
    assert_eq!(server.event_count().await, before);
    assert_eq!(subject_rows(&server).await, 0);

    let mut skip = query.to_vec();
    skip.push(("on_invalid_rows", "skip_rows"));
    let (status, body) = upload(&server, "hh", &skip, BAD_ROWS_CSV).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["batch"]["subjects"], 2);
    assert_eq!(body["batch"]["rejected_rows"], 3);
    assert_eq!(body["invalid_rows"].as_array().map(Vec::len), Some(3));
    let file_sha256 = hex::encode(Sha256::digest(BAD_ROWS_CSV.as_bytes()));
    assert_eq!(body["batch"]["file_sha256"], file_sha256);
    assert_eq!(subject_rows(&server).await, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_header_and_query_are_rejected() {
    let server = organised().await;
    let id = agreement(&server, "monthly").await;
    let query = [
        ("agreement_id", id.as_str()),
        ("received_at", "2026-11-02T09:00:00+08:00"),
        ("items", "name,sex"),
    ];
    let (status, body) = upload(
        &server,
        "hh",
        &query,
        "id_number,name\n220102199001011239,张伟\n",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_csv_header");

    let (status, body) = upload(&server, "hh", &query, "id_number,name,sex\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "empty_batch");

    let mut bad_time = query;
    bad_time[1] = ("received_at", "2026-11-02 09:00");
    let (status, body) = upload(&server, "hh", &bad_time, NAME_SEX_CSV).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "received_at");

    let mut outside = query;
    outside[2] = ("items", "name,criminal_record");
    let (status, body) = upload(&server, "hh", &outside, NAME_SEX_CSV).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "unknown_item");
    assert_eq!(subject_rows(&server).await, 0);
    server.stop().await;
}

/// Receives and verifies a monthly request on 2026-02-12 and returns its id and body.
async fn verified_request(server: &TestServer) -> (String, Value) {
    let agreement = agreement(server, "monthly").await;
    let csv = format!(
        "id_number,name,sex,date_of_birth,registration_status\n\
         220102199001011239,张伟,male,1990-01-01,active\n\
         220104200002290047,李小娜,female,2000-02-29,active\n\
         11010519491231002X,王芳,female,1949-12-31,active\n\
         {UNKNOWN_ID},赵六,male,1985-06-15,active\n"
    );
    let query = [
        ("agreement_id", agreement.as_str()),
        ("received_at", "2026-02-12T10:00:00+08:00"),
        (
            "items",
            "name,sex,date_of_birth,id_number,registration_status",
        ),
    ];
    let (status, body) = upload(server, "hh", &query, &csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["request_id"].as_str().expect("id").to_string();
    let path = format!("/v1/exchange/requests/{id}/verification");
    let (status, body) = server.post("hh", &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (id, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_reports_match_mismatch_not_found() {
    let server = organised().await;
    let (id, body) = verified_request(&server).await;
    assert_eq!(body["status"], "verified");
    let verification = &body["verification"];
    assert_eq!(verification["subjects"], 4);
    // 4 subjects x 5 items: the unknown subject is not_found 5 times; 李娜 mismatches on
    // name (her former name was sent) and 王芳 on status.
    assert_eq!(verification["matches"], 13);
    assert_eq!(verification["mismatches"], 2);
    assert_eq!(verification["not_found"], 5);

    let response = server
        .http
        .get(format!(
            "{}/v1/exchange/requests/{id}/results.csv",
            server.base
        ))
        .bearer_auth(&server.tokens["hh"])
        .send()
        .await
        .expect("server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let header = response.headers()["x-content-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let text = response.text().await.expect("CSV body");
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    assert_eq!(digest, header);
    assert_eq!(verification["result_sha256"], digest);
    assert_eq!(verification["result_bytes"], text.len());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "line,subject_id_number,name,sex,date_of_birth,id_number,registration_status"
    );
    assert_eq!(
        lines[1],
        "2,220102199001011239,match,match,match,match,match"
    );
    assert_eq!(
        lines[2],
        "3,220104200002290047,mismatch,match,match,match,match"
    );
    assert_eq!(
        lines[3],
        "4,11010519491231002X,match,match,match,match,mismatch"
    );
    assert_eq!(
        lines[4],
        format!("5,{UNKNOWN_ID},not_found,not_found,not_found,not_found,not_found")
    );
    // Nothing from the register beyond the outcome reaches the department.
    for register_value in ["李娜", "长春市朝阳区", "deceased", "满族"] {
        assert!(
            !text.contains(register_value),
            "result file leaks {register_value}"
        );
    }

    let path = format!("/v1/exchange/requests/{id}/verification");
    let (status, body) = server.post("hh", &path, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = server.post("hh9", &path, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_feedback_is_marked_late() {
    let server = organised().await;
    let (late, _) = verified_request(&server).await;
    let (on_time, _) = verified_request(&server).await;
    let feedback = |id: &str| format!("/v1/exchange/requests/{id}/feedback");
    // The deadline is 2026-02-26 in China Standard Time.
    let (status, body) = server
        .post(
            "hh",
            &feedback(&late),
            json!({"delivered_at": "2026-02-26T16:30:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deadline"], "2026-02-26");
    assert_eq!(body["timeliness"], "late");
    assert_eq!(body["status"], "feedback_delivered");
    let (status, body) = server
        .post(
            "hh",
            &feedback(&on_time),
            json!({"delivered_at": "2026-02-26T15:30:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["timeliness"], "on_time");

    let (status, body) = server
        .get(Some("hh"), &format!("/v1/exchange/requests/{late}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["timeliness"], "late");
    let (status, _) = server
        .post(
            "hh",
            &feedback(&late),
            json!({"delivered_at": "2026-02-27T09:00:00+08:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_before_receipt_is_rejected() {
    let server = organised().await;
    let (id, _) = verified_request(&server).await;
    let path = format!("/v1/exchange/requests/{id}/feedback");
    let (status, body) = server
        .post(
            "hh",
            &path,
            json!({"delivered_at": "2026-02-01T09:00:00+08:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "delivered_at");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_checks_manifest_then_files() {
    let server = organised().await;
    let (id, verified) = verified_request(&server).await;
    let base = format!("/v1/exchange/requests/{id}");
    let (status, _) = server
        .post(
            "hh",
            &format!("{base}/feedback"),
            json!({"delivered_at": "2026-02-20T09:00:00+08:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, request) = server.get(Some("hh"), &base).await;
    let batch = &request["batch"];
    let subjects = json!({"name": "subjects.csv", "size": batch["file_bytes"], "sha256": batch["file_sha256"]});
    let results = json!({
        "name": "results.csv",
        "size": verified["verification"]["result_bytes"],
        "sha256": verified["verification"]["result_sha256"],
    });
    let letter = json!({"name": "cover-letter.pdf", "size": 1234, "sha256": "0".repeat(64)});

    let mut wrong = results.clone();
    wrong["sha256"] = json!("f".repeat(64));
    let before = server.event_count().await;
    let handover = json!({"manifest": [subjects, wrong, letter], "receiving_person": "刘洋"});
    let (status, body) = server
        .post("hh", &format!("{base}/handover"), handover)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "material_digest_mismatch");
    assert_eq!(body["error"]["field"], "manifest[1].sha256");
    let handover = json!({"manifest": [subjects, letter], "receiving_person": "刘洋"});
    let (status, body) = server
        .post("hh", &format!("{base}/handover"), handover)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "material_missing");
    assert_eq!(server.event_count().await, before);

    let handover = json!({"manifest": [subjects, results, letter], "receiving_person": "刘洋"});
    let (status, body) = server
        .post("hh", &format!("{base}/handover"), handover)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["handover"]["handing_officer"], "hh");

    let filing = format!("{base}/filing");
    let (status, body) = server
        .post("hh", &filing, json!({"date": "2026-02-21"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "handover_not_acknowledged");

    let acknowledgements = format!("{base}/handover/acknowledgements");
    let (status, body) = server
        .post(
            "hh",
            &acknowledgements,
            json!({"party": "receiving_person", "name": "张三"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for (party, name) in [("receiving_person", "刘洋"), ("handing_officer", "hh")] {
        let (status, body) = server
            .post(
                "hh",
                &acknowledgements,
                json!({"party": party, "name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{party}: {body}");
    }
    let (status, body) = server
        .post("hh", &filing, json!({"date": "2026-02-21"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "filed");
    let number = body["registration_number"].as_str().expect("number");
    assert!(number.starts_with("JH-K1-2026-"), "{number}");

    let report = zhengming::verify::verify_all(server.pool())
        .await
        .expect("verify runs");
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(server.pool())
    .await
    .expect("events");
    assert_eq!(
        types,
        [
            "RequestReceived",
            "RequestVerified",
            "FeedbackDelivered",
            "HandoverPrepared",
            "HandoverAcknowledged",
            "HandoverAcknowledged",
            "RequestFiled"
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_register_rows_load_nothing() {
    let server = TestServer::start().await;
    let csv =
        format!("{REGISTER}220102198506151240,赵六,,unknown,汉族,1985-06-15,x,x,x,,active,none\n");
    let error = zhengming::exchange::population::load_csv(server.pool(), csv.as_bytes())
        .await
        .expect_err("an invalid row rejects the file");
    let message = error.to_string();
    assert!(message.contains("line 5"), "{message}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM population_register")
        .fetch_one(server.pool())
        .await
        .expect("count");
    assert_eq!(count, 0);
    server.stop().await;
}
