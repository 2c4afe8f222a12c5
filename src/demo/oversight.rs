//! The demo's supervision: station leaders record their officers' training, an inspector takes
//! a finding of the month through an inspection to an accountability decision, a station
//! reports a new situation that the provincial office answers, and the inspector reads the
//! city's compliance report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Days, NaiveDate};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::client::ApiClient;
use super::exchange::{expect, text};
use super::scenario::Scenario;
use aggregates::policy::Role;

/// Results of the supervision part of the month.
#[derive(Debug, Default)]
pub struct OversightOutcome {
    pub findings: usize,
    pub policy_version: String,
    pub officers: i64,
    pub trained: i64,
    /// The inspection: station, finding rule, the officer held accountable and the decision.
    pub inspection: Option<(String, String, String, String)>,
    pub problems_answered: usize,
    /// The replay of a case with a finding: application id, events, whether its chain verified.
    pub replay: Option<(String, usize, bool)>,
    pub report: Value,
}

/// Runs the supervision part once the month's cases are recorded.
///
/// # Errors
/// Fails when the server cannot be reached or a step returns another status than the workflow
/// expects.
pub async fn run(
    client: &ApiClient,
    scenario: &Scenario,
    tokens: &BTreeMap<String, String>,
    days: &[NaiveDate],
    pool: &sqlx::PgPool,
) -> anyhow::Result<OversightOutcome> {
    let officer_of = |role: Role| {
        scenario
            .city
            .counties
            .iter()
            .flat_map(|county| &county.stations)
            .flat_map(|station| &station.officers)
            .find(|officer| officer.role == role)
            .map(|officer| officer.id.clone())
            .with_context(|| format!("the scenario has no officer with role {}", role.code()))
    };
    let token_of = |officer: &str| {
        tokens
            .get(officer)
            .map(String::as_str)
            .with_context(|| format!("no token for officer {officer}"))
    };
    let inspector = officer_of(Role::Inspector)?;
    let provincial = officer_of(Role::ProvincialOfficer)?;
    let (first, last) = (days[0], days[days.len() - 1]);
    let mut outcome = OversightOutcome::default();

    // Every leader records the training of their station's officers on the first day; the
    // case officer of the last station missed it.
    let (_, policy) = client.get("/v1/policy", None).await?;
    outcome.policy_version = policy["version"].as_str().unwrap_or_default().to_string();
    let stations: Vec<_> = scenario
        .city
        .counties
        .iter()
        .flat_map(|county| &county.stations)
        .collect();
    for (index, station) in stations.iter().enumerate() {
        let Some(leader) = station
            .officers
            .iter()
            .find(|o| o.role == Role::StationLeader)
        else {
            continue;
        };
        for officer in station.officers.iter().filter(|o| !o.role.supervises()) {
            if index == stations.len() - 1 && officer.role == Role::CaseOfficer {
                continue;
            }
            let body = json!({"officer": officer.id, "policy_version": outcome.policy_version,
                              "course": "证明事项清单与四个一律不出", "completed_on": first});
            let answer = client
                .post("/v1/training-records", token_of(&leader.id)?, &body)
                .await?;
            expect(answer, StatusCode::CREATED, "/v1/training-records")?;
        }
    }

    // A station reports a situation no matter covers; the provincial office answers it.
    let reporter = officer_of(Role::HouseholdOfficer)?;
    let problem = json!({"situation": "境外使馆要求证明申请人1990年以前使用过的曾用名，户籍档案已不完整",
                         "date": last - Days::new(6)});
    let answer = client
        .post("/v1/problem-reports", token_of(&reporter)?, &problem)
        .await?;
    let report = expect(answer, StatusCode::CREATED, "/v1/problem-reports")?;
    let id = text(&report, "report_id")?;
    let reply = json!({"answer": "以户籍档案和常住人口登记表为准出具曾用名证明；档案不全的，由户政部门调查核实后出具",
                       "date": last - Days::new(2)});
    let path = format!("/v1/problem-reports/{id}/answer");
    let answer = client.post(&path, token_of(&provincial)?, &reply).await?;
    expect(answer, StatusCode::OK, &path)?;
    outcome.problems_answered = 1;

    // The inspector takes the month's first finding through an inspection of its station, or
    // of the responsible officer for an exchange finding, which belongs to no station.
    wait_for_projections(pool).await?;
    let (status, findings) = client
        .get("/v1/supervision/findings", Some(token_of(&inspector)?))
        .await?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "findings answered {status}: {findings}"
    );
    let listed = findings["findings"].as_array().cloned().unwrap_or_default();
    outcome.findings = listed.len();
    if let Some(finding) = listed.first() {
        outcome.inspection =
            Some(inspect(client, finding, tokens, &inspector, scenario, last).await?);
    }
    if let Some(finding) = listed.iter().find(|f| f["aggregate_type"] == "application") {
        outcome.replay = Some(replay_case(client, finding, token_of(&inspector)?).await?);
    }

    wait_for_projections(pool).await?;
    let path = format!(
        "/v1/supervision/compliance?level=city&code={}&from={first}&to={last}",
        scenario.city.code
    );
    let (status, report) = client.get(&path, Some(token_of(&inspector)?)).await?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "{path} answered {status}: {report}"
    );
    outcome.officers = report["officers"].as_i64().unwrap_or_default();
    outcome.trained = report["officers_trained"].as_i64().unwrap_or_default();
    outcome.report = report;
    Ok(outcome)
}

/// Opens an inspection of the finding's station or officer, records the finding, publishes a
/// notice, requires rectification, accepts the leader's report and closes with criticism and
/// education of the finding's officer. Returns the station, rule, officer and decision.
async fn inspect(
    client: &ApiClient,
    finding: &Value,
    tokens: &BTreeMap<String, String>,
    inspector: &str,
    scenario: &Scenario,
    last: NaiveDate,
) -> anyhow::Result<(String, String, String, String)> {
    let rule = text(finding, "rule")?;
    let officer = text(finding, "officer")?;
    let target = match finding["station"].as_str() {
        Some(station) => json!({"kind": "station", "id": station}),
        None => json!({"kind": "officer", "id": officer}),
    };
    let category = projections::supervision::rule_categories()
        .into_iter()
        .find(|(code, _)| *code == rule)
        .map_or("misconduct", |(_, category)| category);
    let token = |id: &str| tokens.get(id).map(String::as_str).context("token");
    let post = |path: String, who: String, body: Value, want: StatusCode| async move {
        let answer = client.post(&path, token(&who)?, &body).await?;
        expect(answer, want, &path)
    };

    let open = json!({"body": "inspectorate", "target": target,
                      "reason": format!("督察发现：{}", text(finding, "detail")?),
                      "date": last - Days::new(5)});
    let opened = post(
        "/v1/inspections".into(),
        inspector.into(),
        open,
        StatusCode::CREATED,
    )
    .await?;
    let base = format!("/v1/inspections/{}", text(&opened, "inspection_id")?);
    let station = text(&opened, "station")?;
    let leader = scenario
        .city
        .counties
        .iter()
        .flat_map(|county| &county.stations)
        .find(|s| s.code == station)
        .and_then(|s| s.officers.iter().find(|o| o.role == Role::StationLeader))
        .with_context(|| format!("station {station} has no leader in the scenario"))?;
    let recorded = json!({"category": category, "rule": rule, "officer": officer,
                          "case_id": finding["aggregate_id"],
                          "description": format!("检测规则 {rule} 的发现经核实属实：{}", text(finding, "detail")?),
                          "date": last - Days::new(5)});
    post(
        format!("{base}/findings"),
        inspector.into(),
        recorded,
        StatusCode::OK,
    )
    .await?;
    // The notice goes to every station of the city, so that the others learn from this one.
    let notice = json!({"text": format!("通报：{station} 派出所存在{}问题，责令整改。",
                                        if category == "inaction" { "不作为" } else { "乱作为" }),
                        "audience": {"level": "city", "code": scenario.city.code},
                        "date": last - Days::new(4)});
    post(
        format!("{base}/notices"),
        inspector.into(),
        notice,
        StatusCode::OK,
    )
    .await?;
    let requirement = json!({"requirement": "组织全所民警重新学习证明事项清单，逐件复查本月办理的证明",
                             "due_on": last + Days::new(20), "date": last - Days::new(4)});
    post(
        format!("{base}/rectification"),
        inspector.into(),
        requirement,
        StatusCode::OK,
    )
    .await?;
    let report = json!({"report": "已组织全所民警学习并复查本月全部证明，问题已纠正",
                        "date": last - Days::new(1)});
    post(
        format!("{base}/rectification/report"),
        leader.id.clone(),
        report,
        StatusCode::OK,
    )
    .await?;
    let verification =
        json!({"accepted": true, "note": "抽查复查记录和学习签到表，整改到位", "date": last});
    post(
        format!("{base}/rectification/verification"),
        inspector.into(),
        verification,
        StatusCode::OK,
    )
    .await?;
    let decision = "criticism_and_education";
    let closing = json!({"outcome": decision, "officers": [officer],
                         "reason": "情节轻微，已按要求整改，予以批评教育", "date": last});
    post(
        format!("{base}/closing"),
        inspector.into(),
        closing,
        StatusCode::OK,
    )
    .await?;
    Ok((station, rule, officer, decision.to_string()))
}

/// Replays the application of `finding` as the inspector. The replay shows identity numbers
/// unmasked, so the inspector states a purpose and the server records the read. Returns the
/// application id, its number of events and whether its chain verified.
async fn replay_case(
    client: &ApiClient,
    finding: &Value,
    token: &str,
) -> anyhow::Result<(String, usize, bool)> {
    let id = text(finding, "aggregate_id")?;
    let rule = text(finding, "rule")?;
    let path =
        format!("/v1/supervision/applications/{id}/replay?purpose=review+of+a+{rule}+finding");
    let (status, replay) = client.get(&path, Some(token)).await?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "{path} answered {status}: {replay}"
    );
    let steps = replay["steps"].as_array().map_or(0, Vec::len);
    Ok((id, steps, replay["chain_verified"] == true))
}

/// Waits until the findings and inspections projections have caught up with the log.
async fn wait_for_projections(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let findings = projections::supervision::lag(pool).await?;
        let inspections = projections::inspection::lag(pool).await?;
        if findings.behind == 0 && inspections.behind == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "supervision projections still behind after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prints the supervision part of the summary.
pub fn print(outcome: &OversightOutcome) {
    println!(
        "supervision findings of the month: {}; training in policy {}: {} of {} officers",
        outcome.findings, outcome.policy_version, outcome.trained, outcome.officers
    );
    match &outcome.inspection {
        Some((station, rule, officer, decision)) => println!(
            "inspection of station {station} on a {rule} finding: notice published to the city, rectification accepted, closed with {decision} of {officer}"
        ),
        None => println!("no finding to inspect"),
    }
    if let Some((id, steps, verified)) = &outcome.replay {
        let chain = if *verified { "verifies" } else { "FAILS" };
        println!(
            "inspector replayed application {id}: {steps} events, chain {chain}, read recorded with its purpose"
        );
    }
    println!(
        "problem reports answered by the provincial office: {}",
        outcome.problems_answered
    );
    let report = &outcome.report;
    println!(
        "compliance report of the city: {} applications, explanation rate {}, findings {} (inaction {}, misconduct {}), inspections {}, notices {}, open rectifications {}",
        report["applications"],
        report["explanation_rate"],
        report["findings"],
        report["findings_per_category"]["inaction"],
        report["findings_per_category"]["misconduct"],
        report["inspections_opened"],
        report["notices_published"],
        report["open_rectifications"]
    );
}
