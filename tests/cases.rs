//! Every request situation of the case file, screened through the API after and inside the
//! transition period.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use zhengming::demo::scenario::{BUNDLED_CASES, Case, Expectation, parse_cases};

fn date(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

async fn screen(server: &TestServer, case: &Case, on: chrono::NaiveDate, expected: &Expectation) {
    let request = serde_json::to_value(case.request("张伟", "220102199001011239", on))
        .expect("request serializes");
    let (status, body) = server.post("hh", "/v1/applications", request).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "case {} on {on}: {body}",
        case.number
    );
    let outcome = &body["outcome"];
    assert_eq!(
        outcome["outcome"],
        expected.outcome.as_str(),
        "case {} on {on}: {outcome}",
        case.number
    );
    if let Some(kind) = &expected.kind {
        assert_eq!(
            outcome["kind"],
            kind.as_str(),
            "case {} on {on}",
            case.number
        );
    }
    if let Some(principle) = &expected.principle {
        assert_eq!(
            outcome["principle"],
            principle.as_str(),
            "case {} on {on}",
            case.number
        );
    }
    if outcome["outcome"] == "refuse" {
        assert!(
            outcome["referral"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "case {}: refusal without referral",
            case.number
        );
    }
    assert!(
        body["screening"]["rule_id"]
            .as_str()
            .is_some_and(|rule| !rule.is_empty()),
        "case {}: no rule recorded",
        case.number
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_screens_as_expected() {
    let cases = parse_cases(BUNDLED_CASES).expect("case file parses");
    assert_eq!(
        cases.len(),
        15,
        "the case file lists the fifteen situations"
    );
    let server = TestServer::start().await;
    for case in &cases {
        screen(&server, case, date("2026-11-02"), &case.expect).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_screens_as_expected_in_transition() {
    let cases = parse_cases(BUNDLED_CASES).expect("case file parses");
    let server = TestServer::start().await;
    for case in &cases {
        screen(&server, case, date("2015-09-01"), &case.transition).await;
    }
    server.stop().await;
}
