//! The demo's information exchange: departments, agreements, the responsible officer, and each
//! request from receipt to filing, through the API.

use std::collections::BTreeMap;

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::client::ApiClient;
use super::scenario::{ExchangeScenario, ExchangeScenarioRequest};

/// Counts of the exchange part of the month.
#[derive(Debug, Default)]
pub struct ExchangeOutcome {
    pub requests: u64,
    pub subjects: u64,
    pub matches: u64,
    pub mismatches: u64,
    pub not_found: u64,
    pub on_time: u64,
    pub late: u64,
    pub filed: u64,
    /// Steps whose result differed from the scenario.
    pub differences: Vec<String>,
}

/// Runs every request of `scenario` as its unit's officers would.
///
/// # Errors
/// Fails when the server cannot be reached or a step that must succeed fails.
pub async fn run(
    client: &ApiClient,
    scenario: &ExchangeScenario,
    tokens: &BTreeMap<String, String>,
) -> anyhow::Result<ExchangeOutcome> {
    let token_of = |officer: &str| {
        tokens
            .get(officer)
            .map(String::as_str)
            .with_context(|| format!("the exchange names unknown officer {officer}"))
    };
    let leader = token_of(&scenario.leader)?;
    let officer = token_of(&scenario.responsible_officer)?;
    let path = format!("/v1/exchange/units/{}/responsible-officer", scenario.unit);
    let body = json!({"officer": scenario.responsible_officer});
    expect(
        client.post(&path, leader, &body).await?,
        StatusCode::OK,
        &path,
    )?;

    let mut outcome = ExchangeOutcome::default();
    let mut registered = Vec::new();
    for request in &scenario.requests {
        let department = &request.department;
        if !registered.contains(&department.code) {
            let body =
                json!({"code": department.code, "name": department.name, "kind": department.kind});
            let answer = client
                .post("/v1/exchange/departments", leader, &body)
                .await?;
            expect(answer, StatusCode::CREATED, "/v1/exchange/departments")?;
            registered.push(department.code.clone());
        }
        handle(client, scenario, request, leader, officer, &mut outcome).await?;
    }
    Ok(outcome)
}

/// Takes one request through agreement, receipt, verification, feedback, handover and filing.
async fn handle(
    client: &ApiClient,
    scenario: &ExchangeScenario,
    request: &ExchangeScenarioRequest,
    leader: &str,
    officer: &str,
    outcome: &mut ExchangeOutcome,
) -> anyhow::Result<()> {
    let body = json!({
        "household_unit": scenario.unit, "department": request.department.code,
        "cadence": request.cadence, "items": request.items,
    });
    let agreement = expect(
        client
            .post("/v1/exchange/agreements", leader, &body)
            .await?,
        StatusCode::CREATED,
        "/v1/exchange/agreements",
    )?;
    let items = request.items.join(",");
    let query = [
        ("agreement_id", text(&agreement, "agreement_id")?),
        ("received_at", request.received_at.clone()),
        ("items", items),
    ];
    let received = expect(
        client
            .post_csv("/v1/exchange/requests", officer, &query, &request.subjects)
            .await?,
        StatusCode::CREATED,
        "/v1/exchange/requests",
    )?;
    let base = format!("/v1/exchange/requests/{}", text(&received, "request_id")?);
    outcome.requests += 1;

    let path = format!("{base}/verification");
    let verified = expect(
        client.post(&path, officer, &json!({})).await?,
        StatusCode::OK,
        &path,
    )?;
    let verification = &verified["verification"];
    outcome.subjects += count(verification, "subjects");
    outcome.matches += count(verification, "matches");
    outcome.mismatches += count(verification, "mismatches");
    outcome.not_found += count(verification, "not_found");

    let path = format!("{base}/feedback");
    let body = json!({"delivered_at": request.delivered_at});
    let delivered = expect(
        client.post(&path, officer, &body).await?,
        StatusCode::OK,
        &path,
    )?;
    match delivered["timeliness"].as_str() {
        Some("on_time") => outcome.on_time += 1,
        Some("late") => outcome.late += 1,
        _ => {}
    }
    if delivered["timeliness"] != request.timeliness.as_str() {
        outcome.differences.push(format!(
            "exchange request of {} received {}: feedback is {}, expected {}",
            request.department.code,
            request.received_at,
            delivered["timeliness"],
            request.timeliness
        ));
    }

    // The manifest lists the department's batch and the result file, by size and digest.
    let batch = &received["batch"];
    let manifest = json!([
        {"name": "subjects.csv", "size": batch["file_bytes"], "sha256": batch["file_sha256"]},
        {"name": "results.csv", "size": verification["result_bytes"], "sha256": verification["result_sha256"]},
    ]);
    let path = format!("{base}/handover");
    let body = json!({"manifest": manifest, "receiving_person": request.receiving_person});
    expect(
        client.post(&path, officer, &body).await?,
        StatusCode::OK,
        &path,
    )?;
    let path = format!("{base}/handover/acknowledgements");
    for (party, name) in [
        ("handing_officer", scenario.responsible_officer.as_str()),
        ("receiving_person", request.receiving_person.as_str()),
    ] {
        let body = json!({"party": party, "name": name});
        expect(
            client.post(&path, officer, &body).await?,
            StatusCode::OK,
            &path,
        )?;
    }
    let path = format!("{base}/filing");
    let filed_on = request.delivered_at.get(..10).unwrap_or_default();
    let filed = expect(
        client
            .post(&path, officer, &json!({"date": filed_on}))
            .await?,
        StatusCode::OK,
        &path,
    )?;
    if filed["status"] == "filed" {
        outcome.filed += 1;
    }
    Ok(())
}

/// Returns the body when the status is `expected`, else fails with the server's error.
pub(super) fn expect(
    answer: (StatusCode, Value),
    expected: StatusCode,
    path: &str,
) -> anyhow::Result<Value> {
    let (status, body) = answer;
    anyhow::ensure!(
        status == expected,
        "POST {path} answered {status}, expected {expected}: {body}"
    );
    Ok(body)
}

pub(super) fn text(body: &Value, key: &str) -> anyhow::Result<String> {
    body[key]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the answer has no {key}: {body}"))
}

fn count(body: &Value, key: &str) -> u64 {
    body[key].as_u64().unwrap_or(0)
}
