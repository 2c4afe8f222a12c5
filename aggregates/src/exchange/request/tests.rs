//! Given/when/then tests of the request rules.

use chrono::{DateTime, FixedOffset, NaiveDate};

use super::*;
use crate::policy::{Policy, Role, bundled};

fn policy() -> Policy {
    Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("bundled policy loads")
}

fn actor() -> Actor {
    Actor {
        officer_id: "hh".into(),
        role: Role::HouseholdOfficer,
        station: "S1".into(),
    }
}

fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).expect("RFC 3339 time")
}

fn terms(cadence: Cadence) -> AgreementTerms {
    AgreementTerms {
        agreement_id: "a1".into(),
        household_unit: "K1".into(),
        department: "civil".into(),
        cadence: Some(cadence),
        items: vec!["name".into(), "sex".into()],
    }
}

fn command(action: RequestAction) -> RequestCommand {
    RequestCommand {
        actor: actor(),
        responsible_officer: Some("hh".into()),
        action,
    }
}

fn receive(cadence: Cadence, received_at: &str) -> RequestAction {
    RequestAction::Receive {
        agreement: terms(cadence),
        items: vec!["name".into()],
        received_at: at(received_at),
        batch: BatchSummary {
            subjects: 3,
            ..BatchSummary::default()
        },
    }
}

fn received(cadence: Cadence, received_at: &str) -> ExchangeRequest {
    let mut request = ExchangeRequest::default();
    let event = request
        .decide(command(receive(cadence, received_at)), &policy())
        .expect("receipt is accepted");
    request.apply(event);
    request
}

fn verified() -> ExchangeRequest {
    let mut request = received(Cadence::Monthly, "2026-02-12T10:00:00+08:00");
    let summary = VerificationSummary {
        result_sha256: "ab".repeat(32),
        result_bytes: 10,
        ..VerificationSummary::default()
    };
    let event = request
        .decide(
            command(RequestAction::RecordVerification(summary)),
            &policy(),
        )
        .expect("verification is recorded");
    request.apply(event);
    request
}

#[test]
fn monthly_deadline_crosses_spring_festival() {
    let request = received(Cadence::Monthly, "2026-02-12T10:00:00+08:00");
    assert_eq!(request.deadline, NaiveDate::from_ymd_opt(2026, 2, 26));
}

#[test]
fn receipt_date_is_china_time() {
    // 17:00 UTC on 02-12 is 01:00 on 02-13 in China, so day 0 is Friday 02-13.
    let request = received(Cadence::AdHoc, "2026-02-12T17:00:00Z");
    assert_eq!(request.deadline, NaiveDate::from_ymd_opt(2026, 2, 13));
}

#[test]
fn year_without_calendar_is_rejected() {
    let error = ExchangeRequest::default()
        .decide(
            command(receive(Cadence::Annual, "2027-03-01T09:00:00+08:00")),
            &policy(),
        )
        .unwrap_err();
    assert_eq!(error.code(), "calendar_year_not_covered");
    assert_eq!(error.field(), Some("received_at"));
}

#[test]
fn unit_without_responsible_officer_is_rejected() {
    let mut command = command(receive(Cadence::Monthly, "2026-02-12T10:00:00+08:00"));
    command.responsible_officer = None;
    let error = ExchangeRequest::default()
        .decide(command, &policy())
        .unwrap_err();
    assert_eq!(error.code(), "no_responsible_officer");
}

#[test]
fn other_officer_is_forbidden() {
    let mut command = command(receive(Cadence::Monthly, "2026-02-12T10:00:00+08:00"));
    command.responsible_officer = Some("hh9".into());
    let error = ExchangeRequest::default()
        .decide(command, &policy())
        .unwrap_err();
    assert_eq!(error.code(), "not_responsible_officer");
}

#[test]
fn item_outside_agreement_is_rejected() {
    let mut action = receive(Cadence::Monthly, "2026-02-12T10:00:00+08:00");
    if let RequestAction::Receive { items, .. } = &mut action {
        *items = vec!["criminal_record".into()];
    }
    let error = ExchangeRequest::default()
        .decide(command(action), &policy())
        .unwrap_err();
    assert_eq!(error.code(), "unknown_item");
}

#[test]
fn feedback_after_deadline_is_late() {
    let request = verified();
    let action = RequestAction::DeliverFeedback {
        delivered_at: at("2026-02-27T09:00:00+08:00"),
    };
    let event = request.decide(command(action), &policy());
    assert!(matches!(
        event,
        Ok(RequestEvent::FeedbackDelivered { on_time: false, .. })
    ));
}

#[test]
fn feedback_on_deadline_day_is_on_time() {
    let request = verified();
    let action = RequestAction::DeliverFeedback {
        delivered_at: at("2026-02-26T23:59:00+08:00"),
    };
    let event = request.decide(command(action), &policy());
    assert!(matches!(
        event,
        Ok(RequestEvent::FeedbackDelivered { on_time: true, .. })
    ));
}

#[test]
fn feedback_before_verification_conflicts() {
    let request = received(Cadence::Monthly, "2026-02-12T10:00:00+08:00");
    let action = RequestAction::DeliverFeedback {
        delivered_at: at("2026-02-13T09:00:00+08:00"),
    };
    let error = request.decide(command(action), &policy()).unwrap_err();
    assert_eq!(error.code(), "wrong_request_status");
}

#[test]
fn inspector_command_is_rejected() {
    let mut inspector = command(RequestAction::DeliverFeedback {
        delivered_at: at("2026-02-13T10:00:00+08:00"),
    });
    inspector.actor.role = Role::Inspector;
    inspector.actor.officer_id = "insp".into();
    inspector.responsible_officer = Some("insp".into());
    let error = verified()
        .decide(inspector, &policy())
        .expect_err("inspectors only read");
    assert!(
        matches!(
            error,
            ExchangeError::Forbidden {
                code: "inspector_reads_only",
                ..
            }
        ),
        "{error:?}"
    );
}
