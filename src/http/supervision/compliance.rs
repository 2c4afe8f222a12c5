//! `GET /v1/supervision/compliance`: counts of a period at province, city, county or station
//! level, as JSON, CSV or a printable HTML page with the same numbers.
//!
//! Applications count by decision date; issuances and refusals by the date they record;
//! findings by the date of the act. The counts read `application_view` and the supervision
//! findings, which are projections: each trails the log by its own lag.

use std::collections::BTreeMap;

use aggregates::application::MIN_EXPLANATION_CHARS;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Params, Scope, check_period, forbidden, invalid, scope_of};
use crate::http::auth::Authenticated;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::{ApiQuery, AppState};

const LEVELS: [&str; 4] = ["province", "city", "county", "station"];

/// The compliance report of one area and period.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ComplianceReport {
    pub level: String,
    pub code: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Station codes the report covers.
    pub stations: Vec<String>,
    /// Applications decided in the period.
    pub applications: i64,
    pub applications_per_matter: BTreeMap<String, i64>,
    /// Certificates issued in the period.
    pub issued: i64,
    pub issued_per_kind: BTreeMap<String, i64>,
    /// Issuances that only the transition window allowed.
    pub transitional_issued: i64,
    /// Refusals recorded in the period.
    pub refusals: i64,
    pub refused_per_principle: BTreeMap<String, i64>,
    /// Refusals whose explanation has at least the minimum length and which name a referral.
    pub refusals_explained: i64,
    pub refusals_explained_per_principle: BTreeMap<String, i64>,
    /// `refusals_explained / refusals`, rounded to four decimals; `null` without refusals.
    pub explanation_rate: Option<f64>,
    /// Applications decided in the period that have an overdue finding.
    pub overdue_applications: i64,
    /// Findings whose act falls in the period, exchange findings of the area's units included.
    pub findings: i64,
    /// Findings per rule; every rule is listed, with zero where none was found.
    pub findings_per_rule: BTreeMap<String, i64>,
    /// The same findings per category, `inaction` (不作为) or `misconduct` (乱作为).
    pub findings_per_category: BTreeMap<String, i64>,
    /// Findings inspectors recorded in inspections of the area's stations, by finding date.
    pub inspection_findings_per_category: BTreeMap<String, i64>,
    /// Exchange requests of the area's units whose feedback deadline falls in the period, per
    /// cadence (`unspecified` for an agreement without one).
    pub exchange_requests_per_cadence: BTreeMap<String, i64>,
    /// Of those, feedback delivered on or before the deadline.
    pub exchange_on_time_per_cadence: BTreeMap<String, i64>,
    /// Of those, feedback delivered after the deadline, or not delivered by it.
    pub exchange_late_per_cadence: BTreeMap<String, i64>,
    /// Officers of the area's stations who handle or approve cases.
    pub officers: i64,
    /// Of those, officers who completed the training of the current policy version.
    pub officers_trained: i64,
    /// `officers_trained / officers`, rounded to four decimals; `null` without officers.
    pub training_coverage: Option<f64>,
    pub training_policy_version: String,
    /// Inspections of the area's stations opened in the period.
    pub inspections_opened: i64,
    pub notices_published: i64,
    /// Rectification rounds required in the period.
    pub rectifications_required: i64,
    /// Rectification rounds required on or before `to` and not verified by then.
    pub open_rectifications: i64,
    /// Open rectification rounds whose due date passed before `to` without a report by then.
    pub overdue_rectifications: i64,
    /// Inspections closed in the period, per accountability decision.
    pub closed_per_outcome: BTreeMap<String, i64>,
}

impl ComplianceReport {
    /// Returns the report's numbers as `(metric, key, value)` rows; the CSV has one line each.
    pub fn rows(&self) -> Vec<(String, String, String)> {
        let mut rows = Vec::new();
        let mut scalar = |metric: &str, value: String| {
            rows.push((metric.to_string(), String::new(), value));
        };
        scalar("level", self.level.clone());
        scalar("code", self.code.clone());
        scalar("from", self.from.to_string());
        scalar("to", self.to.to_string());
        scalar("stations", self.stations.join(" "));
        scalar("applications", self.applications.to_string());
        scalar("issued", self.issued.to_string());
        scalar("transitional_issued", self.transitional_issued.to_string());
        scalar("refusals", self.refusals.to_string());
        scalar("refusals_explained", self.refusals_explained.to_string());
        scalar(
            "explanation_rate",
            self.explanation_rate
                .map(|rate| format!("{rate:.4}"))
                .unwrap_or_default(),
        );
        scalar(
            "overdue_applications",
            self.overdue_applications.to_string(),
        );
        scalar("findings", self.findings.to_string());
        scalar("officers", self.officers.to_string());
        scalar("officers_trained", self.officers_trained.to_string());
        scalar(
            "training_coverage",
            self.training_coverage
                .map(|rate| format!("{rate:.4}"))
                .unwrap_or_default(),
        );
        scalar(
            "training_policy_version",
            self.training_policy_version.clone(),
        );
        scalar("inspections_opened", self.inspections_opened.to_string());
        scalar("notices_published", self.notices_published.to_string());
        scalar(
            "rectifications_required",
            self.rectifications_required.to_string(),
        );
        scalar("open_rectifications", self.open_rectifications.to_string());
        scalar(
            "overdue_rectifications",
            self.overdue_rectifications.to_string(),
        );

        for (metric, counts) in [
            ("applications_per_matter", &self.applications_per_matter),
            ("issued_per_kind", &self.issued_per_kind),
            ("refused_per_principle", &self.refused_per_principle),
            (
                "refusals_explained_per_principle",
                &self.refusals_explained_per_principle,
            ),
            ("findings_per_rule", &self.findings_per_rule),
            ("findings_per_category", &self.findings_per_category),
            (
                "inspection_findings_per_category",
                &self.inspection_findings_per_category,
            ),
            (
                "exchange_requests_per_cadence",
                &self.exchange_requests_per_cadence,
            ),
            (
                "exchange_on_time_per_cadence",
                &self.exchange_on_time_per_cadence,
            ),
            ("exchange_late_per_cadence", &self.exchange_late_per_cadence),
            ("closed_per_outcome", &self.closed_per_outcome),
        ] {
            for (key, value) in counts {
                rows.push((metric.to_string(), key.clone(), value.to_string()));
            }
        }
        rows
    }

    /// Writes the rows as CSV with the header `metric,key,value`.
    pub fn to_csv(&self) -> anyhow::Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["metric", "key", "value"])?;
        for (metric, key, value) in self.rows() {
            writer.write_record([metric, key, value])?;
        }
        Ok(String::from_utf8(writer.into_inner()?)?)
    }

    /// Writes a printable HTML page of the rows: one table per metric, with the same values as
    /// the JSON and the CSV.
    pub fn to_html(&self) -> String {
        let mut page = String::new();
        let title = format!(
            "Compliance report: {} {}, {} to {}",
            self.level, self.code, self.from, self.to
        );
        page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        page.push_str(&format!("<title>{}</title>\n", escape(&title)));
        page.push_str(
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}\
             td,th{border:1px solid #888;padding:2px 8px;text-align:left}td.value{text-align:right}\
             @media print{body{margin:0}}</style>\n</head>\n<body>\n",
        );
        page.push_str(&format!("<h1>{}</h1>\n", escape(&title)));
        page.push_str(
            "<table class=\"report\">\n<tr><th>metric</th><th>key</th><th>value</th></tr>\n",
        );
        let mut previous = String::new();
        for (metric, key, value) in self.rows() {
            if metric != previous && !key.is_empty() {
                page.push_str(&format!(
                    "<tr><th colspan=\"3\">{}</th></tr>\n",
                    escape(&metric)
                ));
            }
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"value\">{}</td></tr>\n",
                escape(&metric),
                escape(&key),
                escape(&value)
            ));
            previous = metric;
        }
        page.push_str("</table>\n</body>\n</html>\n");
        page
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Returns the stations and the exchange units (city and county codes) under an area.
async fn area(state: &AppState, level: &str, code: &str) -> ApiResult<(Vec<String>, Vec<String>)> {
    let condition = match level {
        "station" => "s.code = $1",
        "county" => "s.county_code = $1",
        "city" => "k.city_code = $1",
        // Province codes are the leading digits of the city codes (22 for Jilin, whose city
        // codes run from 220100 to 222400). A whole city code is not a province.
        _ => "starts_with(k.city_code, $1) AND length(k.city_code) > length($1)",
    };
    let rows: Vec<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT s.code, s.county_code, k.city_code FROM stations s JOIN counties k ON k.code = s.county_code
          WHERE {condition} ORDER BY s.code"
    ))
    .bind(code)
    .fetch_all(&state.pool)
    .await?;

    if rows.is_empty() {
        return Err(ApiError::NotFound {
            code: "area_not_found",
            message: format!("no station is registered under {level} {code}; check the code"),
        });
    }

    let stations = rows.iter().map(|row| row.0.clone()).collect();
    // A station's exchange findings belong to its county and city; only areas that contain
    // the whole unit count them.
    let mut units: Vec<String> = match level {
        "station" => Vec::new(),
        "county" => vec![code.to_string()],
        _ => rows
            .iter()
            .flat_map(|row| [row.1.clone(), row.2.clone()])
            .collect(),
    };
    units.sort();
    units.dedup();
    Ok((stations, units))
}

/// Counts the applications of `$1` (station codes) in the period `$2` to `$3`, grouped by
/// matter, kind, principle and status, in one scan of `application_view`:
///
/// * `decided`: decided in the period, and `decided_overdue` of those with an `overdue` finding.
///   A case has at most one `overdue` finding, so at most one finding joins each row.
/// * `closed`: closed in the period, `closed_transitional` of those issued only under the
///   transition window, and `closed_explained` of those with an explanation of the minimum
///   length and a referral, the same test as the `refusal_unexplained` rule.
fn application_counts_sql() -> String {
    format!(
        "SELECT v.matter, v.kind, v.principle, v.status,
                count(*) FILTER (WHERE v.decision_date BETWEEN $2 AND $3) AS decided,
                count(*) FILTER (WHERE v.decision_date BETWEEN $2 AND $3 AND f.aggregate_id IS NOT NULL) AS decided_overdue,
                count(*) FILTER (WHERE v.closed_on BETWEEN $2 AND $3) AS closed,
                count(*) FILTER (WHERE v.closed_on BETWEEN $2 AND $3 AND v.transitional) AS closed_transitional,
                count(*) FILTER (WHERE v.closed_on BETWEEN $2 AND $3
                                   AND char_length(btrim(coalesce(v.explanation, ''))) >= {MIN_EXPLANATION_CHARS}
                                   AND btrim(coalesce(v.referral, '')) <> '') AS closed_explained
           FROM application_view v
           LEFT JOIN supervision_findings f
             ON f.aggregate_type = 'application' AND f.aggregate_id = v.application_id AND f.rule = 'overdue'
          WHERE v.station_code = ANY($1)
            AND (v.decision_date BETWEEN $2 AND $3 OR v.closed_on BETWEEN $2 AND $3)
          GROUP BY v.matter, v.kind, v.principle, v.status"
    )
}

/// One group of [`application_counts_sql`]: matter, kind, principle and status, then the
/// counts decided, decided_overdue, closed, closed_transitional and closed_explained.
type CountRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
);

/// The application counts of a report, before the totals are summed.
#[derive(Default)]
struct ApplicationCounts {
    per_matter: BTreeMap<String, i64>,
    issued_per_kind: BTreeMap<String, i64>,
    transitional_issued: i64,
    refused_per_principle: BTreeMap<String, i64>,
    explained_per_principle: BTreeMap<String, i64>,
    overdue: i64,
}

/// Adds `count` to `key`, leaving out zero counts as a `GROUP BY` over the matching rows would.
fn add(counts: &mut BTreeMap<String, i64>, key: Option<String>, count: i64) {
    if count > 0 {
        *counts.entry(key.unwrap_or_default()).or_default() += count;
    }
}

async fn application_counts(
    state: &AppState,
    stations: &[String],
    (from, to): (NaiveDate, NaiveDate),
) -> ApiResult<ApplicationCounts> {
    let rows: Vec<CountRow> = sqlx::query_as(&application_counts_sql())
        .bind(stations)
        .bind(from)
        .bind(to)
        .fetch_all(&state.pool)
        .await?;
    let mut counts = ApplicationCounts::default();
    for row in rows {
        let (matter, kind, principle, status, decided, overdue, closed, transitional, explained) =
            row;
        add(&mut counts.per_matter, Some(matter), decided);
        counts.overdue += overdue;
        if status == "issued" {
            add(&mut counts.issued_per_kind, kind, closed);
            counts.transitional_issued += transitional;
        } else if status == "refused" {
            add(&mut counts.refused_per_principle, principle.clone(), closed);
            add(&mut counts.explained_per_principle, principle, explained);
        }
    }
    Ok(counts)
}

/// Counts findings per rule in the period, listing every rule with zero where none was found.
async fn findings_per_rule(
    state: &AppState,
    (stations, units): (&[String], &[String]),
    (from, to): (NaiveDate, NaiveDate),
) -> ApiResult<BTreeMap<String, i64>> {
    let found: Vec<(String, i64)> = sqlx::query_as(
        "SELECT rule, count(*) FROM supervision_findings
          WHERE (station_code = ANY($1) OR unit_code = ANY($2)) AND occurred_on BETWEEN $3 AND $4
          GROUP BY rule",
    )
    .bind(stations)
    .bind(units)
    .bind(from)
    .bind(to)
    .fetch_all(&state.pool)
    .await?;
    let mut per_rule: BTreeMap<String, i64> = projections::supervision::rule_codes()
        .into_iter()
        .map(|code| (code.to_string(), 0))
        .collect();
    per_rule.extend(found);
    Ok(per_rule)
}

/// Returns `part / total` rounded to four decimals, or `None` when `total` is zero.
fn ratio(part: i64, total: i64) -> Option<f64> {
    (total > 0).then(|| {
        let rate = part as f64 / total as f64;
        (rate * 10_000.0).round() / 10_000.0
    })
}

/// Computes the report of `stations` and `units` for the period.
async fn report(
    state: &AppState,
    (level, code): (String, String),
    (stations, units): (Vec<String>, Vec<String>),
    (from, to): (NaiveDate, NaiveDate),
) -> ApiResult<ComplianceReport> {
    let period = (from, to);
    let counts = application_counts(state, &stations, period).await?;
    let findings_per_rule = findings_per_rule(state, (&stations, &units), period).await?;

    let ApplicationCounts {
        per_matter: applications_per_matter,
        issued_per_kind,
        transitional_issued,
        refused_per_principle,
        explained_per_principle: refusals_explained_per_principle,
        overdue,
    } = counts;
    let refusals: i64 = refused_per_principle.values().sum();
    let refusals_explained: i64 = refusals_explained_per_principle.values().sum();
    let mut findings_per_category =
        BTreeMap::from([("inaction".to_string(), 0), ("misconduct".to_string(), 0)]);
    for (rule, category) in projections::supervision::rule_categories() {
        let found = findings_per_rule.get(rule).copied().unwrap_or(0);
        *findings_per_category
            .entry(category.to_string())
            .or_default() += found;
    }
    let exchange = exchange_timeliness(state, &units, period).await?;
    let training = training(state, &stations).await?;
    let inspections = inspections(state, &stations, period).await?;
    Ok(ComplianceReport {
        level,
        code,
        from,
        to,
        stations,
        applications: applications_per_matter.values().sum(),
        applications_per_matter,
        issued: issued_per_kind.values().sum(),
        issued_per_kind,
        transitional_issued,
        refusals,
        refused_per_principle,
        refusals_explained,
        refusals_explained_per_principle,
        explanation_rate: ratio(refusals_explained, refusals),
        overdue_applications: overdue,
        findings: findings_per_rule.values().sum(),
        findings_per_rule,
        findings_per_category,
        inspection_findings_per_category: inspections.findings_per_category,
        exchange_requests_per_cadence: exchange.requests,
        exchange_on_time_per_cadence: exchange.on_time,
        exchange_late_per_cadence: exchange.late,
        officers: training.officers,
        officers_trained: training.trained,
        training_coverage: ratio(training.trained, training.officers),
        training_policy_version: training.version,
        inspections_opened: inspections.opened,
        notices_published: inspections.notices,
        rectifications_required: inspections.required,
        open_rectifications: inspections.open,
        overdue_rectifications: inspections.overdue,
        closed_per_outcome: inspections.closed_per_outcome,
    })
}

/// Exchange requests per cadence whose feedback deadline falls in the period.
struct ExchangeTimeliness {
    requests: BTreeMap<String, i64>,
    on_time: BTreeMap<String, i64>,
    late: BTreeMap<String, i64>,
}

/// Counts exchange requests of `units` by deadline. Feedback not delivered counts as late only
/// once its deadline has passed, as of the earlier of `to` and today.
async fn exchange_timeliness(
    state: &AppState,
    units: &[String],
    (from, to): (NaiveDate, NaiveDate),
) -> ApiResult<ExchangeTimeliness> {
    let as_of = to.min(crate::http::today_in_china());
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT coalesce(state->>'cadence', 'unspecified') AS cadence,
                count(*),
                count(*) FILTER (WHERE (state->>'delivered_on')::date <= (state->>'deadline')::date),
                count(*) FILTER (WHERE (state->>'delivered_on')::date > (state->>'deadline')::date
                                    OR (state->>'delivered_on' IS NULL AND (state->>'deadline')::date < $4))
           FROM supervision_cases
          WHERE aggregate_type = 'exchange_request' AND state->>'unit' = ANY($1)
            AND (state->>'deadline')::date BETWEEN $2 AND $3
          GROUP BY 1",
    )
    .bind(units)
    .bind(from)
    .bind(to)
    .bind(as_of)
    .fetch_all(&state.pool)
    .await?;
    let mut timeliness = ExchangeTimeliness {
        requests: BTreeMap::new(),
        on_time: BTreeMap::new(),
        late: BTreeMap::new(),
    };
    for (cadence, requests, on_time, late) in rows {
        timeliness.requests.insert(cadence.clone(), requests);
        timeliness.on_time.insert(cadence.clone(), on_time);
        timeliness.late.insert(cadence, late);
    }
    Ok(timeliness)
}

struct Training {
    version: String,
    officers: i64,
    trained: i64,
}

/// Counts the officers of `stations` who handle or approve cases, and those trained in the
/// current policy version.
async fn training(state: &AppState, stations: &[String]) -> ApiResult<Training> {
    let version = state
        .applications
        .services()
        .policies
        .current()
        .version
        .clone();
    let (officers, trained): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(t.officer_id) FROM officers o
           LEFT JOIN training_records t ON t.officer_id = o.id AND t.policy_version = $2
          WHERE o.station_code = ANY($1) AND o.role NOT IN ('inspector', 'provincial_officer')",
    )
    .bind(stations)
    .bind(&version)
    .fetch_one(&state.pool)
    .await?;
    Ok(Training {
        version,
        officers,
        trained,
    })
}

struct Inspections {
    opened: i64,
    notices: i64,
    required: i64,
    open: i64,
    overdue: i64,
    findings_per_category: BTreeMap<String, i64>,
    closed_per_outcome: BTreeMap<String, i64>,
}

/// Counts the inspections of `stations` and their steps in the period.
async fn inspections(
    state: &AppState,
    stations: &[String],
    (from, to): (NaiveDate, NaiveDate),
) -> ApiResult<Inspections> {
    let pool = &state.pool;
    let opened: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inspections WHERE station_code = ANY($1) AND opened_on BETWEEN $2 AND $3",
    )
    .bind(stations)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;

    let notices: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inspection_notices WHERE station_code = ANY($1) AND published_on BETWEEN $2 AND $3",
    )
    .bind(stations)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;

    let (required, open, overdue): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE required_on BETWEEN $2 AND $3),
                count(*) FILTER (WHERE required_on <= $3 AND (verified_on IS NULL OR verified_on > $3)),
                count(*) FILTER (WHERE required_on <= $3 AND (verified_on IS NULL OR verified_on > $3)
                                   AND due_on < $3 AND (reported_on IS NULL OR reported_on > due_on))
           FROM rectifications WHERE station_code = ANY($1)",
    )
    .bind(stations)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;

    let found: Vec<(String, i64)> = sqlx::query_as(
        "SELECT category, count(*) FROM inspection_findings
          WHERE station_code = ANY($1) AND found_on BETWEEN $2 AND $3 GROUP BY category",
    )
    .bind(stations)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut findings_per_category =
        BTreeMap::from([("inaction".to_string(), 0), ("misconduct".to_string(), 0)]);
    findings_per_category.extend(found);

    let closed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, count(*) FROM inspections
          WHERE station_code = ANY($1) AND closed_on BETWEEN $2 AND $3 GROUP BY outcome",
    )
    .bind(stations)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(Inspections {
        opened,
        notices,
        required,
        open,
        overdue,
        findings_per_category,
        closed_per_outcome: closed.into_iter().collect(),
    })
}

#[utoipa::path(get, path = "/v1/supervision/compliance",
    params(
        ("level" = String, Query, description = "province, city, county or station"),
        ("code" = String, Query, description = "code of the area: the leading digits of city codes for a province, else the city, county or station code"),
        ("from" = NaiveDate, Query, description = "first day of the period, inclusive"),
        ("to" = NaiveDate, Query, description = "last day of the period, inclusive"),
        ("format" = Option<String>, Query, description = "json (default), csv or html (a printable page)"),
    ),
    responses((status = 200, description = "The report in the requested format", content((ComplianceReport = "application/json"), (String = "text/csv"), (String = "text/html"))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn compliance(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let scope = scope_of(&actor)?;
    let params = Params::new(query, &["level", "code", "from", "to", "format"])?;
    let level = params.required("level")?;
    if !LEVELS.contains(&level.as_str()) {
        let message = format!(
            "level {level:?} is unknown; use one of {}",
            LEVELS.join(", ")
        );
        return Err(invalid("level", message));
    }
    let code = params.required("code")?;
    let from = params.date("from")?;
    let to = params.date("to")?;
    let (Some(from), Some(to)) = (from, to) else {
        let field = if from.is_none() { "from" } else { "to" };
        return Err(invalid(
            field,
            format!("query parameter {field} is required, as YYYY-MM-DD"),
        ));
    };
    check_period(Some(from), Some(to))?;

    let format = params.text("format").unwrap_or_else(|| "json".into());
    if !["json", "csv", "html"].contains(&format.as_str()) {
        return Err(invalid(
            "format",
            format!("format {format:?} is unknown; use json, csv or html"),
        ));
    }
    if let Scope::Station(own) = &scope
        && (level != "station" || &code != own)
    {
        return Err(forbidden(format!(
            "station leaders read the report of their own station: level=station&code={own}"
        )));
    }

    let covered = area(&state, &level, &code).await?;
    let report = report(&state, (level, code), covered, (from, to)).await?;
    if format == "csv" {
        let body = report.to_csv()?;
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    if format == "html" {
        let body = report.to_html();
        return Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response());
    }
    Ok(axum::Json(report).into_response())
}
