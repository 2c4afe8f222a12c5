//! The API end to end: a real server on a real port and a fresh database per test.

mod common;

use common::{TestServer, death_request, kinship_request};
use reqwest::StatusCode;
use serde_json::json;
use zhengming::server::ServerOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinship_certificate_is_issued_and_checkable() {
    let server = TestServer::start().await;
    let id = server.submit("hh", kinship_request()).await;
    let base = format!("/v1/applications/{id}");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/evidence"),
            json!({"source": "household_archives", "reference": "A-1", "result": "confirmed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/signature"),
            json!({"signer": "applicant", "name": "张伟", "phone": "13904310000"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .post(
            "hh",
            &format!("{base}/issuance"),
            json!({"seal": "household_seal", "date": "2026-11-03"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "issued");
    let number = body["certificate_number"]
        .as_str()
        .expect("number")
        .to_string();

    let (status, history) = server
        .get(
            Some("hh"),
            &format!("{base}/history?purpose=issued+certificate+check"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["chain_verified"], true);
    let events = history["events"].as_array().expect("events");
    assert_eq!(events.len(), 5);
    assert_eq!(events[1]["prev_hash"], events[0]["hash"]);
    assert_eq!(events[4]["metadata"]["actor"], "hh");
    assert!(
        events[4]["metadata"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    let mut check = None;
    for _ in 0..100 {
        let (status, body) = server
            .get(None, &format!("/v1/certificates/{number}"))
            .await;
        if status == StatusCode::OK {
            check = Some(body);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let check = check.expect("projection publishes the certificate");
    assert_eq!(check["kind"], "kinship");
    assert_eq!(check["station"], "S1");
    assert_eq!(check["status"], "valid");
    let text = check.to_string();
    assert!(
        !text.contains("220102199001011239"),
        "public check leaks the ID number: {text}"
    );
    assert!(
        !text.contains("张伟"),
        "public check leaks the name: {text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abnormal_death_needs_another_leader() {
    let server = TestServer::start().await;
    let id = server.submit("cm", death_request()).await;
    let base = format!("/v1/applications/{id}");
    server.post("cm", &format!("{base}/evidence"), json!({"source": "station_dispatch_records", "reference": "D-9", "result": "confirmed"})).await;
    server
        .post(
            "cm",
            &format!("{base}/signature"),
            json!({"signer": "applicant", "name": "张伟", "phone": "0431-88886666"}),
        )
        .await;
    let (status, body) = server
        .post(
            "cm",
            &format!("{base}/issuance"),
            json!({"seal": "official_seal"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "approval_missing");
    let (status, body) = server
        .post("cm", &format!("{base}/approval"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "wrong_role");
    let (status, body) = server
        .post("ld", &format!("{base}/approval"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .post(
            "cm",
            &format!("{base}/issuance"),
            json!({"seal": "official_seal"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approved_by"], "ld");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_and_records_nothing() {
    let server = TestServer::start().await;
    let accepted = server.submit("hh", kinship_request()).await;
    let refused = {
        let mut request = kinship_request();
        request["circumstances"] = json!({"same_household_register": true});
        server.submit("hh", request).await
    };
    let led = server.submit("ld", death_request()).await;
    server.post("ld", &format!("/v1/applications/{led}/evidence"), json!({"source": "station_dispatch_records", "reference": "D-1", "result": "confirmed"})).await;
    let before = server.event_count().await;

    let with = |field: &str, value: serde_json::Value| {
        let mut request = kinship_request();
        let mut cursor = &mut request;
        let parts: Vec<&str> = field.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            cursor = &mut cursor[*part];
        }
        cursor[parts[parts.len() - 1]] = value;
        request
    };
    let cases = [
        (
            "ID check character",
            "hh",
            "/v1/applications".to_string(),
            with("applicant.id_number", json!("220102199001011235")),
            StatusCode::BAD_REQUEST,
            "invalid_id_number",
            Some("applicant.id_number"),
        ),
        (
            "ID birth date",
            "hh",
            "/v1/applications".to_string(),
            with("applicant.id_number", json!("220104200002300049")),
            StatusCode::BAD_REQUEST,
            "invalid_id_number",
            Some("applicant.id_number"),
        ),
        (
            "decision date",
            "hh",
            "/v1/applications".to_string(),
            with("decision_date", json!("2026-02-30")),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("decision_date"),
        ),
        (
            "ID birth after the decision",
            "hh",
            "/v1/applications".to_string(),
            with("applicant.id_number", json!("220102202701011234")),
            StatusCode::BAD_REQUEST,
            "invalid_id_number",
            Some("applicant.id_number"),
        ),
        (
            "unit type spelled unlike any code",
            "hh",
            "/v1/applications".to_string(),
            with("unit.unit_type", json!("State_Organ")),
            StatusCode::BAD_REQUEST,
            "unknown_unit_type",
            Some("unit.unit_type"),
        ),
        (
            "NUL character in a name",
            "hh",
            "/v1/applications".to_string(),
            with("applicant.name", json!("张\u{0}伟")),
            StatusCode::BAD_REQUEST,
            "invalid_text",
            Some("applicant.name"),
        ),
        (
            "name too long",
            "hh",
            "/v1/applications".to_string(),
            with("applicant.name", json!("张".repeat(65))),
            StatusCode::BAD_REQUEST,
            "name_too_long",
            Some("applicant.name"),
        ),
        (
            "unknown nested field",
            "hh",
            "/v1/applications".to_string(),
            with("unit.colour", json!("red")),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("unit.colour"),
        ),
        (
            "unknown matter",
            "hh",
            "/v1/applications".to_string(),
            with("matter", json!("horoscope")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_matter",
            Some("matter"),
        ),
        (
            "missing field",
            "hh",
            "/v1/applications".to_string(),
            with("purpose", json!(null)),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("purpose"),
        ),
        (
            "refusal without explanation",
            "hh",
            format!("/v1/applications/{refused}/refusal"),
            json!({"explanation": "", "referral": "the register"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "explanation_required",
            Some("explanation"),
        ),
        (
            "wrong role issues",
            "cm",
            format!("/v1/applications/{accepted}/issuance"),
            json!({"seal": "household_seal"}),
            StatusCode::FORBIDDEN,
            "wrong_role",
            Some("role"),
        ),
        (
            "approver is handler",
            "ld",
            format!("/v1/applications/{led}/approval"),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "approver_is_handler",
            Some("officer"),
        ),
        (
            "other station",
            "hh9",
            format!("/v1/applications/{accepted}/withdrawal"),
            json!({"reason": "not mine"}),
            StatusCode::NOT_FOUND,
            "application_not_found",
            None,
        ),
        (
            "bad phone",
            "hh",
            format!("/v1/applications/{accepted}/signature"),
            json!({"signer": "applicant", "name": "张伟", "phone": "555"}),
            StatusCode::BAD_REQUEST,
            "invalid_phone",
            Some("phone"),
        ),
    ];
    for (name, officer, path, body, status, code, field) in cases {
        let (answered, answer) = server.post(officer, &path, body).await;
        assert_eq!(answered, status, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{name}: {answer}");
        assert_eq!(answer["error"]["field"].as_str(), field, "{name}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{name}"
        );
    }
    assert_eq!(
        server.event_count().await,
        before,
        "a rejected command recorded an event"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_and_oversized_body_are_refused() {
    let server = TestServer::start().await;
    let submit = |authorization: Option<reqwest::header::HeaderValue>| {
        let mut request = server
            .http
            .post(format!("{}/v1/applications", server.base))
            .json(&kinship_request());
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        request.send()
    };
    let response = submit(None).await.expect("answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "unauthorized");
    let unknown = reqwest::header::HeaderValue::from_static("Bearer zm_not_a_token");
    let response = submit(Some(unknown)).await.expect("answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A header that is present but not ASCII is not reported as missing.
    let not_ascii =
        reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("header value");
    let response = submit(Some(not_ascii)).await.expect("answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.expect("JSON");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("not visible ASCII"), "{message}");

    let mut huge = kinship_request();
    huge["purpose"] = json!("x".repeat(100 * 1024));
    let (status, body) = server.post("hh", "/v1/applications", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "body_too_large");
    assert_eq!(server.event_count().await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_result() {
    let server = TestServer::start().await;
    let send = |body: serde_json::Value| {
        server
            .http
            .post(format!("{}/v1/applications", server.base))
            .bearer_auth(&server.tokens["hh"])
            .header("Idempotency-Key", "desk-1-0001")
            .json(&body)
            .send()
    };
    let first = send(kinship_request()).await.expect("answer");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.expect("JSON");
    let again = send(kinship_request()).await.expect("answer");
    assert_eq!(again.status(), StatusCode::OK);
    let again: serde_json::Value = again.json().await.expect("JSON");
    assert_eq!(again["application_id"], first["application_id"]);
    assert_eq!(server.event_count().await, 2);

    let mut other = kinship_request();
    other["purpose"] = json!("something else");
    let reused = send(other).await.expect("answer");
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let reused: serde_json::Value = reused.json().await.expect("JSON");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    assert_eq!(server.event_count().await, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_notice_explains_and_refers() {
    let server = TestServer::start().await;
    let mut request = kinship_request();
    request["circumstances"] = json!({"same_household_register": true});
    let id = server.submit("hh", request).await;
    let (status, _) = server
        .get(Some("hh"), &format!("/v1/applications/{id}/refusal-notice"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let explanation = "户口簿已载明父子关系，请向银行出示户口簿。";
    let (status, body) = server
        .post(
            "hh",
            &format!("/v1/applications/{id}/refusal"),
            json!({"explanation": explanation, "referral": "出示户口簿"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, notice) = server
        .get(Some("hh"), &format!("/v1/applications/{id}/refusal-notice"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(notice["principle"], "legal_document");
    assert_eq!(notice["explanation"], explanation);
    assert_eq!(notice["rule_id"], "kinship.same_register");
    assert!(
        notice["text"]
            .as_str()
            .is_some_and(|text| text.contains(explanation) && text.contains("出示户口簿"))
    );
    let (status, _) = server
        .get(
            Some("hh9"),
            &format!("/v1/applications/{id}/refusal-notice"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another station must not read the notice"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_read_recorded_with_purpose() {
    let server = TestServer::start().await;
    let id = server.submit("hh", kinship_request()).await;
    let history = format!("/v1/applications/{id}/history");
    let before = server.event_count().await;
    let too_long = format!("?purpose={}", "x".repeat(501));
    for (query, status, code) in [
        ("", StatusCode::BAD_REQUEST, "missing_field"),
        ("?purpose=+", StatusCode::BAD_REQUEST, "missing_field"),
        ("?purpose=a%00b", StatusCode::BAD_REQUEST, "invalid_text"),
        ("?purpose=caf%E9", StatusCode::BAD_REQUEST, "invalid_text"),
        (
            "?purpose=one&purpose=two",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (&too_long, StatusCode::BAD_REQUEST, "field_too_long"),
    ] {
        let (answer_status, answer) = server.get(Some("hh"), &format!("{history}{query}")).await;
        assert_eq!(answer_status, status, "{query}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], "purpose", "{query}: {answer}");
    }
    let (status, answer) = server
        .get(Some("hh"), &format!("{history}?purpose=copy&reason=extra"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_query", "{answer}");
    assert_eq!(answer["error"]["field"], "reason", "{answer}");
    // A NUL character in any query parameter is refused before it reaches a database query,
    // and an id that is not UTF-8 or contains a NUL character is rejected in the same shape.
    for (officer, path) in [
        ("ld", "/v1/record-reads?reader=a%00b"),
        ("ld", "/v1/supervision/findings?station=%00"),
        ("ld", "/v1/record-reads?st%00ation=S1"),
        ("hh", "/v1/applications/caf%E9/history?purpose=lookup"),
        ("hh", "/v1/applications/a%00b/history?purpose=lookup"),
        ("hh", "/v1/applications/a%00b"),
    ] {
        let (status, answer) = server.get(Some(officer), path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_text", "{path}: {answer}");
    }
    // Another station's officer learns nothing, not even that the application exists.
    let (status, answer) = server
        .get(Some("hh9"), &format!("{history}?purpose=curious"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(
        server.event_count().await,
        before,
        "refused reads record nothing"
    );

    let (status, answer) = server
        .get(
            Some("hh"),
            &format!("{history}?purpose=applicant+asks+for+a+copy"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["read_by"], "hh");
    assert_eq!(answer["read_purpose"], "applicant asks for a copy");
    // The read is on its own chain: the application's history is unchanged.
    assert_eq!(answer["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(server.event_count().await, before + 1);
    let (payload, actor): (serde_json::Value, Option<String>) = sqlx::query_as(
        "SELECT payload, metadata->>'actor' FROM events
          WHERE aggregate_type = 'application_reads' AND aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(server.pool())
    .await
    .expect("the read is recorded");
    assert_eq!(actor.as_deref(), Some("hh"));
    assert_eq!(
        payload["ApplicationRead"],
        json!({"reader": "hh", "role": "household_officer", "station": "S1",
               "case_station": "S1", "view": "history", "purpose": "applicant asks for a copy"})
    );
    let (status, reads) = server.get(Some("ld"), "/v1/record-reads?reader=hh").await;
    assert_eq!(status, StatusCode::OK, "{reads}");
    assert_eq!(reads[0]["case_type"], "application", "{reads}");
    assert_eq!(reads[0]["case_id"], id.as_str());
    assert_eq!(reads[0]["case_station"], "S1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_and_health_are_served() {
    let server = TestServer::start().await;
    let (status, document) = server.get(None, "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/applications",
        "/v1/applications/{id}/history",
        "/v1/applications/{id}/issuance",
        "/v1/certificates/{number}",
    ] {
        assert!(
            document["paths"].get(path).is_some(),
            "OpenAPI lacks {path}"
        );
    }
    // Each path parameter is documented, and each documented one appears in its path;
    // anything else is sent in the query string.
    for (path, item) in document["paths"].as_object().expect("paths") {
        let in_template: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(name, _)| name))
            .collect();
        for (method, operation) in item.as_object().expect("path item") {
            let documented: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "path")
                .map(|parameter| parameter["name"].as_str().expect("parameter name"))
                .collect();
            assert_eq!(documented, in_template, "{method} {path}");
        }
    }
    // Two request bodies that differ keep two schemas, where one name would make one of them
    // disappear from the document.
    let schemas = &document["components"]["schemas"];
    assert_ne!(
        schemas["SubmitRequest"]["properties"]["unit"],
        schemas["VisitRequest"]["properties"]["unit"]
    );
    assert!(
        schemas["AcknowledgementRequest"]["properties"]
            .get("party")
            .is_none(),
        "{}",
        schemas["AcknowledgementRequest"]
    );
    // Every read of personal data is rejected without a purpose, so the document marks it required.
    for path in [
        "/v1/applications/{id}/history",
        "/v1/supervision/applications/{id}/replay",
        "/v1/record-checks/{id}/results",
        "/v1/unit-visits/{id}/results",
    ] {
        let parameters = document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("OpenAPI gives no parameters for {path}"));
        let purpose = parameters
            .iter()
            .find(|parameter| parameter["name"] == "purpose")
            .unwrap_or_else(|| panic!("OpenAPI gives no purpose for {path}"));
        assert_eq!(purpose["in"], "query", "{path}: {purpose}");
        assert_eq!(purpose["required"], true, "{path}: {purpose}");
    }
    // A field that takes one of a few words lists them, so a client can be checked before use.
    let evidence = &document["components"]["schemas"]["EvidenceRequest"]["properties"]["result"];
    let schema_name = evidence["$ref"]
        .as_str()
        .and_then(|reference| reference.rsplit_once('/'))
        .map(|(_, name)| name)
        .unwrap_or_else(|| panic!("evidence result is not a named schema: {evidence}"));
    assert_eq!(
        document["components"]["schemas"][schema_name]["enum"],
        json!(["confirmed", "not_found", "contradicts"])
    );
    let (status, health) = server.get(None, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["database"], "ok");
    // Whether the calendar warns depends on today's date. It must warn exactly when fewer
    // than the notice days remain, or when this year is not covered at all.
    let calendar = &health["calendar"];
    let warns = match calendar["days_left"].as_i64() {
        Some(days_left) => days_left < zhengming::server::CALENDAR_NOTICE_DAYS,
        None => true,
    };
    assert_eq!(calendar["warning"].is_string(), warns, "{calendar}");
    assert_eq!(
        calendar["covered_until"].is_string(),
        calendar["days_left"].is_i64(),
        "{calendar}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_say_what_to_send() {
    let server = TestServer::start().await;
    let before = server.event_count().await;
    let (status, body) = server.post("hh", "/v1/applications", json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("must be a JSON object"), "{message}");

    let mut request = kinship_request();
    request["decision_date"] = json!("2026-13-01");
    let (status, body) = server.post("hh", "/v1/applications", request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "decision_date");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("YYYY-MM-DD"), "{message}");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_dates_are_rejected() {
    let server = TestServer::start_with(ServerOptions::default()).await;
    let today = zhengming::http::today_in_china();
    let allowance = u64::from(ServerOptions::default().backdate_days);
    let day = |date: chrono::NaiveDate| json!(date.format("%Y-%m-%d").to_string());
    let refused = [
        (
            "tomorrow",
            day(today + chrono::Days::new(1)),
            "is after today",
        ),
        (
            "beyond the allowance",
            day(today - chrono::Days::new(allowance + 1)),
            "days before today",
        ),
        (
            "inside the transition window",
            json!("2015-09-01"),
            "days before today",
        ),
    ];
    for (label, date, says) in refused {
        let mut request = kinship_request();
        request["decision_date"] = date;
        let (status, body) = server.post("hh", "/v1/applications", request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {body}");
        assert_eq!(body["error"]["code"], "date_out_of_range", "{label}");
        assert_eq!(body["error"]["field"], "decision_date", "{label}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{label}: {message}");
    }
    assert_eq!(server.event_count().await, 0);

    let mut request = kinship_request();
    request["decision_date"] = day(today - chrono::Days::new(allowance));
    let id = server.submit("hh", request).await;
    let mut request = kinship_request();
    request
        .as_object_mut()
        .expect("object")
        .remove("decision_date");
    let (status, body) = server.post("hh", "/v1/applications", request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["decision_date"], day(today));

    let before = server.event_count().await;
    let (status, body) = server
        .post(
            "hh",
            &format!("/v1/applications/{id}/withdrawal"),
            json!({"reason": "applicant left", "date": day(today + chrono::Days::new(3))}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "date");
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_scheme_revocation_and_methods() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(format!("{}/v1/policy", server.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK, "the policy is public");
    let lowercase = server
        .http
        .post(format!("{}/v1/applications", server.base))
        .header("Authorization", format!("bearer {}", server.tokens["hh"]))
        .json(&kinship_request())
        .send()
        .await
        .expect("answer");
    assert_eq!(lowercase.status(), StatusCode::CREATED);

    // ld2 has not used its token yet, so no cached resolution outlives the revocation.
    let revoked = zhengming::registry::revoke_tokens(server.pool(), "ld2")
        .await
        .expect("tokens are revoked");
    assert_eq!(revoked, 1);
    let (status, body) = server
        .post("ld2", "/v1/applications", kinship_request())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("zhengming token --officer")),
        "{body}"
    );
    let unknown = zhengming::registry::revoke_tokens(server.pool(), "nobody").await;
    assert!(unknown.is_err(), "revoking for an unknown officer fails");

    let response = server
        .http
        .delete(format!("{}/v1/applications", server.base))
        .bearer_auth(&server.tokens["hh"])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(server.event_count().await, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_commands_on_one_application_all_land() {
    let server = TestServer::start().await;
    let id = server.submit("hh", kinship_request()).await;
    let before = server.event_count().await;
    let path = format!("/v1/applications/{id}/evidence");
    let checks = (0..8).map(|index| {
        let body = json!({"source": "household_archives", "reference": format!("A-{index}"), "result": "confirmed"});
        server.post("hh", &path, body)
    });

    let answers = futures_util::future::join_all(checks).await;

    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    assert_eq!(server.event_count().await, before + 8);
    let (status, history) = server
        .get(
            Some("hh"),
            &format!("/v1/applications/{id}/history?purpose=after+parallel+checks"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["chain_verified"], true, "{history}");
    server.stop().await;
}

/// Two server processes on one database: reads of one application sent to both at once are
/// each recorded, the process that lost the race deciding its read again on the longer chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_record_every_read() {
    const ROUNDS: usize = 20;
    let server = TestServer::start().await;
    let Some(url) = server.database_url.clone() else {
        // The embedded database takes one client, so a second process cannot open it.
        server.stop().await;
        return;
    };
    let id = server.submit("hh", kinship_request()).await;
    // The second process leaves sealing to another one, so it needs no key.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_zhengming"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-seal"])
        .env("DATABASE_URL", &url)
        .env_remove("ZHENGMING_LEDGER_KEY")
        .env_remove("ZHENGMING_LEDGER_KEY_FILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("second server starts");
    let mut second = KillOnDrop(second);
    let stdout = second.0.stdout.take().expect("standard output");
    let address = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| line.strip_prefix("listening on ").map(String::from))
        }),
    )
    .await
    .expect("second server listens within a minute")
    .expect("reader task ends")
    .expect("second server names its address");
    let health: serde_json::Value = server
        .http
        .get(format!("{address}/health"))
        .send()
        .await
        .expect("second server answers")
        .json()
        .await
        .expect("JSON body");
    assert_eq!(health["ledger"]["sealing"], "off", "{health}");

    let history = format!("/v1/applications/{id}/history?purpose=two+servers");
    let token = &server.tokens["hh"];
    for round in 0..ROUNDS {
        let there = server
            .http
            .get(format!("{address}{history}"))
            .bearer_auth(token)
            .send();
        let (here, there) = tokio::join!(server.get(Some("hh"), &history), there);
        let there = there.expect("second server answers");
        assert_eq!(here.0, StatusCode::OK, "round {round}: {}", here.1);
        assert_eq!(there.status(), StatusCode::OK, "round {round}");
    }
    drop(second);

    let reads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'application_reads' AND aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(server.pool())
    .await
    .expect("reads are counted");
    assert_eq!(reads, 2 * ROUNDS as i64);
    let report = zhengming::verify::verify_all(server.pool())
        .await
        .expect("verification runs");
    assert_eq!(report.first_break, None, "{report:?}");
    server.stop().await;
}

/// A child process that is killed when the test ends, even when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
