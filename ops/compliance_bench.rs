//! The report part of `zhengming-supervision-bench`: a province-year of synthetic projection
//! rows (`application_view` and `supervision_findings`, written in SQL as the projectors would
//! write them), then the compliance report timed through the real HTTP server.
//!
//! The rows are not projected from events: at two million applications the log would take
//! longer to write and project than the benchmark should run. `certificate_view` is left
//! empty because the report does not read it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aggregates::policy::{Policy, PolicyBook, Role, RuleOutcome};
use anyhow::{Context, ensure};
use serde_json::Value;
use sqlx::PgPool;
use zhengming::database::Database;
use zhengming::registry::{self, City, Officer};
use zhengming::server::RunningServer;

/// Rows per insert statement while filling `application_view`.
const FILL_CHUNK: u64 = 250_000;

/// The report the benchmark times: the whole province (code 22) for the year 2026.
pub const REPORT_PATH: &str =
    "/v1/supervision/compliance?level=province&code=22&from=2026-01-01&to=2026-12-31";

/// Figures of one report run.
pub struct ReportFigures {
    pub applications: u64,
    pub findings: i64,
    pub stations: usize,
    pub fill_seconds: f64,
    /// Seconds of each timed JSON request, in request order.
    pub json_seconds: Vec<f64>,
    /// Seconds of each timed CSV request, in request order.
    pub csv_seconds: Vec<f64>,
    /// Applications the report counted.
    pub reported_applications: i64,
}

/// A screening result the synthetic rows take: matter, rule and outcome as the bundled policy
/// defines them.
struct Profile {
    matter: String,
    rule_id: String,
    outcome: &'static str,
    kind: Option<String>,
    principle: Option<String>,
    /// Time limit of the kind in working days; zero without a kind.
    limit_days: i32,
}

/// Relative frequency of a matter among applications; matters not listed count 2.
fn matter_weight(matter: &str) -> usize {
    match matter {
        "kinship" => 30,
        "household_cancellation" => 10,
        "death" | "identity_information" => 8,
        "id_number_upgrade" | "alive_status" | "marital_status" => 6,
        "criminal_record" => 4,
        "found_child" => 1,
        _ => 2,
    }
}

/// Returns every rule of every matter as a profile, repeated by the matter's weight. An issuing
/// rule counts twice as often as a refusing one. The individual no-criminal-record rule is
/// left out, because those certificates are issued through record checks, not applications.
fn profiles(policy: &Policy) -> Vec<Profile> {
    let mut profiles = Vec::new();
    for matter in policy.matters.values() {
        for rule in &matter.rules {
            let (outcome, kind, principle, times) = match &rule.then {
                RuleOutcome::Issue { kind } => ("issue", Some(kind.clone()), None, 2),
                RuleOutcome::Refuse { principle, .. } => {
                    ("refuse", None, Some(principle.clone()), 1)
                }
                RuleOutcome::UnitVerification { .. } => ("unit_verification", None, None, 1),
            };
            if kind.as_deref() == Some(aggregates::record_check::CERTIFICATE_KIND) {
                continue;
            }
            let limit_days = kind
                .as_deref()
                .and_then(|kind| policy.kind(kind))
                .map_or(0, |kind| kind.time_limit_working_days as i32);
            for _ in 0..times * matter_weight(&matter.code) {
                profiles.push(Profile {
                    matter: matter.code.clone(),
                    rule_id: rule.id.clone(),
                    outcome,
                    kind: kind.clone(),
                    principle: principle.clone(),
                    limit_days,
                });
            }
        }
    }
    profiles
}

/// Fills `application_view` with rows numbered `$1` to `$2`. Each row draws its station from
/// `$3`, its decision date in 2026, its profile from `$4` to `$9` and its fate from hashes of
/// its number, so a run is repeatable. Stations early in `$3` (the districts of the first city)
/// are drawn slightly more often.
///
/// Of every thousand accepted applications, 30 are overridden to a refusal, 30 withdrawn, 30
/// issued after the promised date and 10 still open. The rest are issued on time. Of every
/// thousand refusals, 20 carry a too-short explanation and 20 still await the refusal.
const FILL_SQL: &str = "
WITH drawn AS (
    SELECT i,
           ($3::text[])[1 + floor(cardinality($3::text[])
                                  * power((hashint8extended(i, 1) & 1048575)::float8 / 1048576, 1.3::float8))::int]
               AS station,
           DATE '2026-01-01' + ((hashint8extended(i, 2) & 2147483647) % 365)::int AS decided,
           1 + ((hashint8extended(i, 3) & 2147483647) % cardinality($4::text[]))::int AS p,
           ((hashint8extended(i, 4) & 2147483647) % 1000)::int AS fate
      FROM generate_series($1::bigint, $2::bigint) AS i
), shaped AS (
    SELECT d.*,
           ($5::text[])[p] AS rule_id,
           ($6::text[])[p] AS screened,
           ($7::text[])[p] AS kind,
           ($8::text[])[p] AS principle,
           CASE WHEN ($6::text[])[p] = 'issue'
                THEN decided + ((($9::int[])[p] * 7 + 4) / 5) END AS promised
      FROM drawn d
)
INSERT INTO application_view (application_id, station_code, matter, decision_date, policy_version,
        rule_id, outcome, kind, principle, transitional, in_transition, overridden, promised_date,
        status, explanation, referral, certificate_number, closed_on, last_position)
SELECT format('%s-%s-7%s-8%s-%s', lpad(to_hex(i >> 16), 8, '0'), lpad(to_hex(i & 65535), 4, '0'),
              lpad(to_hex(fate), 3, '0'), lpad(to_hex(p), 3, '0'), lpad(to_hex(i * 2654435761), 12, '0')),
       station, ($4::text[])[p], decided, $10, rule_id,
       CASE WHEN screened = 'issue' AND fate < 30 THEN 'refuse' ELSE screened END,
       CASE WHEN screened = 'issue' AND fate < 30 THEN NULL ELSE kind END,
       CASE WHEN screened = 'issue' AND fate < 30 THEN 'legal_document' ELSE principle END,
       false, false,
       screened = 'issue' AND fate < 30,
       promised,
       CASE WHEN screened = 'unit_verification' THEN 'referred'
            WHEN screened = 'refuse' AND fate >= 980 THEN 'awaiting_refusal'
            WHEN screened = 'refuse' OR fate < 30 THEN 'refused'
            WHEN fate < 60 THEN 'withdrawn'
            WHEN fate >= 90 AND fate < 100 THEN 'accepted'
            ELSE 'issued' END,
       CASE WHEN screened = 'refuse' AND fate < 20 THEN '不符合'
            WHEN (screened = 'refuse' AND fate < 980) OR (screened = 'issue' AND fate < 30)
            THEN '法定证件可以证明该事项，派出所依规定不出具证明' END,
       CASE WHEN (screened = 'refuse' AND fate < 980) OR (screened = 'issue' AND fate < 30)
            THEN '请向用证单位出示户口簿或相关部门证明' END,
       CASE WHEN screened = 'issue' AND fate >= 60 AND NOT (fate >= 90 AND fate < 100)
            THEN format('%s-2026-%s-K7M2QX', station, lpad(i::text, 8, '0')) END,
       CASE WHEN screened = 'unit_verification' THEN NULL
            WHEN screened = 'refuse' AND fate >= 980 THEN NULL
            WHEN screened = 'refuse' OR fate < 30 THEN decided + 1 + fate % 3
            WHEN fate < 60 THEN decided + 2
            WHEN fate < 90 THEN promised + 1 + fate % 5
            WHEN fate < 100 THEN NULL
            ELSE decided + fate % (promised - decided + 1) END,
       i * 5
  FROM shaped";

/// Writes the findings the detectors would record for the rows of `application_view`, and 300
/// exchange findings of the province's units. The evidence cites the screening event and the
/// closing one, at the positions the rows imply.
const FINDINGS_SQL: [&str; 5] = [
    // overdue: closed after the promised date, or still open past it
    "INSERT INTO supervision_findings (aggregate_type, aggregate_id, rule, station_code, unit_code,
            officer_id, occurred_on, detail, evidence)
     SELECT 'application', application_id, 'overdue', station_code, NULL, station_code || '-hh',
            promised_date + 1,
            format('accepted on %s with completion promised by %s; %s', decision_date, promised_date,
                   CASE WHEN closed_on IS NULL THEN 'still open' ELSE 'closed on ' || closed_on END),
            jsonb_build_array(
                jsonb_build_object('aggregate_type', 'application', 'aggregate_id', application_id,
                                   'sequence', 2, 'global_position', last_position - 3,
                                   'event_type', 'ApplicationScreened'),
                jsonb_build_object('aggregate_type', 'application', 'aggregate_id', application_id,
                                   'sequence', 5, 'global_position', last_position,
                                   'event_type', CASE status WHEN 'withdrawn' THEN 'ApplicationWithdrawn'
                                                             ELSE 'CertificateIssued' END))
       FROM application_view
      WHERE promised_date IS NOT NULL
        AND ((status IN ('issued', 'withdrawn') AND closed_on > promised_date) OR status = 'accepted')",
    // refused_issuable: an accepted application overridden to a refusal and refused
    "INSERT INTO supervision_findings (aggregate_type, aggregate_id, rule, station_code, unit_code,
            officer_id, occurred_on, detail, evidence)
     SELECT 'application', application_id, 'refused_issuable', station_code, NULL,
            station_code || '-hh', closed_on,
            format('policy %s rule %s issues for this matter, but the application was refused',
                   policy_version, rule_id),
            jsonb_build_array(
                jsonb_build_object('aggregate_type', 'application', 'aggregate_id', application_id,
                                   'sequence', 1, 'global_position', last_position - 3,
                                   'event_type', 'ApplicationSubmitted'),
                jsonb_build_object('aggregate_type', 'application', 'aggregate_id', application_id,
                                   'sequence', 4, 'global_position', last_position,
                                   'event_type', 'ApplicationRefused'))
       FROM application_view WHERE status = 'refused' AND overridden",
    // refusal_unexplained: the same test as the report's explained refusals
    "INSERT INTO supervision_findings (aggregate_type, aggregate_id, rule, station_code, unit_code,
            officer_id, occurred_on, detail, evidence)
     SELECT 'application', application_id, 'refusal_unexplained', station_code, NULL,
            station_code || '-hh', closed_on,
            format('the refusal carries an explanation of %s characters (at least 10 are required) and a referral',
                   char_length(btrim(coalesce(explanation, '')))),
            jsonb_build_array(
                jsonb_build_object('aggregate_type', 'application', 'aggregate_id', application_id,
                                   'sequence', 3, 'global_position', last_position,
                                   'event_type', 'ApplicationRefused'))
       FROM application_view
      WHERE status = 'refused'
        AND (char_length(btrim(coalesce(explanation, ''))) < 10 OR btrim(coalesce(referral, '')) = '')",
    // issued_without_signature: paper histories imported with a missing stub, one in 400
    "INSERT INTO supervision_findings (aggregate_type, aggregate_id, rule, station_code, unit_code,
            officer_id, occurred_on, detail, evidence)
     SELECT 'application', application_id, 'issued_without_signature', station_code, NULL,
            station_code || '-hh', closed_on,
            format('a %s certificate was issued without a signed stub', kind),
            jsonb_build_array(
                jsonb_build_object('aggregate_type', 'application', 'aggregate_id', application_id,
                                   'sequence', 4, 'global_position', last_position,
                                   'event_type', 'CertificateIssued'))
       FROM application_view
      WHERE status = 'issued' AND kind IN ('kinship', 'abnormal_death') AND abs(hashtext(application_id)) % 400 = 0",
    // feedback_late: exchange requests of the province's counties and cities
    "INSERT INTO supervision_findings (aggregate_type, aggregate_id, rule, station_code, unit_code,
            officer_id, occurred_on, detail, evidence)
     SELECT 'exchange_request', format('bench-exchange-%s', i), 'feedback_late', NULL,
            ($1::text[])[1 + i % cardinality($1::text[])], format('unit-%s', i % 17),
            DATE '2026-01-15' + (i * 7 % 340),
            'feedback was delivered 3 days after its deadline',
            jsonb_build_array(
                jsonb_build_object('aggregate_type', 'exchange_request',
                                   'aggregate_id', format('bench-exchange-%s', i),
                                   'sequence', 1, 'global_position', i,
                                   'event_type', 'RequestReceived'))
       FROM generate_series(1, 300) AS i",
];

/// Records the province with one inspector, fills the projection tables with `applications`
/// rows and their findings, and returns the inspector's token.
async fn fill(
    pool: &PgPool,
    policy: &Policy,
    cities: &[City],
    applications: u64,
) -> anyhow::Result<String> {
    for city in cities {
        registry::add_city(pool, city).await?;
    }
    let stations = crate::province::station_codes(cities);
    let inspector = Officer {
        id: "bench-inspector".into(),
        name: "benchmark inspector".into(),
        role: Role::Inspector,
    };
    registry::add_officer(pool, &inspector, &stations[0]).await?;
    let token = registry::create_token(pool, &inspector.id).await?;

    let profiles = profiles(policy);
    let column = |pick: fn(&Profile) -> Option<String>| -> Vec<Option<String>> {
        profiles.iter().map(pick).collect()
    };
    let mut first = 1;
    while first <= applications {
        let last = (first + FILL_CHUNK - 1).min(applications);
        sqlx::query(FILL_SQL)
            .bind(first as i64)
            .bind(last as i64)
            .bind(&stations)
            .bind(column(|profile| Some(profile.matter.clone())))
            .bind(column(|profile| Some(profile.rule_id.clone())))
            .bind(column(|profile| Some(profile.outcome.to_string())))
            .bind(column(|profile| profile.kind.clone()))
            .bind(column(|profile| profile.principle.clone()))
            .bind(
                profiles
                    .iter()
                    .map(|profile| profile.limit_days)
                    .collect::<Vec<_>>(),
            )
            .bind(&policy.version)
            .execute(pool)
            .await
            .context("filling application_view failed")?;
        first = last + 1;
    }

    let units: Vec<String> = cities
        .iter()
        .flat_map(|city| {
            std::iter::once(city.code.clone())
                .chain(city.counties.iter().map(|county| county.code.clone()))
        })
        .collect();
    for statement in FINDINGS_SQL {
        let mut query = sqlx::query(statement);
        if statement.contains("$1") {
            query = query.bind(&units);
        }
        query
            .execute(pool)
            .await
            .context("writing findings failed")?;
    }
    // A live table is vacuumed by autovacuum as it grows. Vacuuming the fresh rows here keeps
    // autovacuum from starting on them during the timed requests.
    sqlx::query("VACUUM (ANALYZE) application_view, supervision_findings")
        .execute(pool)
        .await?;
    Ok(token)
}

/// Requests the report once and returns the elapsed seconds and the body.
async fn request(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(f64, String)> {
    let started = Instant::now();
    let response = client
        .get(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(120))
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(status.is_success(), "{url} returned {status}: {body}");
    Ok((seconds, body))
}

/// Fills a province-year of `applications` and times the report `runs` times in JSON and in
/// CSV, after one untimed request of each.
///
/// # Errors
/// Fails when a step fails, or when the CSV and the JSON disagree on the application count.
pub async fn run(
    database: &Database,
    policies: PolicyBook,
    cities: &[City],
    applications: u64,
    runs: usize,
) -> anyhow::Result<ReportFigures> {
    let pool = &database.pool;
    let started = Instant::now();
    let token = fill(pool, policies.current(), cities, applications).await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let findings: i64 = sqlx::query_scalar("SELECT count(*) FROM supervision_findings")
        .fetch_one(pool)
        .await?;

    let server =
        RunningServer::start(database, policies, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let json_url = format!("http://{}{REPORT_PATH}", server.address);
    let csv_url = format!("{json_url}&format=csv");
    let client = reqwest::Client::new();
    let timed = async {
        let (_, json_body) = request(&client, &json_url, &token).await?;
        let (_, csv_body) = request(&client, &csv_url, &token).await?;
        let mut json_seconds = Vec::with_capacity(runs);
        let mut csv_seconds = Vec::with_capacity(runs);
        for _ in 0..runs {
            json_seconds.push(request(&client, &json_url, &token).await?.0);
            csv_seconds.push(request(&client, &csv_url, &token).await?.0);
        }
        anyhow::Ok((json_body, csv_body, json_seconds, csv_seconds))
    }
    .await;
    server.stop().await?;
    let (json_body, csv_body, json_seconds, csv_seconds) = timed?;

    let report: Value = serde_json::from_str(&json_body)?;
    let reported_applications = report["applications"]
        .as_i64()
        .context("the report has no applications count")?;
    let csv_applications = csv_body
        .lines()
        .find_map(|line| line.strip_prefix("applications,,"))
        .context("the CSV report has no applications row")?;
    ensure!(
        csv_applications == reported_applications.to_string(),
        "CSV counts {csv_applications} applications, JSON {reported_applications}"
    );
    Ok(ReportFigures {
        applications,
        findings,
        stations: report["stations"].as_array().map_or(0, Vec::len),
        fill_seconds,
        json_seconds,
        csv_seconds,
        reported_applications,
    })
}

/// Returns the median of `seconds`.
pub fn median(seconds: &[f64]) -> f64 {
    let mut seconds = seconds.to_vec();
    seconds.sort_by(f64::total_cmp);
    let middle = seconds.len() / 2;
    if seconds.len() % 2 == 1 {
        seconds[middle]
    } else {
        (seconds[middle - 1] + seconds[middle]) / 2.0
    }
}
