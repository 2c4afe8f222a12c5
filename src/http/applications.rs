//! `/v1/applications`: submitting, deciding and issuing, and reading an application.

use std::collections::{BTreeMap, HashMap};

use aggregates::application::{
    Actor, Application, ApplicationCommand, ApplicationError, ApproveApplication, EvidenceResult,
    IssueCertificate, OverrideOutcome, OverrideScreening, PersonInput, RecordEvidence,
    RefuseApplication, SignStub, Signer, SubmitApplication, WithdrawApplication,
};
use aggregates::policy::RequestingUnit;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::Path;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::{ApiJson, AppState, RequestId};

/// A person named in a request.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    pub name: String,
    /// 18-character citizen ID number (GB 11643-1999).
    pub id_number: String,
}

/// The unit that demands the certificate.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitBody {
    pub name: String,
    /// Unit-type code, such as `bank`, `state_organ`, `special_industry`, `private_enterprise`.
    pub unit_type: String,
    /// `national`, `provincial`, `city`, `county`, `township` or `none`.
    pub level: String,
    /// Whether a rule of a provincial-or-higher department requires the certificate.
    pub provincial_rule_requires: bool,
}

/// A new application. Screening runs at once and its decision is returned.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub applicant: PersonBody,
    /// An agent acting for the applicant, with their own identity.
    pub agent: Option<PersonBody>,
    pub unit: UnitBody,
    /// Matter code from `GET /v1/policy`.
    pub matter: String,
    /// The circumstances the matter's rules read, each true or false.
    #[serde(default)]
    pub circumstances: BTreeMap<String, bool>,
    pub purpose: String,
    /// Station code; defaults to the officer's station.
    pub station: Option<String>,
    /// Date of the decision; defaults to today in China Standard Time.
    pub decision_date: Option<NaiveDate>,
}

// `deny_unknown_fields` does not combine with `flatten`, so unknown fields are ignored here.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OverrideRequest {
    /// `{"outcome": "issue", "kind": …}` or `{"outcome": "refuse", "principle": …, "referral": …}`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub outcome: OverrideOutcome,
    /// The reason the screening outcome does not fit this case.
    pub justification: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalRequest {
    /// The explanation given to the citizen.
    pub explanation: String,
    /// The department that can help instead.
    pub referral: String,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRequest {
    /// An evidence source the catalogue allows for the kind.
    pub source: String,
    /// Reference in the source, such as a record or archive number.
    pub reference: String,
    pub result: EvidenceResult,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequest {
    /// `applicant` or `agent`.
    pub signer: Signer,
    pub name: String,
    pub phone: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateRequest {
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuanceRequest {
    /// `household_seal` or `official_seal`, as the kind requires.
    pub seal: String,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    pub reason: String,
    pub date: Option<NaiveDate>,
}

/// An application as its events leave it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationResponse {
    pub application_id: String,
    pub status: String,
    pub matter: String,
    pub station: String,
    pub handling_officer: String,
    /// Applicant's name and masked ID number.
    pub applicant: Option<String>,
    pub decision_date: Option<NaiveDate>,
    /// The screening decision with its policy version and rule.
    #[schema(value_type = Object)]
    pub screening: serde_json::Value,
    /// The outcome in force, after any override.
    #[schema(value_type = Object)]
    pub outcome: serde_json::Value,
    pub overridden: bool,
    /// The date promised when the application was accepted for issuance, by screening or by an
    /// override. It stays after an override to a refusal, which is due by the same date.
    pub promised_date: Option<NaiveDate>,
    pub evidence_checks: usize,
    pub stub_signed: bool,
    pub approved_by: Option<String>,
    pub certificate_number: Option<String>,
    pub closed_on: Option<NaiveDate>,
}

impl ApplicationResponse {
    pub fn new(id: &str, application: &Application) -> Self {
        let status = serde_json::to_value(application.status).unwrap_or_default();
        ApplicationResponse {
            application_id: id.to_string(),
            status: status.as_str().unwrap_or_default().to_string(),
            matter: application.matter.clone(),
            station: application.station.clone(),
            handling_officer: application.handling_officer.clone(),
            applicant: application
                .applicant
                .as_ref()
                .map(|person| format!("{} ({})", person.name, person.id_number.masked())),
            decision_date: application.decision_date,
            screening: serde_json::to_value(&application.screening).unwrap_or_default(),
            outcome: serde_json::to_value(&application.outcome).unwrap_or_default(),
            overridden: application.overridden,
            promised_date: application.promised_date,
            evidence_checks: application.evidence.len(),
            stub_signed: application.stub_signed,
            approved_by: application.approved_by.clone(),
            certificate_number: application.certificate_number.clone(),
            closed_on: application.closed_on,
        }
    }
}

fn metadata(actor: &Actor, request_id: &RequestId) -> HashMap<String, String> {
    HashMap::from([
        ("actor".to_string(), actor.officer_id.clone()),
        ("actor_role".to_string(), actor.role.code().to_string()),
        ("actor_station".to_string(), actor.station.clone()),
        ("request_id".to_string(), request_id.0.clone()),
    ])
}

async fn run(
    state: &AppState,
    id: &str,
    command: ApplicationCommand,
    request_id: &RequestId,
) -> ApiResult<Json<ApplicationResponse>> {
    let metadata = metadata(command.actor(), request_id);
    let officer = command.actor().officer_id.clone();
    let submission = matches!(command, ApplicationCommand::Submit(_));
    match state.applications.execute(id, command, metadata).await {
        Ok(application) => Ok(Json(ApplicationResponse::new(id, &application))),
        Err(error) => {
            let error = match ApiError::from(error) {
                // Another station's application answers as absent, as it does to reads, so
                // application ids cannot be probed.
                ApiError::Application(ApplicationError::Forbidden {
                    code: "other_station",
                    ..
                }) if !submission => ApiError::Application(ApplicationError::NotFound),
                other => other,
            };
            match &error {
                ApiError::Internal(cause) => {
                    tracing::error!(application_id = id, officer, request_id = request_id.0, cause = ?cause, "command failed");
                }
                rejected => {
                    tracing::info!(application_id = id, officer, request_id = request_id.0, reason = %rejected, "command rejected");
                }
            }
            Err(error)
        }
    }
}

/// Derives the application id from the officer and the idempotency key, so that a retry names
/// the same application.
fn idempotent_id(officer_id: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{officer_id}\0{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

#[utoipa::path(post, path = "/v1/applications", request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key: a retry with the same key and body returns the first result")),
    responses((status = 201, body = ApplicationResponse), (status = 200, description = "replay of an earlier submission with the same key", body = ApplicationResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubmitRequest>,
) -> ApiResult<(StatusCode, Json<ApplicationResponse>)> {
    let key = idempotency_key(&headers)?;
    let fingerprint = hex::encode(Sha256::digest(
        serde_json::to_vec(&body).unwrap_or_default(),
    ));
    let id = match &key {
        Some(key) => idempotent_id(&actor.officer_id, key),
        None => uuid::Uuid::now_v7().to_string(),
    };
    if let Some(key) = &key
        && let Some(replay) = replay_submission(&state, &actor, key, &fingerprint, &id).await?
    {
        return Ok((StatusCode::OK, Json(replay)));
    }
    let decision_date = state.stated_date("decision_date", body.decision_date)?;
    let command = submit_command(actor.clone(), body, decision_date);
    let result = run(
        &state,
        &id,
        ApplicationCommand::Submit(Box::new(command)),
        &request_id,
    )
    .await;
    let Some(key) = key else {
        return result.map(|response| (StatusCode::CREATED, response));
    };
    match result {
        Ok(response) => {
            sqlx::query("INSERT INTO idempotency_keys (officer_id, key, request_sha256, application_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(&actor.officer_id)
                .bind(&key)
                .bind(&fingerprint)
                .bind(&id)
                .execute(&state.pool)
                .await?;
            Ok((StatusCode::CREATED, response))
        }
        // A concurrent retry with the same key got there first.
        Err(ApiError::Conflict { .. })
        | Err(ApiError::Application(ApplicationError::Conflict {
            code: "already_submitted",
            ..
        })) => {
            let replay = replay_submission(&state, &actor, &key, &fingerprint, &id).await?;
            let conflict = || ApiError::Conflict {
                code: "submission_in_progress",
                message:
                    "a submission with this idempotency key is still in progress; retry shortly"
                        .into(),
            };
            replay
                .map(|response| (StatusCode::OK, Json(response)))
                .ok_or_else(conflict)
        }
        Err(error) => Err(error),
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        let message = format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"
        );
        return Err(ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_idempotency_key",
            field: Some("Idempotency-Key".into()),
            message,
        });
    }
    Ok(Some(key.to_string()))
}

/// Returns the earlier result for a retried key, or `None` if the key is new.
async fn replay_submission(
    state: &AppState,
    actor: &Actor,
    key: &str,
    fingerprint: &str,
    id: &str,
) -> ApiResult<Option<ApplicationResponse>> {
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT request_sha256 FROM idempotency_keys WHERE officer_id = $1 AND key = $2",
    )
    .bind(&actor.officer_id)
    .bind(key)
    .fetch_optional(&state.pool)
    .await?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    if stored != fingerprint {
        let message = "Idempotency-Key was already used for a different request; use a new key for a new application".to_string();
        return Err(ApiError::Rejected {
            code: "idempotency_key_reused",
            field: Some("Idempotency-Key".into()),
            message,
        });
    }
    let application =
        state.applications.load(id).await?.ok_or_else(|| {
            anyhow::anyhow!("idempotency key {key} names missing application {id}")
        })?;
    Ok(Some(ApplicationResponse::new(id, &application)))
}

fn submit_command(
    actor: Actor,
    body: SubmitRequest,
    decision_date: NaiveDate,
) -> SubmitApplication {
    let person = |person: PersonBody| PersonInput {
        name: person.name,
        id_number: person.id_number,
    };
    SubmitApplication {
        station: body.station.unwrap_or_else(|| actor.station.clone()),
        applicant: person(body.applicant),
        agent: body.agent.map(person),
        unit: RequestingUnit {
            name: body.unit.name,
            unit_type: body.unit.unit_type,
            level: body.unit.level,
            provincial_rule_requires: body.unit.provincial_rule_requires,
        },
        matter: body.matter,
        circumstances: body.circumstances,
        purpose: body.purpose,
        decision_date,
        actor,
    }
}

#[utoipa::path(get, path = "/v1/applications/{id}", responses((status = 200, body = ApplicationResponse), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<ApplicationResponse>> {
    let application = load_for(&state, &actor, &id).await?;
    Ok(Json(ApplicationResponse::new(&id, &application)))
}

/// Loads an application that the officer's station owns; fails when its chain is damaged.
pub async fn load_for(state: &AppState, actor: &Actor, id: &str) -> ApiResult<Application> {
    let application = state.applications.load(id).await?;
    owned_by(application, actor)
}

/// Returns the application if the officer's station owns it.
pub fn owned_by(application: Option<Application>, actor: &Actor) -> ApiResult<Application> {
    let application = application.ok_or(ApplicationError::NotFound)?;
    if application.station != actor.station {
        // Another station's application is reported as absent, so ids cannot be probed.
        return Err(ApplicationError::NotFound.into());
    }
    Ok(application)
}

#[utoipa::path(post, path = "/v1/applications/{id}/override", request_body = OverrideRequest, responses((status = 200, body = ApplicationResponse), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn override_screening(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OverrideRequest>,
) -> ApiResult<Json<ApplicationResponse>> {
    let command = OverrideScreening {
        actor,
        outcome: body.outcome,
        justification: body.justification,
    };
    run(
        &state,
        &id,
        ApplicationCommand::OverrideScreening(command),
        &request_id,
    )
    .await
}

#[utoipa::path(post, path = "/v1/applications/{id}/refusal", request_body = RefusalRequest, responses((status = 200, body = ApplicationResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn refuse(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RefusalRequest>,
) -> ApiResult<Json<ApplicationResponse>> {
    let date = state.stated_date("date", body.date)?;
    let command = RefuseApplication {
        actor,
        explanation: body.explanation,
        referral: body.referral,
        date,
    };
    run(
        &state,
        &id,
        ApplicationCommand::Refuse(command),
        &request_id,
    )
    .await
}

#[utoipa::path(post, path = "/v1/applications/{id}/evidence", request_body = EvidenceRequest, responses((status = 200, body = ApplicationResponse), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn record_evidence(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EvidenceRequest>,
) -> ApiResult<Json<ApplicationResponse>> {
    let command = RecordEvidence {
        actor,
        source: body.source,
        reference: body.reference,
        result: body.result,
    };
    run(
        &state,
        &id,
        ApplicationCommand::RecordEvidence(command),
        &request_id,
    )
    .await
}

#[utoipa::path(post, path = "/v1/applications/{id}/signature", request_body = SignatureRequest, responses((status = 200, body = ApplicationResponse), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn sign_stub(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SignatureRequest>,
) -> ApiResult<Json<ApplicationResponse>> {
    let command = SignStub {
        actor,
        signer: body.signer,
        name: body.name,
        phone: body.phone,
    };
    run(
        &state,
        &id,
        ApplicationCommand::SignStub(command),
        &request_id,
    )
    .await
}

#[utoipa::path(post, path = "/v1/applications/{id}/approval", request_body = DateRequest, responses((status = 200, body = ApplicationResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DateRequest>,
) -> ApiResult<Json<ApplicationResponse>> {
    let command = ApproveApplication {
        actor,
        date: state.stated_date("date", body.date)?,
    };
    run(
        &state,
        &id,
        ApplicationCommand::Approve(command),
        &request_id,
    )
    .await
}

#[utoipa::path(post, path = "/v1/applications/{id}/issuance", request_body = IssuanceRequest, responses((status = 200, body = ApplicationResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn issue(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<IssuanceRequest>,
) -> ApiResult<Json<ApplicationResponse>> {
    let date = state.stated_date("date", body.date)?;
    let certificate_number = new_certificate_number(&state, &actor.station, date).await?;
    let command = IssueCertificate {
        actor,
        certificate_number,
        seal: body.seal,
        date,
    };
    run(&state, &id, ApplicationCommand::Issue(command), &request_id).await
}

/// Draws the number of a certificate issued at `station` on `date`, for every kind of
/// certificate: `{station}-{year}-{serial:08}-{check code}`.
///
/// # Errors
/// Fails when the sequence cannot be read.
pub(crate) async fn new_certificate_number(
    state: &AppState,
    station: &str,
    date: chrono::NaiveDate,
) -> ApiResult<String> {
    let serial: i64 = sqlx::query_scalar("SELECT nextval('certificate_number_seq')")
        .fetch_one(&state.pool)
        .await?;
    // Numbers are unique because the serial comes from one sequence. A rejected issuance leaves
    // a gap in the serials. The random suffix keeps the public check from being walked through
    // consecutive serials: only a holder of the printed number can check it.
    Ok(format!(
        "{station}-{}-{serial:08}-{}",
        date.format("%Y"),
        check_code()
    ))
}

/// Six characters from an alphabet without look-alikes (no 0, O, 1, I), about 30 bits.
fn check_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(ALPHABET[rand::Rng::random_range(&mut rng, 0..ALPHABET.len())]))
        .collect()
}

#[utoipa::path(post, path = "/v1/applications/{id}/withdrawal", request_body = WithdrawalRequest, responses((status = 200, body = ApplicationResponse), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WithdrawalRequest>,
) -> ApiResult<Json<ApplicationResponse>> {
    let command = WithdrawApplication {
        actor,
        reason: body.reason,
        date: state.stated_date("date", body.date)?,
    };
    run(
        &state,
        &id,
        ApplicationCommand::Withdraw(command),
        &request_id,
    )
    .await
}
