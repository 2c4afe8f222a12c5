//! Given/when/then tests of inspections: each step, and each step refused with nothing recorded.

use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;

use super::*;
use crate::policy::{Policy, PolicyBook, bundled};

type Framework = TestFramework<Inspection>;

fn services() -> ApplicationServices {
    let policy = Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("policy loads");
    ApplicationServices {
        policies: Arc::new(PolicyBook::new(policy)),
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

fn officer(id: &str, role: Role, station: &str) -> Actor {
    Actor {
        officer_id: id.into(),
        role,
        station: station.into(),
    }
}

fn inspector() -> Actor {
    officer("dc1", Role::Inspector, "S9")
}

fn leader() -> Actor {
    officer("ld1", Role::StationLeader, "S1")
}

fn opened() -> InspectionEvent {
    InspectionEvent::InspectionOpened {
        body: InspectingBody::Inspectorate,
        target_kind: TargetKind::Station,
        target_id: "S1".into(),
        station: "S1".into(),
        inspector: "dc1".into(),
        reason: "quarterly inspection of refusals".into(),
        opened_on: date("2026-11-02"),
    }
}

fn finding() -> InspectionEvent {
    InspectionEvent::FindingRecorded {
        number: 1,
        category: Category::Inaction,
        rule: Some("refused_issuable".into()),
        case_id: Some("app-1".into()),
        officer: Some("hh1".into()),
        description: "refused a kinship certificate the catalogue issues".into(),
        inspector: "dc1".into(),
        found_on: date("2026-11-03"),
    }
}

fn required() -> InspectionEvent {
    InspectionEvent::RectificationRequired {
        round: 1,
        requirement: "retrain the household officers on the catalogue".into(),
        inspector: "dc1".into(),
        required_on: date("2026-11-04"),
        due_on: date("2026-11-30"),
    }
}

fn reported() -> InspectionEvent {
    InspectionEvent::RectificationReported {
        round: 1,
        report: "training held on 2026-11-10 for every officer".into(),
        leader: "ld1".into(),
        reported_on: date("2026-11-10"),
    }
}

fn open_command(actor: Actor) -> InspectionCommand {
    InspectionCommand::Open(OpenInspection {
        actor,
        body: InspectingBody::Inspectorate,
        target_kind: TargetKind::Station,
        target_id: " S1 ".into(),
        station: "S1".into(),
        reason: "quarterly inspection of refusals".into(),
        date: date("2026-11-02"),
    })
}

fn rejection_code(result: Result<Vec<InspectionEvent>>) -> &'static str {
    match result {
        Err(error) => error.code(),
        Ok(events) => panic!("expected a rejection, got {events:?}"),
    }
}

fn decide(given: Vec<InspectionEvent>, command: InspectionCommand) -> Result<Vec<InspectionEvent>> {
    let mut inspection = Inspection::default();
    for event in given {
        inspection.apply(event);
    }
    inspection.decide(command)
}

#[test]
fn inspector_opens_inspection() {
    Framework::with(services())
        .given_no_previous_events()
        .when(open_command(inspector()))
        .then_expect_events(vec![opened()]);
}

#[test]
fn only_inspectors_open_or_decide() {
    for role in [
        Role::StationLeader,
        Role::HouseholdOfficer,
        Role::ProvincialOfficer,
    ] {
        let code = rejection_code(decide(vec![], open_command(officer("x", role, "S1"))));
        assert_eq!(code, "inspectors_only");
    }
    let command = InspectionCommand::PublishNotice(PublishNotice {
        actor: leader(),
        text: "the station refused issuable kinship certificates".into(),
        date: date("2026-11-05"),
        audience: None,
    });
    assert_eq!(
        rejection_code(decide(vec![opened(), finding()], command)),
        "inspectors_only"
    );
}

#[test]
fn opening_needs_a_target_and_a_written_reason() {
    let mut command = OpenInspection {
        actor: inspector(),
        body: InspectingBody::Discipline,
        target_kind: TargetKind::Officer,
        target_id: "  ".into(),
        station: "S1".into(),
        reason: "complaint received".into(),
        date: date("2026-11-02"),
    };
    let result = decide(vec![], InspectionCommand::Open(command.clone()));
    assert_eq!(rejection_code(result), "missing_field");
    command.target_id = "hh1".into();
    command.reason = "short".into();
    let result = decide(vec![], InspectionCommand::Open(command.clone()));
    assert_eq!(rejection_code(result), "text_too_short");
    let result = decide(vec![opened()], InspectionCommand::Open(command));
    assert_eq!(rejection_code(result), "already_opened");
}

#[test]
fn findings_are_numbered_and_dated_after_the_opening() {
    let command = |day: &str| {
        InspectionCommand::RecordFinding(RecordFinding {
            actor: inspector(),
            category: Category::Misconduct,
            rule: Some(" ".into()),
            case_id: None,
            officer: Some("hh2".into()),
            officer_station: Some("S1".into()),
            description: "issued a residence certificate without evidence".into(),
            date: date(day),
        })
    };
    let events = decide(vec![opened(), finding()], command("2026-11-03")).expect("recorded");
    assert_eq!(
        events,
        vec![InspectionEvent::FindingRecorded {
            number: 2,
            category: Category::Misconduct,
            rule: None,
            case_id: None,
            officer: Some("hh2".into()),
            description: "issued a residence certificate without evidence".into(),
            inspector: "dc1".into(),
            found_on: date("2026-11-03"),
        }]
    );
    let result = decide(vec![opened()], command("2026-11-01"));
    assert_eq!(rejection_code(result), "date_out_of_order");
}

#[test]
fn notice_and_rectification_need_findings() {
    let notice = InspectionCommand::PublishNotice(PublishNotice {
        actor: inspector(),
        text: "station S1 refused certificates the catalogue issues".into(),
        date: date("2026-11-05"),
        audience: None,
    });
    assert_eq!(
        rejection_code(decide(vec![opened()], notice.clone())),
        "no_findings"
    );
    let events = decide(vec![opened(), finding()], notice.clone()).expect("published");
    assert!(matches!(
        events[..],
        [InspectionEvent::NoticePublished { audience: None, .. }]
    ));
    // A notice addressed to the inspected station is recorded like one with no area; one to
    // its county keeps the area.
    let InspectionCommand::PublishNotice(mut addressed) = notice else {
        unreachable!("a notice command")
    };
    addressed.audience = Some(Audience {
        level: AreaLevel::Station,
        code: "S1".into(),
    });
    let events = decide(
        vec![opened(), finding()],
        InspectionCommand::PublishNotice(addressed.clone()),
    )
    .expect("published");
    assert!(matches!(
        events[..],
        [InspectionEvent::NoticePublished { audience: None, .. }]
    ));
    let county = Audience {
        level: AreaLevel::County,
        code: "K1".into(),
    };
    addressed.audience = Some(county.clone());
    let events = decide(
        vec![opened(), finding()],
        InspectionCommand::PublishNotice(addressed),
    )
    .expect("published");
    let [InspectionEvent::NoticePublished { audience, .. }] = &events[..] else {
        panic!("one notice: {events:?}");
    };
    assert_eq!(audience.as_ref(), Some(&county));

    let require = |due: &str| {
        InspectionCommand::RequireRectification(RequireRectification {
            actor: inspector(),
            requirement: "retrain the household officers on the catalogue".into(),
            due_on: date(due),
            date: date("2026-11-04"),
        })
    };
    assert_eq!(
        rejection_code(decide(vec![opened()], require("2026-11-30"))),
        "no_findings"
    );
    let events = decide(vec![opened(), finding()], require("2026-11-30")).expect("required");
    assert_eq!(events, vec![required()]);
    for due in ["2026-11-04", "2027-11-06"] {
        let result = decide(vec![opened(), finding()], require(due));
        assert_eq!(rejection_code(result), "due_date_out_of_range", "due {due}");
    }
    let result = decide(vec![opened(), finding(), required()], require("2026-11-30"));
    assert_eq!(rejection_code(result), "wrong_stage");
}

#[test]
fn rectification_reported_by_station_leader() {
    let report = |actor: Actor, day: &str| {
        InspectionCommand::ReportRectification(ReportRectification {
            actor,
            report: "training held on 2026-11-10 for every officer".into(),
            date: date(day),
        })
    };
    let given = vec![opened(), finding(), required()];
    assert_eq!(
        decide(given.clone(), report(leader(), "2026-11-10")).expect("reported"),
        vec![reported()]
    );
    let other_station = officer("ld2", Role::StationLeader, "S2");
    let result = decide(given.clone(), report(other_station, "2026-11-10"));
    assert_eq!(rejection_code(result), "station_leader_only");
    let officer_of_station = officer("hh1", Role::HouseholdOfficer, "S1");
    let result = decide(given.clone(), report(officer_of_station, "2026-11-10"));
    assert_eq!(rejection_code(result), "station_leader_only");
    let result = decide(given, report(leader(), "2026-11-03"));
    assert_eq!(rejection_code(result), "date_out_of_order");
    let result = decide(vec![opened(), finding()], report(leader(), "2026-11-10"));
    assert_eq!(rejection_code(result), "wrong_stage");
    let result = decide(vec![], report(leader(), "2026-11-10"));
    assert_eq!(result, Err(ApplicationError::NotFound));
}

#[test]
fn rejected_rectification_opens_next_round() {
    let verify = |accepted: bool, next: Option<&str>| {
        InspectionCommand::VerifyRectification(VerifyRectification {
            actor: inspector(),
            accepted,
            note: "checked the training attendance sheets".into(),
            next_due_on: next.map(date),
            date: date("2026-11-12"),
        })
    };
    let given = vec![opened(), finding(), required(), reported()];
    assert_eq!(
        rejection_code(decide(given.clone(), verify(false, None))),
        "missing_field"
    );
    assert_eq!(
        rejection_code(decide(given.clone(), verify(true, Some("2026-12-20")))),
        "unexpected_field"
    );
    let rejected = decide(given.clone(), verify(false, Some("2026-12-20"))).expect("verified");
    let mut inspection = Inspection::default();
    for event in given.iter().cloned().chain(rejected) {
        inspection.apply(event);
    }
    assert_eq!(inspection.status, InspectionStatus::RectificationRequired);
    assert_eq!(inspection.rectifications.len(), 2);
    assert_eq!(inspection.rectifications[0].accepted, Some(false));
    assert_eq!(inspection.rectifications[1].round, 2);
    assert_eq!(inspection.rectifications[1].due_on, date("2026-12-20"));

    let accepted = decide(given.clone(), verify(true, None)).expect("verified");
    let mut inspection = Inspection::default();
    for event in given.into_iter().chain(accepted) {
        inspection.apply(event);
    }
    assert_eq!(inspection.status, InspectionStatus::Open);
    assert_eq!(inspection.rectifications[0].accepted, Some(true));
}

#[test]
fn closing_holds_officers_accountable_only_on_findings() {
    let close = |outcome: Outcome, officers: &[&str]| {
        InspectionCommand::Close(CloseInspection {
            actor: inspector(),
            outcome,
            officers: officers.iter().map(|o| o.to_string()).collect(),
            reason: "the refusals were against the catalogue".into(),
            date: date("2026-11-20"),
        })
    };
    let result = decide(vec![opened()], close(Outcome::Admonishment, &["hh1"]));
    assert_eq!(rejection_code(result), "no_findings");
    let result = decide(vec![opened(), finding()], close(Outcome::Admonishment, &[]));
    assert_eq!(rejection_code(result), "missing_field");
    let result = decide(vec![opened()], close(Outcome::NoAccountability, &["hh1"]));
    assert_eq!(rejection_code(result), "unexpected_field");
    let pending = vec![opened(), finding(), required()];
    let result = decide(pending, close(Outcome::Admonishment, &["hh1"]));
    assert_eq!(rejection_code(result), "rectification_pending");

    let result = decide(
        vec![opened(), finding()],
        close(Outcome::Admonishment, &["hh1", "hh2"]),
    );
    assert_eq!(rejection_code(result), "officer_not_in_findings");
    let events = decide(
        vec![opened(), finding()],
        close(Outcome::Admonishment, &["hh1", " hh1"]),
    )
    .expect("closed");
    let closed = InspectionEvent::InspectionClosed {
        outcome: Outcome::Admonishment,
        officers: vec!["hh1".into()],
        reason: "the refusals were against the catalogue".into(),
        inspector: "dc1".into(),
        closed_on: date("2026-11-20"),
    };
    assert_eq!(events, vec![closed.clone()]);
    let after = decide(
        vec![opened(), finding(), closed],
        close(Outcome::NoAccountability, &[]),
    );
    assert_eq!(rejection_code(after), "inspection_closed");
}

#[test]
fn steps_on_an_unopened_inspection_are_not_found() {
    let command = InspectionCommand::PublishNotice(PublishNotice {
        actor: inspector(),
        text: "station S1 refused certificates the catalogue issues".into(),
        date: date("2026-11-05"),
        audience: None,
    });
    assert_eq!(decide(vec![], command), Err(ApplicationError::NotFound));
}

#[test]
fn steps_follow_the_previous_step_and_station() {
    let notice = InspectionCommand::PublishNotice(PublishNotice {
        actor: inspector(),
        text: "station S1 refused certificates the catalogue issues".into(),
        date: date("2026-11-02"),
        audience: None,
    });
    let result = decide(vec![opened(), finding()], notice);
    assert_eq!(rejection_code(result), "date_out_of_order");
    let other_station = InspectionCommand::RecordFinding(RecordFinding {
        actor: inspector(),
        category: Category::Inaction,
        rule: None,
        case_id: None,
        officer: Some("hh9".into()),
        officer_station: Some("S2".into()),
        description: "refused a kinship certificate the catalogue issues".into(),
        date: date("2026-11-03"),
    });
    let result = decide(vec![opened()], other_station);
    assert_eq!(rejection_code(result), "officer_of_other_station");
}
