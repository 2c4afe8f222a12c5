//! Read endpoints of no-criminal-record applications that reveal no record details: the
//! written refusal notice, the public authenticity check of a certificate, and the log of who
//! read the results.

use aggregates::policy::Role;
use aggregates::record_check::{RecordCheck, RecordCheckStatus};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::AppState;
use super::Path;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::record_checks::store_of;

/// The written refusal notice. It names no source and no finding: the applicant learns that
/// the certificate cannot be issued, why in general terms, and how to object.
#[derive(Serialize, ToSchema)]
pub struct RecordRefusalNotice {
    pub application_id: String,
    pub title: String,
    pub applicant_name: String,
    pub purpose: String,
    pub explanation: String,
    pub objection_rights: String,
    pub station: String,
    pub refused_on: NaiveDate,
    pub policy_version: String,
    /// The notice as printed.
    pub text: String,
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "record_check_not_found",
        message: "no-criminal-record application not found; check the application id".into(),
    }
}

async fn load_own(state: &AppState, station: &str, id: &str) -> ApiResult<RecordCheck> {
    let check = store_of::<RecordCheck>(state).load(id).await?;
    check
        .filter(|check| check.station == station)
        .ok_or_else(not_found)
}

#[utoipa::path(get, path = "/v1/record-checks/{id}/refusal-notice", responses((status = 200, body = RecordRefusalNotice), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn refusal_notice(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<RecordRefusalNotice>> {
    let check = load_own(&state, &actor.station, &id).await?;
    let (Some(explanation), Some(refused_on)) = (&check.refusal_explanation, check.refused_on)
    else {
        return Err(ApiError::NotFound {
            code: "no_refusal",
            message: "this application was not refused, so it has no refusal notice".into(),
        });
    };
    let policy = state
        .applications
        .services()
        .policies
        .version(&check.policy_version)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "policy {} of record check {id} is not loaded",
                check.policy_version
            )
        })?;
    let rules = &policy.criminal_records;
    let purpose = rules
        .purpose(&check.purpose)
        .map(|purpose| purpose.description.clone())
        .unwrap_or_else(|| check.purpose.clone());
    let objection_rights = format!(
        "You may object to this refusal at station {}. The station checks the records again and answers in writing within {} working days, or within {} working days where it extends the time with a reason.",
        check.station, rules.objection_answer_working_days, rules.objection_extended_working_days
    );
    let applicant_name = check
        .applicant
        .as_ref()
        .map(|person| person.name.clone())
        .unwrap_or_default();
    let title = "不予出具无违法犯罪记录核查证明告知书 (Notice of refusal to issue a no-criminal-record certificate)";
    let text = format!(
        "{title}\n\nTo {applicant_name}:\nYou applied to station {station} for a no-criminal-record certificate for: {purpose}.\n\
         The investigation does not allow the station to issue it.\n\n{explanation}\n\n{objection_rights}\n\n\
         {refused_on}. Policy {version}. Application {id}.\n",
        station = check.station,
        version = check.policy_version,
    );
    Ok(Json(RecordRefusalNotice {
        application_id: id,
        title: title.into(),
        applicant_name,
        purpose,
        explanation: explanation.clone(),
        objection_rights,
        station: check.station.clone(),
        refused_on,
        policy_version: check.policy_version.clone(),
        text,
    }))
}

/// The public authenticity check of a no-criminal-record certificate: no personal data and no
/// record details.
#[derive(Serialize, ToSchema)]
pub struct RecordCertificateCheck {
    pub certificate_number: String,
    pub kind: String,
    pub kind_name: String,
    pub station: String,
    pub issued_on: NaiveDate,
    pub status: String,
}

#[utoipa::path(get, path = "/v1/record-checks/certificates/{number}", responses((status = 200, body = RecordCertificateCheck), (status = 404, body = ErrorBody)))]
pub async fn check_certificate(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> ApiResult<Json<RecordCertificateCheck>> {
    // The issuance event itself is the record; the expression index of migration
    // 20261204000300 serves this lookup.
    let row = sqlx::query(
        "SELECT payload->'CertificateIssued'->>'station' AS station,
                payload->'CertificateIssued'->>'issued_on' AS issued_on
           FROM events
          WHERE aggregate_type = 'record_check' AND event_type = 'CertificateIssued'
            AND payload->'CertificateIssued'->>'certificate_number' = $1",
    )
    .bind(&number)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound {
        code: "certificate_not_found",
        message: "no no-criminal-record certificate with this number was issued; check the number printed on the certificate".into(),
    })?;
    let issued_on: String = row.get("issued_on");
    let issued_on = issued_on.parse::<NaiveDate>().map_err(|error| {
        anyhow::anyhow!("stored issuance date {issued_on:?} is invalid: {error}")
    })?;
    let kind_name = state
        .applications
        .services()
        .policies
        .current()
        .kind(aggregates::record_check::CERTIFICATE_KIND)
        .map(|kind| kind.name.clone())
        .unwrap_or_default();
    Ok(Json(RecordCertificateCheck {
        certificate_number: number,
        kind: aggregates::record_check::CERTIFICATE_KIND.into(),
        kind_name,
        station: row.get("station"),
        issued_on,
        status: "valid".into(),
    }))
}

/// One recorded read of criminal-record results.
#[derive(Serialize, ToSchema)]
pub struct ResultsReadEntry {
    pub reader: String,
    pub role: String,
    pub station: String,
    pub purpose: String,
    pub read_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/v1/record-checks/{id}/reads", responses((status = 200, body = [ResultsReadEntry]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn reads(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ResultsReadEntry>>> {
    let check = store_of::<RecordCheck>(&state).load(&id).await?;
    let check = check.ok_or_else(not_found)?;
    let allowed = actor.role == Role::Inspector
        || (actor.role == Role::StationLeader && actor.station == check.station);
    if !allowed || check.status == RecordCheckStatus::NotSubmitted {
        return Err(ApiError::from(
            aggregates::application::ApplicationError::Forbidden {
                code: "reads_access_denied",
                field: "officer".into(),
                message: "the log of result reads is open to inspectors and the leaders of the owning station".into(),
            },
        ));
    }
    let rows = sqlx::query(
        "SELECT payload, recorded_at FROM events
          WHERE aggregate_type = 'record_check' AND aggregate_id = $1 AND event_type = 'ResultsRead'
          ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: serde_json::Value = row.get("payload");
        let read = &payload["ResultsRead"];
        let text = |key: &str| read[key].as_str().unwrap_or_default().to_string();
        entries.push(ResultsReadEntry {
            reader: text("reader"),
            role: text("role"),
            station: text("station"),
            purpose: text("purpose"),
            read_at: row.get("recorded_at"),
        });
    }
    Ok(Json(entries))
}
