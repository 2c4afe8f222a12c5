//! Read endpoints: an application's history with its hash chain, the refusal notice, the
//! public certificate check and the policy in force.

use aggregates::application::Actor;
use aggregates::application_reads::{ApplicationReads, ReadApplication, ReadView};
use aggregates::chain::{self, ChainBreak, StoredEvent};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::RequestId;
use super::applications::load_for;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::record_checks::execute;
use super::{ApiQuery, Path};
use aggregates::application::{ApplicationError, Status};

/// Query of a read of an application's personal data.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Reason for the read, such as the case or inspection it serves, recorded with the read; at
    /// most 500 characters.
    // Optional here only so that a missing purpose gets the API's own error naming the field.
    #[param(required = true, value_type = String)]
    pub purpose: Option<String>,
}

/// Records that `actor` reads the personal data of application `id`, of `case_station`,
/// through `view`, and returns the purpose as recorded. The read is committed before anything
/// is shown, and a read that is not allowed records nothing.
pub(crate) async fn record_application_read(
    state: &AppState,
    actor: &Actor,
    request_id: &RequestId,
    id: &str,
    case_station: &str,
    view: ReadView,
    purpose: Option<String>,
) -> ApiResult<String> {
    // NOTE: reads of one application wait for each other, and each verifies the whole read
    // chain, so a read slows as the chain grows (about 55 ms after 2,000 reads, measured once).
    let purpose = purpose.unwrap_or_default();
    super::reject_nul("purpose", &purpose)?;
    let command = ReadApplication {
        actor: actor.clone(),
        case_station: case_station.to_string(),
        view,
        purpose: purpose.clone(),
    };
    execute::<ApplicationReads>(state, id, command, actor, request_id)
        .await
        .map_err(|error| match error {
            // Nothing is appended to a damaged chain, so no read can be recorded and nothing is
            // shown. The error names the read log, which is damaged, not the application.
            ApiError::Application(ApplicationError::Conflict {
                code: "history_damaged",
                message,
            }) => {
                // The damage is named in parentheses: "(content changed at sequence 1)".
                let damage = message
                    .split_once('(')
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map_or("damaged", |(damage, _)| damage);
                ApiError::Application(ApplicationError::Conflict {
                    code: "read_log_damaged",
                    message: format!(
                        "the log of reads of application {id} (aggregate application_reads) fails verification ({damage}), so no read of its personal data can be recorded and none is shown; the application's own chain is not concerned; run `zhengming verify` to examine the log"
                    ),
                })
            }
            other => other,
        })?;
    Ok(purpose.trim().to_string())
}

/// One event of an application's history.
#[derive(Serialize, ToSchema)]
pub struct HistoryEvent {
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Actor, request id, time stamped into the hash, and the hash fields.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub hash: Option<String>,
    pub prev_hash: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryResponse {
    pub application_id: String,
    /// True when every hash and link recomputes.
    pub chain_verified: bool,
    /// The first damage found, if any.
    #[schema(value_type = Option<Object>)]
    pub first_break: Option<ChainBreak>,
    pub events: Vec<HistoryEvent>,
    /// The read just recorded: reader and purpose.
    pub read_by: String,
    pub read_purpose: String,
}

#[utoipa::path(get, path = "/v1/applications/{id}/history", params(ReadQuery), responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> ApiResult<Json<HistoryResponse>> {
    // The history is shown even when its chain is damaged or an event does not decode: that is
    // when it must be examined. So the owning station is read from the stored submission.
    let rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, recorded_at
           FROM events WHERE aggregate_type = 'application' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    let station = rows
        .first()
        .filter(|row| row.get::<i64, _>("sequence") == 1)
        .and_then(|row| {
            let payload: serde_json::Value = row.get("payload");
            payload["ApplicationSubmitted"]["station"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_default();
    if station != actor.station {
        // Another station's application is reported as absent, so ids cannot be probed.
        return Err(ApplicationError::NotFound.into());
    }
    // The events carry identity numbers unmasked, so the read is recorded first.
    let read_purpose = record_application_read(
        &state,
        &actor,
        &request_id,
        &id,
        &station,
        ReadView::History,
        query.purpose,
    )
    .await?;
    let mut stored = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let event = StoredEvent {
            aggregate_type: row.get("aggregate_type"),
            aggregate_id: row.get("aggregate_id"),
            sequence: row.get::<i64, _>("sequence") as u64,
            event_type: row.get("event_type"),
            event_version: row.get("event_version"),
            payload: row.get("payload"),
            metadata: row.get("metadata"),
        };
        let text = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(|value| value.as_str())
                .map(String::from)
        };
        events.push(HistoryEvent {
            sequence: row.get("sequence"),
            global_position: row.get("global_position"),
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            recorded_at: row.get("recorded_at"),
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
            hash: text(chain::HASH_KEY),
            prev_hash: text(chain::PREV_HASH_KEY),
        });
        stored.push(event);
    }
    let first_break = chain::verify_chain(&stored);
    Ok(Json(HistoryResponse {
        application_id: id,
        chain_verified: first_break.is_none(),
        first_break,
        events,
        read_by: actor.officer_id,
        read_purpose,
    }))
}

/// The written refusal notice (不予出具证明告知书).
#[derive(Serialize, ToSchema)]
pub struct RefusalNotice {
    pub application_id: String,
    pub title: String,
    pub applicant_name: String,
    pub matter: String,
    pub matter_description: String,
    pub principle: String,
    pub principle_name: String,
    pub principle_description: String,
    pub explanation: String,
    pub referral: String,
    /// True when the transition window applied and the station explains that it cannot issue.
    pub cannot_issue: bool,
    pub station: String,
    pub officer: String,
    pub refused_on: NaiveDate,
    pub policy_version: String,
    pub rule_id: String,
    /// The notice as printed.
    pub text: String,
}

#[utoipa::path(get, path = "/v1/applications/{id}/refusal-notice", responses((status = 200, body = RefusalNotice), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn refusal_notice(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<RefusalNotice>> {
    let application = load_for(&state, &actor, &id).await?;
    let (Some(refusal), Some(screening)) = (&application.refusal, &application.screening) else {
        return Err(ApiError::NotFound {
            code: "no_refusal",
            message: "this application was not refused, so it has no refusal notice".into(),
        });
    };
    let policy = state
        .applications
        .services()
        .policies
        .version(&screening.policy_version)
        .ok_or_else(|| ApplicationError::Conflict {
            code: "policy_version_unavailable",
            message: format!("policy {} is not loaded", screening.policy_version),
        })?;
    let principle = policy.principles.get(&refusal.principle);
    let matter = policy.matters.get(&application.matter);
    let applicant_name = application
        .applicant
        .as_ref()
        .map(|person| person.name.clone())
        .unwrap_or_default();
    let mut notice = RefusalNotice {
        application_id: id,
        title: "不予出具证明告知书 (Notice of refusal to issue a certificate)".into(),
        applicant_name,
        matter: application.matter.clone(),
        matter_description: matter
            .map(|matter| matter.description.clone())
            .unwrap_or_default(),
        principle: refusal.principle.clone(),
        principle_name: principle
            .map(|principle| principle.name.clone())
            .unwrap_or_default(),
        principle_description: principle
            .map(|principle| principle.description.clone())
            .unwrap_or_default(),
        explanation: refusal.explanation.clone(),
        referral: refusal.referral.clone(),
        cannot_issue: refusal.cannot_issue,
        station: application.station.clone(),
        officer: refusal.officer.clone(),
        refused_on: refusal.refused_on,
        policy_version: screening.policy_version.clone(),
        rule_id: screening.rule_id.clone(),
        text: String::new(),
    };
    notice.text = notice_text(&notice);
    Ok(Json(notice))
}

fn notice_text(notice: &RefusalNotice) -> String {
    let decision = if notice.cannot_issue {
        "cannot issue"
    } else {
        "does not issue"
    };
    format!(
        "{title}\n\nTo {name}:\nYou asked station {station} for a certificate of: {matter}.\n\
         The station {decision} it under the principle {principle_name} ({principle}): {principle_description}\n\n\
         {explanation}\n\nWhere to go instead: {referral}\n\n\
         Officer {officer}, {date}. Policy {version}, rule {rule}. Application {id}.\n",
        title = notice.title,
        name = notice.applicant_name,
        station = notice.station,
        matter = notice.matter_description,
        principle_name = notice.principle_name,
        principle = notice.principle,
        principle_description = notice.principle_description,
        explanation = notice.explanation,
        referral = notice.referral,
        officer = notice.officer,
        date = notice.refused_on,
        version = notice.policy_version,
        rule = notice.rule_id,
        id = notice.application_id,
    )
}

/// The public authenticity check of a certificate: no personal data.
#[derive(Serialize, ToSchema)]
pub struct CertificateCheck {
    pub certificate_number: String,
    pub kind: String,
    pub kind_name: String,
    pub station: String,
    pub issued_on: NaiveDate,
    pub status: String,
}

#[utoipa::path(get, path = "/v1/certificates/{number}", responses((status = 200, body = CertificateCheck), (status = 404, body = ErrorBody)))]
pub async fn check_certificate(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> ApiResult<Json<CertificateCheck>> {
    let not_found = || {
        ApiError::NotFound {
        code: "certificate_not_found",
        message: "no certificate with this number was issued; check the number printed on the certificate".into(),
    }
    };
    // The view only finds the application; the answer comes from the application's events,
    // whose chain `load` verifies, so a row written into the view cannot vouch for a
    // certificate the log does not hold.
    let application_id: String = sqlx::query_scalar(
        "SELECT application_id FROM certificate_view WHERE certificate_number = $1",
    )
    .bind(&number)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(not_found)?;
    let application = state
        .applications
        .load(&application_id)
        .await?
        .ok_or_else(not_found)?;
    let issued = application.status == Status::Issued
        && application.certificate_number.as_deref() == Some(number.as_str());
    let (Some(kind), Some(issued_on), true) = (
        application
            .outcome
            .as_ref()
            .and_then(|outcome| outcome.kind()),
        application.closed_on,
        issued,
    ) else {
        return Err(not_found());
    };
    let kind_name = state
        .applications
        .services()
        .policies
        .current()
        .kind(kind)
        .map(|kind| kind.name.clone())
        .unwrap_or_default();
    Ok(Json(CertificateCheck {
        certificate_number: number,
        kind: kind.to_string(),
        kind_name,
        station: application.station,
        issued_on,
        status: "valid".into(),
    }))
}

#[utoipa::path(get, path = "/v1/policy", responses((status = 200, description = "the policy in force: kinds, principles, matters, transition window")))]
pub async fn policy(State(state): State<AppState>) -> Json<serde_json::Value> {
    let policy = state.applications.services().policies.current();
    Json(serde_json::json!({
        "version": policy.version,
        "transition": policy.transition,
        "kinds": policy.kinds.values().collect::<Vec<_>>(),
        "principles": policy.principles.values().collect::<Vec<_>>(),
        "gates": policy.gates,
        "matters": policy.matters.values().collect::<Vec<_>>(),
        "criminal_records": policy.criminal_records,
        "exchange": policy.exchange,
    }))
}

/// Adds the counts of sealed and unsealed events to the sealer's state.
fn with_progress(
    mut ledger: serde_json::Value,
    progress: crate::ledger::records::SealingProgress,
) -> serde_json::Value {
    ledger["sealed_events"] = progress.sealed_events.into();
    ledger["unsealed_events"] = progress.unsealed_events.into();
    ledger
}

#[utoipa::path(get, path = "/health", responses((status = 200, description = "server and database are up: status ok, or degraded while the ledger sealer fails or the working-day calendar does not cover today; the lag of each projection in log positions; the events sealed and not yet sealed (counted up to 100,000); the last day of the working-day calendar, with a warning when fewer than 60 days remain"), (status = 503, description = "database unreachable")))]
pub async fn health(
    State(state): State<AppState>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    let lags = async {
        let applications = projections::projector::lag(&state.pool).await?;
        let supervision = projections::supervision::lag(&state.pool).await?;
        let inspections = projections::inspection::lag(&state.pool).await?;
        let sealing = crate::ledger::records::sealing_progress(&state.pool).await?;
        Ok::<_, anyhow::Error>((applications, supervision, inspections, sealing))
    };
    // A sealer that fails leaves new events outside every checkpoint: the server still serves,
    // but reports itself degraded so that monitoring raises it.
    let ledger = match &state.ledger_failure {
        None => serde_json::json!({"sealing": "off"}),
        Some(failure) => match &*failure.borrow() {
            None => serde_json::json!({"sealing": "ok"}),
            Some(error) => serde_json::json!({"sealing": "failing", "error": error}),
        },
    };
    let policy = state.applications.services().policies.current();
    let calendar = crate::server::calendar_coverage(policy, super::today_in_china());
    // A calendar that does not cover today refuses every application: also degraded.
    let status = if ledger["sealing"] == "failing" || calendar.covered_until.is_none() {
        "degraded"
    } else {
        "ok"
    };
    match lags.await {
        Ok((applications, supervision, inspections, sealing)) => (
            axum::http::StatusCode::OK,
            Json(serde_json::json!({
                "status": status,
                "database": "ok",
                "ledger": with_progress(ledger, sealing),
                "calendar": calendar,
                "projections": {
                    "applications": {"checkpoint": applications.checkpoint.global_position, "head": applications.head, "lag": applications.behind},
                    "supervision": {"checkpoint": supervision.checkpoint.global_position, "head": supervision.head, "lag": supervision.behind},
                    "inspections": {"checkpoint": inspections.checkpoint.global_position, "head": inspections.head, "lag": inspections.behind},
                },
            })),
        ),
        Err(error) => {
            tracing::error!(cause = ?error, "health check failed: reading the database failed");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "degraded", "database": "unreachable"})),
            )
        }
    }
}
