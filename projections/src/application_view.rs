//! `application_view` and `certificate_view`: one row per application and per certificate.

use aggregates::application::ApplicationEvent;
use aggregates::policy::Outcome;
use sqlx::{Postgres, Transaction};

/// Applies one application event at `position` to the views.
///
/// # Errors
/// Fails when the database rejects a statement.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    position: i64,
    event: ApplicationEvent,
) -> sqlx::Result<()> {
    match event {
        ApplicationEvent::ApplicationSubmitted {
            matter,
            station,
            decision_date,
            ..
        } => {
            sqlx::query(
                "INSERT INTO application_view (application_id, station_code, matter, decision_date, status, last_position)
                 VALUES ($1, $2, $3, $4, 'submitted', $5) ON CONFLICT (application_id) DO NOTHING",
            )
            .bind(id)
            .bind(station)
            .bind(matter)
            .bind(decision_date)
            .bind(position)
            .execute(&mut **tx)
            .await?;
        }
        ApplicationEvent::ApplicationScreened { decision } => {
            sqlx::query(
                "UPDATE application_view SET policy_version = $2, rule_id = $3, in_transition = $4, promised_date = $5
                  WHERE application_id = $1",
            )
            .bind(id)
            .bind(&decision.policy_version)
            .bind(&decision.rule_id)
            .bind(decision.in_transition_window)
            .bind(decision.promised_date)
            .execute(&mut **tx)
            .await?;
            set_outcome(tx, id, &decision.outcome, false).await?;
        }
        ApplicationEvent::ScreeningOverridden { outcome, .. } => {
            set_outcome(tx, id, &outcome, true).await?
        }
        ApplicationEvent::ApplicationRefused {
            principle,
            referral,
            explanation,
            refused_on,
            ..
        } => {
            sqlx::query(
                "UPDATE application_view SET status = 'refused', principle = $2, referral = $3, explanation = $4, closed_on = $5
                  WHERE application_id = $1",
            )
            .bind(id)
            .bind(principle)
            .bind(referral)
            .bind(explanation)
            .bind(refused_on)
            .execute(&mut **tx)
            .await?;
        }
        ApplicationEvent::CertificateIssued {
            certificate_number,
            kind,
            station,
            issued_on,
            ..
        } => {
            sqlx::query("UPDATE application_view SET status = 'issued', certificate_number = $2, closed_on = $3 WHERE application_id = $1")
                .bind(id)
                .bind(&certificate_number)
                .bind(issued_on)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO certificate_view (certificate_number, application_id, kind, station_code, issued_on, status)
                 VALUES ($1, $2, $3, $4, $5, 'valid') ON CONFLICT (certificate_number) DO NOTHING",
            )
            .bind(certificate_number)
            .bind(id)
            .bind(kind)
            .bind(station)
            .bind(issued_on)
            .execute(&mut **tx)
            .await?;
        }
        ApplicationEvent::ApplicationWithdrawn { withdrawn_on, .. } => {
            sqlx::query("UPDATE application_view SET status = 'withdrawn', closed_on = $2 WHERE application_id = $1")
                .bind(id)
                .bind(withdrawn_on)
                .execute(&mut **tx)
                .await?;
        }
        ApplicationEvent::EvidenceChecked { .. }
        | ApplicationEvent::StubSigned { .. }
        | ApplicationEvent::LeaderApproved { .. } => {}
    }
    sqlx::query("UPDATE application_view SET last_position = $2 WHERE application_id = $1")
        .bind(id)
        .bind(position)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn set_outcome(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    outcome: &Outcome,
    overridden: bool,
) -> sqlx::Result<()> {
    let (name, kind, principle, transitional, status) = match outcome {
        Outcome::Issue { kind, transitional } => (
            "issue",
            Some(kind.as_str()),
            None,
            *transitional,
            "accepted",
        ),
        Outcome::Refuse { principle, .. } => (
            "refuse",
            None,
            Some(principle.as_str()),
            false,
            "awaiting_refusal",
        ),
        Outcome::CannotIssue { principle, .. } => (
            "cannot_issue",
            None,
            Some(principle.as_str()),
            false,
            "awaiting_refusal",
        ),
        Outcome::UnitVerification { .. } => ("unit_verification", None, None, false, "referred"),
    };
    sqlx::query(
        "UPDATE application_view SET outcome = $2, kind = $3, principle = $4, transitional = $5, status = $6,
                overridden = overridden OR $7
          WHERE application_id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(kind)
    .bind(principle)
    .bind(transitional)
    .bind(status)
    .bind(overridden)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
