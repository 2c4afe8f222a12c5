//! Given/when/then tests of the no-criminal-record application.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::application::{Actor, ApplicationError, ApplicationServices, PersonInput};
use crate::policy::{Policy, PolicyBook, Role, bundled};

type Framework = TestFramework<RecordCheck>;

fn services_with(document: &str) -> ApplicationServices {
    let policy = Policy::load(document, bundled::CALENDAR_CSV).expect("policy loads");
    ApplicationServices {
        policies: Arc::new(PolicyBook::new(policy)),
    }
}

fn services() -> ApplicationServices {
    services_with(bundled::DOCUMENT)
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

fn time(text: &str) -> DateTime<Utc> {
    text.parse().expect("test time")
}

fn officer(id: &str, role: Role) -> Actor {
    Actor {
        officer_id: id.into(),
        role,
        station: "S1".into(),
    }
}

fn submitted(policy_version: &str) -> RecordCheckEvent {
    let applicant = PersonInput {
        name: "李娜".into(),
        id_number: "220104200002290047".into(),
    };
    let applicant = input::validate_person(&applicant, "applicant").expect("valid person");
    RecordCheckEvent::RecordCheckSubmitted {
        applicant,
        agent: None,
        purpose: "going_abroad".into(),
        destination: "consulate".into(),
        station: "S1".into(),
        handling_officer: "hh".into(),
        decision_date: date("2026-11-02"),
        policy_version: policy_version.into(),
        promised_date: date("2026-11-05"),
    }
}

fn check(source: &str, result: CheckResult) -> RecordCheckCommand {
    RecordCheckCommand::CheckSource(CheckSource {
        actor: officer("hh", Role::HouseholdOfficer),
        source: source.into(),
        query_reference: "Q-1".into(),
        result,
        checked_at: time("2026-11-03T02:00:00Z"),
    })
}

fn checked(source: &str, counts_as_record: bool) -> RecordCheckEvent {
    RecordCheckEvent::SourceChecked {
        source: source.into(),
        query_reference: "Q-1".into(),
        result: CheckResult::NoRecord,
        counts_as_record,
        officer: "hh".into(),
        checked_at: time("2026-11-03T02:00:00Z"),
    }
}

const VERSION: &str = "jilin-2015-56.1";

#[test]
fn administrative_violation_reads_as_no_record() {
    Framework::with(services())
        .given(vec![submitted(VERSION)])
        .when(check(
            "drug_control_system",
            CheckResult::AdministrativeViolation,
        ))
        .then_expect_events(vec![RecordCheckEvent::SourceChecked {
            source: "drug_control_system".into(),
            query_reference: "Q-1".into(),
            result: CheckResult::AdministrativeViolation,
            counts_as_record: false,
            officer: "hh".into(),
            checked_at: time("2026-11-03T02:00:00Z"),
        }]);
}

#[test]
fn policy_version_can_count_violations() {
    let document = bundled::DOCUMENT
        .replacen(
            "administrative_violations_are_records = false",
            "administrative_violations_are_records = true",
            1,
        )
        .replacen("version = \"jilin-2015-56.1\"", "version = \"strict\"", 1);
    Framework::with(services_with(&document))
        .given(vec![submitted("strict")])
        .when(check(
            "drug_control_system",
            CheckResult::AdministrativeViolation,
        ))
        .then_expect_events(vec![RecordCheckEvent::SourceChecked {
            source: "drug_control_system".into(),
            query_reference: "Q-1".into(),
            result: CheckResult::AdministrativeViolation,
            counts_as_record: true,
            officer: "hh".into(),
            checked_at: time("2026-11-03T02:00:00Z"),
        }]);
}

#[test]
fn sealed_juvenile_record_reads_as_no_record() {
    Framework::with(services())
        .given(vec![submitted(VERSION)])
        .when(check(
            "intelligence_platform",
            CheckResult::SealedJuvenileRecord,
        ))
        .then_expect_events(vec![RecordCheckEvent::SourceChecked {
            source: "intelligence_platform".into(),
            query_reference: "Q-1".into(),
            result: CheckResult::SealedJuvenileRecord,
            counts_as_record: false,
            officer: "hh".into(),
            checked_at: time("2026-11-03T02:00:00Z"),
        }]);
}

fn all_mandatory_clear() -> Vec<RecordCheckEvent> {
    let mut events = vec![submitted(VERSION)];
    for source in [
        "national_offenders_database",
        "provincial_offenders_system",
        "drug_control_system",
        "police_integrated_platform",
        "intelligence_platform",
    ] {
        events.push(checked(source, false));
    }
    events
}

#[test]
fn handler_cannot_approve() {
    let approve = RecordCheckCommand::Approve(ApproveRecordCheck {
        actor: officer("hh", Role::StationLeader),
        date: date("2026-11-04"),
    });
    Framework::with(services())
        .given(all_mandatory_clear())
        .when(approve)
        .then_expect_error_message(
            "the approver handles this application; another station leader must approve",
        );
}

#[test]
fn inspector_cannot_approve() {
    let approve = RecordCheckCommand::Approve(ApproveRecordCheck {
        actor: officer("dc", Role::Inspector),
        date: date("2026-11-04"),
    });
    Framework::with(services())
        .given(all_mandatory_clear())
        .when(approve)
        .then_expect_error_message(
            "inspectors and provincial officers read supervision records and do not act on record checks; use an officer of the station",
        );
}

#[test]
fn recorded_finding_blocks_approval() {
    let mut given = all_mandatory_clear();
    given.push(checked("paper_archives", true));
    let approve = RecordCheckCommand::Approve(ApproveRecordCheck {
        actor: officer("ld", Role::StationLeader),
        date: date("2026-11-04"),
    });
    Framework::with(services())
        .given(given)
        .when(approve)
        .then_expect_error_message(
            "a check found a record; this application can only be refused, never issued",
        );
}

#[test]
fn objection_overdue_only_after_due_date() {
    let objection = Objection {
        reason: "not me".into(),
        filed_on: date("2026-11-04"),
        due_on: date("2026-11-25"),
        extended: false,
        extension_reason: None,
        decision: None,
        answered_on: None,
        answered_late: false,
    };
    assert!(!objection.is_overdue(date("2026-11-25")));
    assert!(objection.is_overdue(date("2026-11-26")));
    let answered = Objection {
        answered_on: Some(date("2026-11-20")),
        decision: Some(ObjectionDecision::Upheld),
        ..objection
    };
    assert!(!answered.is_overdue(date("2026-12-30")));
}

#[test]
fn refusal_text_hides_record_details() {
    let rules = &services().policies.current().criminal_records.clone();
    let cases = [
        "The national_offenders_database lists a conviction.",
        "A SEALED_JUVENILE_RECORD was found in the archive.",
        "全国违法犯罪人员信息资源库 shows an entry for you.",
    ];
    for text in cases {
        let error = handle::check_no_record_details(text, "explanation", rules)
            .expect_err("text names a detail");
        let ApplicationError::Rejected { code, field, .. } = &error else {
            panic!("expected Rejected for {text:?}, got {error:?}");
        };
        assert_eq!(*code, "record_details_disclosed", "{text}");
        assert_eq!(field, "explanation", "{text}");
    }
    let general =
        "The investigation does not allow this certificate; you may object at the station.";
    assert!(handle::check_no_record_details(general, "explanation", rules).is_ok());
}
