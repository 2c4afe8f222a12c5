//! Given/when/then tests of unit verification visits.

use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;

use super::*;
use crate::application::{Actor, ApplicationError, ApplicationServices, PersonInput};
use crate::policy::{Policy, PolicyBook, Role, bundled};
use crate::record_check::input::validate_person;

type Framework = TestFramework<UnitVisit>;

fn services() -> ApplicationServices {
    let policy = Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("policy loads");
    ApplicationServices {
        policies: Arc::new(PolicyBook::new(policy)),
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

fn officer(id: &str, role: Role) -> Actor {
    Actor {
        officer_id: id.into(),
        role,
        station: "S1".into(),
    }
}

fn person(name: &str, id_number: &str) -> PersonInput {
    PersonInput {
        name: name.into(),
        id_number: id_number.into(),
    }
}

fn register(unit_type: &str, purpose: &str) -> UnitVisitCommand {
    UnitVisitCommand::Register(Box::new(RegisterVisit {
        actor: officer("hh", Role::HouseholdOfficer),
        unit: UnitInput {
            name: "county court".into(),
            unit_type: unit_type.into(),
            level: "county".into(),
        },
        staff: person("王强", "220104199001011231"),
        letter: LetterInput {
            number: "JS-2026-118".into(),
            date: date("2026-11-01"),
            issuing_unit: "county court".into(),
            scan_sha256: "ab".repeat(32),
        },
        purpose: purpose.into(),
        subject: person("李娜", "220104200002290047"),
        decision_date: date("2026-11-02"),
    }))
}

fn registered() -> UnitVisitEvent {
    let events = UnitVisit::default()
        .decide(
            register("judicial_organ", "case_handling"),
            &framework_policies(),
        )
        .expect("qualified visit registers");
    events.into_iter().next().expect("one event")
}

fn framework_policies() -> PolicyBook {
    let policy = Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("policy loads");
    PolicyBook::new(policy)
}

#[test]
fn qualified_unit_is_registered() {
    let events = UnitVisit::default()
        .decide(
            register("judicial_organ", "case_handling"),
            &framework_policies(),
        )
        .expect("registers");
    assert_eq!(events.len(), 1);
    let UnitVisitEvent::VisitRegistered { rule_id, .. } = &events[0] else {
        panic!("expected VisitRegistered, got {events:?}");
    };
    assert_eq!(rule_id, "unit_verification.organ_review_or_case");
}

#[test]
fn private_employer_is_refused() {
    let events = UnitVisit::default()
        .decide(
            register("private_employer", "employment_screening"),
            &framework_policies(),
        )
        .expect("registers and refuses");
    assert_eq!(events.len(), 2);
    let UnitVisitEvent::VisitRefused { principle, .. } = &events[1] else {
        panic!("expected VisitRefused, got {events:?}");
    };
    assert_eq!(principle, "no_provincial_requirement");
}

#[test]
fn special_industry_qualifies_only_recruiting() {
    let events = UnitVisit::default()
        .decide(
            register("special_industry", "political_review"),
            &framework_policies(),
        )
        .expect("registers and refuses");
    assert_eq!(events.len(), 2);
    let events = UnitVisit::default()
        .decide(
            register("special_industry", "recruitment"),
            &framework_policies(),
        )
        .expect("registers");
    assert_eq!(events.len(), 1);
}

#[test]
fn bad_letter_digest_is_rejected() {
    let UnitVisitCommand::Register(mut command) = register("judicial_organ", "case_handling")
    else {
        unreachable!()
    };
    command.letter.scan_sha256 = "not-a-digest".into();
    Framework::with(services())
        .given_no_previous_events()
        .when(UnitVisitCommand::Register(command))
        .then_expect_error_message(
            "letter.scan_sha256 must be the SHA-256 of the scan as 64 hexadecimal digits",
        );
}

#[test]
fn findings_require_mandatory_sources() {
    let findings = RecordVisitFindings {
        actor: officer("hh", Role::HouseholdOfficer),
        sources: vec!["national_offenders_database".into()],
        query_reference: "Q-1".into(),
        result: crate::record_check::CheckResult::NoRecord,
        disclosed: "No record found; told the staff member orally.".into(),
        checked_at: "2026-11-02T03:00:00Z".parse().expect("time"),
    };
    let error = Framework::with(services())
        .given(vec![registered()])
        .when(UnitVisitCommand::RecordFindings(findings))
        .inspect_result()
        .expect_err("rejected");
    assert!(
        error.to_string().contains("provincial_offenders_system"),
        "{error}"
    );
}

#[test]
fn staff_id_number_is_validated() {
    let UnitVisitCommand::Register(mut command) = register("judicial_organ", "case_handling")
    else {
        unreachable!()
    };
    command.staff.id_number = "220104199001011232".into();
    let error = UnitVisit::default()
        .decide(UnitVisitCommand::Register(command), &framework_policies())
        .expect_err("rejected");
    let ApplicationError::Invalid { field, .. } = &error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(field, "staff.id_number");
    assert!(validate_person(&person("王强", "220104199001011231"), "staff").is_ok());
}

#[test]
fn findings_dated_in_china_time() {
    // 16:30 UTC on 1 November is 00:30 on 2 November in China, the visit date.
    let findings = RecordVisitFindings {
        actor: officer("hh", Role::HouseholdOfficer),
        sources: vec![
            "national_offenders_database".into(),
            "provincial_offenders_system".into(),
            "drug_control_system".into(),
            "police_integrated_platform".into(),
            "intelligence_platform".into(),
        ],
        query_reference: "Q-1".into(),
        result: crate::record_check::CheckResult::NoRecord,
        disclosed: "The staff member was informed that no record was found.".into(),
        checked_at: "2026-11-01T16:30:00Z".parse().expect("time"),
    };
    let mut visit = UnitVisit::default();
    cqrs_es::Aggregate::apply(&mut visit, registered());
    let events = visit
        .decide(
            UnitVisitCommand::RecordFindings(findings.clone()),
            &framework_policies(),
        )
        .expect("00:30 in China is on the visit date");
    assert_eq!(events.len(), 1);
    let early = RecordVisitFindings {
        checked_at: "2026-11-01T15:30:00Z".parse().expect("time"),
        ..findings
    };
    let error = visit
        .decide(
            UnitVisitCommand::RecordFindings(early),
            &framework_policies(),
        )
        .expect_err("23:30 in China is the day before the visit");
    let ApplicationError::Rejected { field, .. } = &error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!(field, "checked_at");
}
