//! Given/when/then tests of every command and rejection.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;

use super::*;
use crate::policy::{Policy, PolicyBook, RequestingUnit, Role, bundled};

type Framework = TestFramework<Application>;

fn services() -> ApplicationServices {
    let policy =
        Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("bundled policy loads");
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

fn household() -> Actor {
    officer("hh", Role::HouseholdOfficer)
}

fn community() -> Actor {
    officer("cm", Role::CommunityOfficer)
}

fn leader() -> Actor {
    officer("ld", Role::StationLeader)
}

fn submit(matter: &str, circumstances: &[(&str, bool)], actor: Actor) -> SubmitApplication {
    SubmitApplication {
        actor,
        applicant: PersonInput {
            name: "张伟".into(),
            id_number: "220102199001011239".into(),
        },
        agent: None,
        unit: RequestingUnit {
            name: "Bank".into(),
            unit_type: "bank".into(),
            level: "city".into(),
            provincial_rule_requires: true,
        },
        matter: matter.into(),
        circumstances: circumstances
            .iter()
            .map(|(name, value)| (name.to_string(), *value))
            .collect::<BTreeMap<_, _>>(),
        purpose: "transfer".into(),
        station: "S1".into(),
        decision_date: date("2026-11-02"),
    }
}

/// Events of a submitted application, decided by the real screening.
fn submitted(matter: &str, circumstances: &[(&str, bool)], actor: Actor) -> Vec<ApplicationEvent> {
    let command = ApplicationCommand::Submit(Box::new(submit(matter, circumstances, actor)));
    Application::default()
        .decide(command, &services().policies)
        .expect("submission is valid")
}

fn kinship() -> Vec<ApplicationEvent> {
    submitted(
        "kinship",
        &[("same_household_register", false)],
        household(),
    )
}

fn death() -> Vec<ApplicationEvent> {
    submitted("death", &[("police_handled_event", true)], community())
}

fn refused_kinship() -> Vec<ApplicationEvent> {
    submitted("kinship", &[("same_household_register", true)], household())
}

fn evidence(source: &str, result: EvidenceResult) -> ApplicationEvent {
    ApplicationEvent::EvidenceChecked {
        source: source.into(),
        reference: "R-1".into(),
        result,
        officer: "hh".into(),
    }
}

fn signed() -> ApplicationEvent {
    ApplicationEvent::StubSigned {
        signer: Signer::Applicant,
        name: "张伟".into(),
        phone: "13904310000".into(),
    }
}

fn with(mut events: Vec<ApplicationEvent>, more: Vec<ApplicationEvent>) -> Vec<ApplicationEvent> {
    events.extend(more);
    events
}

fn error_code(given: Vec<ApplicationEvent>, command: ApplicationCommand) -> &'static str {
    let result = Framework::with(services())
        .given(given)
        .when(command)
        .inspect_result();
    result.expect_err("command is rejected").code()
}

fn issue(actor: Actor, seal: &str) -> ApplicationCommand {
    ApplicationCommand::Issue(IssueCertificate {
        actor,
        certificate_number: "S1-2026-00000001".into(),
        seal: seal.into(),
        date: date("2026-11-03"),
    })
}

#[test]
fn submission_records_screening() {
    let events = kinship();
    assert_eq!(events.len(), 2);
    let ApplicationEvent::ApplicationScreened { decision } = &events[1] else {
        panic!("second event is the screening")
    };
    assert_eq!(
        decision.outcome,
        Outcome::Issue {
            kind: "kinship".into(),
            transitional: false
        }
    );
    assert_eq!(decision.rule_id, "kinship.separate_registers");
    assert_eq!(decision.policy_version, "jilin-2015-56.1");
    assert!(!decision.in_transition_window);
    // 2026-11-02 is a Monday; three working days later is Thursday.
    assert_eq!(decision.promised_date, Some(date("2026-11-05")));
}

#[test]
fn submission_with_bad_id_is_invalid() {
    let mut command = submit(
        "kinship",
        &[("same_household_register", false)],
        household(),
    );
    command.applicant.id_number = "220102199001011235".into();
    assert_eq!(
        error_code(vec![], ApplicationCommand::Submit(Box::new(command))),
        "invalid_id_number"
    );
}

#[test]
fn applicant_as_own_agent_is_invalid() {
    let mut command = submit(
        "kinship",
        &[("same_household_register", false)],
        household(),
    );
    command.agent = Some(command.applicant.clone());
    assert_eq!(
        error_code(vec![], ApplicationCommand::Submit(Box::new(command))),
        "agent_is_applicant"
    );
}

#[test]
fn submission_of_unknown_matter_is_rejected() {
    let command = submit("horoscope", &[], household());
    assert_eq!(
        error_code(vec![], ApplicationCommand::Submit(Box::new(command))),
        "unknown_matter"
    );
}

#[test]
fn submission_without_circumstance_is_invalid() {
    let command = submit("kinship", &[], household());
    assert_eq!(
        error_code(vec![], ApplicationCommand::Submit(Box::new(command))),
        "missing_circumstance"
    );
}

#[test]
fn submission_for_other_station_is_forbidden() {
    let mut command = submit(
        "kinship",
        &[("same_household_register", false)],
        household(),
    );
    command.station = "S2".into();
    assert_eq!(
        error_code(vec![], ApplicationCommand::Submit(Box::new(command))),
        "other_station"
    );
}

#[test]
fn submission_twice_conflicts() {
    let command = submit(
        "kinship",
        &[("same_household_register", false)],
        household(),
    );
    assert_eq!(
        error_code(kinship(), ApplicationCommand::Submit(Box::new(command))),
        "already_submitted"
    );
}

#[test]
fn submission_outside_calendar_is_rejected() {
    let mut command = submit(
        "kinship",
        &[("same_household_register", false)],
        household(),
    );
    command.decision_date = date("2027-03-01");
    assert_eq!(
        error_code(vec![], ApplicationCommand::Submit(Box::new(command))),
        "date_outside_calendar"
    );
}

#[test]
fn transition_window_turns_refusal_into_issuance() {
    let mut command = submit("kinship", &[("same_household_register", true)], household());
    command.decision_date = date("2015-09-01");
    let events = Application::default()
        .decide(
            ApplicationCommand::Submit(Box::new(command)),
            &services().policies,
        )
        .expect("valid");
    let ApplicationEvent::ApplicationScreened { decision } = &events[1] else {
        panic!("screening")
    };
    assert_eq!(
        decision.outcome,
        Outcome::Issue {
            kind: "kinship".into(),
            transitional: true
        }
    );
    assert!(decision.in_transition_window);
}

#[test]
fn command_before_submission_is_not_found() {
    let command = ApplicationCommand::Withdraw(WithdrawApplication {
        actor: household(),
        reason: "no longer needed".into(),
        date: date("2026-11-02"),
    });
    assert_eq!(error_code(vec![], command), "application_not_found");
}

#[test]
fn refusal_with_explanation_closes() {
    let command = ApplicationCommand::Refuse(RefuseApplication {
        actor: household(),
        explanation: "户口簿已载明亲属关系，请向银行出示户口簿。".into(),
        referral: "the household register".into(),
        date: date("2026-11-02"),
    });
    let events = Framework::with(services())
        .given(refused_kinship())
        .when(command)
        .inspect_result()
        .expect("refused");
    assert!(
        matches!(&events[0], ApplicationEvent::ApplicationRefused { principle, cannot_issue: false, .. } if principle == "legal_document")
    );
}

#[test]
fn refusal_without_explanation_is_rejected() {
    let command = ApplicationCommand::Refuse(RefuseApplication {
        actor: household(),
        explanation: " ".into(),
        referral: "register".into(),
        date: date("2026-11-02"),
    });
    assert_eq!(
        error_code(refused_kinship(), command),
        "explanation_required"
    );
}

#[test]
fn refusal_without_referral_is_invalid() {
    let command = ApplicationCommand::Refuse(RefuseApplication {
        actor: household(),
        explanation: "户口簿已载明亲属关系，请出示户口簿。".into(),
        referral: "".into(),
        date: date("2026-11-02"),
    });
    assert_eq!(error_code(refused_kinship(), command), "missing_field");
}

#[test]
fn refusal_of_accepted_application_conflicts() {
    let command = ApplicationCommand::Refuse(RefuseApplication {
        actor: household(),
        explanation: "户口簿已载明亲属关系，请出示户口簿。".into(),
        referral: "register".into(),
        date: date("2026-11-02"),
    });
    assert_eq!(error_code(kinship(), command), "not_refusable");
}

#[test]
fn override_needs_justification() {
    let command = ApplicationCommand::OverrideScreening(OverrideScreening {
        actor: household(),
        outcome: OverrideOutcome::Issue {
            kind: "kinship".into(),
        },
        justification: "".into(),
    });
    assert_eq!(
        error_code(refused_kinship(), command),
        "justification_required"
    );
}

#[test]
fn override_with_justification_is_recorded() {
    let command = ApplicationCommand::OverrideScreening(OverrideScreening {
        actor: household(),
        outcome: OverrideOutcome::Issue {
            kind: "kinship".into(),
        },
        justification: "The household register was lost in a fire.".into(),
    });
    let events = Framework::with(services())
        .given(refused_kinship())
        .when(command)
        .inspect_result()
        .expect("overridden");
    assert!(matches!(
        &events[0],
        ApplicationEvent::ScreeningOverridden {
            outcome: Outcome::Issue { .. },
            ..
        }
    ));
    // Decided on Monday 2026-11-02; a kinship certificate is due three working days later.
    let ApplicationEvent::ScreeningOverridden { promised_date, .. } = &events[0] else {
        panic!("an override is recorded: {events:?}");
    };
    assert_eq!(*promised_date, Some(date("2026-11-05")));
    let mut application = Application::default();
    for event in with(refused_kinship(), events) {
        application.apply(event);
    }
    assert_eq!(application.promised_date, Some(date("2026-11-05")));
}

#[test]
fn override_to_same_outcome_is_rejected() {
    let command = ApplicationCommand::OverrideScreening(OverrideScreening {
        actor: household(),
        outcome: OverrideOutcome::Issue {
            kind: "kinship".into(),
        },
        justification: "The archives show the relation clearly.".into(),
    });
    assert_eq!(error_code(kinship(), command), "override_unchanged");
}

#[test]
fn override_to_unknown_principle_is_rejected() {
    let command = ApplicationCommand::OverrideScreening(OverrideScreening {
        actor: household(),
        outcome: OverrideOutcome::Refuse {
            principle: "whim".into(),
            referral: "nowhere".into(),
        },
        justification: "The officer does not like the request.".into(),
    });
    assert_eq!(error_code(kinship(), command), "unknown_principle");
}

#[test]
fn evidence_from_allowed_source_is_recorded() {
    let command = ApplicationCommand::RecordEvidence(RecordEvidence {
        actor: household(),
        source: "household_archives".into(),
        reference: "A-7".into(),
        result: EvidenceResult::Confirmed,
    });
    let events = Framework::with(services())
        .given(kinship())
        .when(command)
        .inspect_result()
        .expect("recorded");
    assert_eq!(events.len(), 1);
}

#[test]
fn evidence_from_other_source_is_rejected() {
    let command = ApplicationCommand::RecordEvidence(RecordEvidence {
        actor: household(),
        source: "station_dispatch_records".into(),
        reference: "D-1".into(),
        result: EvidenceResult::Confirmed,
    });
    assert_eq!(error_code(kinship(), command), "source_not_allowed");
}

#[test]
fn signature_with_bad_phone_is_invalid() {
    let command = ApplicationCommand::SignStub(SignStub {
        actor: household(),
        signer: Signer::Applicant,
        name: "张伟".into(),
        phone: "12345".into(),
    });
    assert_eq!(error_code(kinship(), command), "invalid_phone");
}

#[test]
fn signature_by_absent_agent_is_rejected() {
    let command = ApplicationCommand::SignStub(SignStub {
        actor: household(),
        signer: Signer::Agent,
        name: "李四".into(),
        phone: "13904310000".into(),
    });
    assert_eq!(error_code(kinship(), command), "no_agent");
}

#[test]
fn signature_with_landline_is_recorded() {
    let command = ApplicationCommand::SignStub(SignStub {
        actor: household(),
        signer: Signer::Applicant,
        name: "张伟".into(),
        phone: "0431-88886666".into(),
    });
    let events = Framework::with(services())
        .given(kinship())
        .when(command)
        .inspect_result()
        .expect("signed");
    assert_eq!(
        events,
        vec![ApplicationEvent::StubSigned {
            signer: Signer::Applicant,
            name: "张伟".into(),
            phone: "0431-88886666".into()
        }]
    );
}

#[test]
fn approval_by_non_leader_is_forbidden() {
    let given = with(
        death(),
        vec![evidence(
            "station_dispatch_records",
            EvidenceResult::Confirmed,
        )],
    );
    let command = ApplicationCommand::Approve(ApproveApplication {
        actor: household(),
        date: date("2026-11-03"),
    });
    assert_eq!(error_code(given, command), "wrong_role");
}

#[test]
fn approval_by_handler_is_rejected() {
    let given = with(
        submitted("death", &[("police_handled_event", true)], leader()),
        vec![evidence(
            "station_dispatch_records",
            EvidenceResult::Confirmed,
        )],
    );
    let command = ApplicationCommand::Approve(ApproveApplication {
        actor: leader(),
        date: date("2026-11-03"),
    });
    assert_eq!(error_code(given, command), "approver_is_handler");
}

#[test]
fn approval_without_evidence_is_rejected() {
    let command = ApplicationCommand::Approve(ApproveApplication {
        actor: leader(),
        date: date("2026-11-03"),
    });
    assert_eq!(error_code(death(), command), "evidence_missing");
}

#[test]
fn approval_not_required_is_rejected() {
    let command = ApplicationCommand::Approve(ApproveApplication {
        actor: leader(),
        date: date("2026-11-03"),
    });
    assert_eq!(error_code(kinship(), command), "approval_not_required");
}

#[test]
fn approval_from_other_station_is_forbidden() {
    let stranger = Actor {
        officer_id: "x".into(),
        role: Role::StationLeader,
        station: "S9".into(),
    };
    let command = ApplicationCommand::Approve(ApproveApplication {
        actor: stranger,
        date: date("2026-11-03"),
    });
    assert_eq!(error_code(death(), command), "other_station");
}

#[test]
fn issuance_with_everything_is_recorded() {
    let given = with(
        death(),
        vec![
            evidence("police_integrated_platform", EvidenceResult::Confirmed),
            signed(),
            ApplicationEvent::LeaderApproved {
                leader: "ld".into(),
                approved_on: date("2026-11-03"),
            },
        ],
    );
    let events = Framework::with(services())
        .given(given)
        .when(issue(community(), "official_seal"))
        .inspect_result()
        .expect("issued");
    assert!(
        matches!(&events[0], ApplicationEvent::CertificateIssued { kind, seal, .. } if kind == "abnormal_death" && seal == "official_seal")
    );
}

#[test]
fn issuance_by_wrong_role_is_forbidden() {
    let given = with(
        kinship(),
        vec![
            evidence("household_archives", EvidenceResult::Confirmed),
            signed(),
        ],
    );
    assert_eq!(
        error_code(given, issue(community(), "household_seal")),
        "wrong_role"
    );
}

#[test]
fn issuance_with_wrong_seal_is_rejected() {
    let given = with(
        kinship(),
        vec![
            evidence("household_archives", EvidenceResult::Confirmed),
            signed(),
        ],
    );
    assert_eq!(
        error_code(given, issue(household(), "official_seal")),
        "wrong_seal"
    );
}

#[test]
fn issuance_without_evidence_is_rejected() {
    assert_eq!(
        error_code(
            with(kinship(), vec![signed()]),
            issue(household(), "household_seal")
        ),
        "evidence_missing"
    );
}

#[test]
fn issuance_against_contradicting_evidence_is_rejected() {
    let given = with(
        kinship(),
        vec![
            evidence("household_archives", EvidenceResult::Confirmed),
            evidence("population_information_system", EvidenceResult::Contradicts),
            signed(),
        ],
    );
    assert_eq!(
        error_code(given, issue(household(), "household_seal")),
        "evidence_contradicts"
    );
}

#[test]
fn issuance_without_signature_is_rejected() {
    let given = with(
        kinship(),
        vec![evidence("household_archives", EvidenceResult::Confirmed)],
    );
    assert_eq!(
        error_code(given, issue(household(), "household_seal")),
        "signature_missing"
    );
}

#[test]
fn issuance_without_approval_is_rejected() {
    let given = with(
        death(),
        vec![
            evidence("police_integrated_platform", EvidenceResult::Confirmed),
            signed(),
        ],
    );
    assert_eq!(
        error_code(given, issue(community(), "official_seal")),
        "approval_missing"
    );
}

#[test]
fn issuance_of_refused_application_conflicts() {
    assert_eq!(
        error_code(refused_kinship(), issue(household(), "household_seal")),
        "not_accepted"
    );
}

#[test]
fn issuance_before_decision_date_is_rejected() {
    let given = with(
        kinship(),
        vec![
            evidence("household_archives", EvidenceResult::Confirmed),
            signed(),
        ],
    );
    let command = ApplicationCommand::Issue(IssueCertificate {
        actor: household(),
        certificate_number: "N".into(),
        seal: "household_seal".into(),
        date: date("2026-10-30"),
    });
    assert_eq!(error_code(given, command), "date_before_decision");
}

#[test]
fn withdrawal_closes_and_blocks_issuance() {
    let withdrawn = ApplicationEvent::ApplicationWithdrawn {
        reason: "found the ID card".into(),
        officer: "hh".into(),
        withdrawn_on: date("2026-11-02"),
    };
    let given = with(
        kinship(),
        vec![
            evidence("household_archives", EvidenceResult::Confirmed),
            signed(),
            withdrawn,
        ],
    );
    assert_eq!(
        error_code(given, issue(household(), "household_seal")),
        "application_closed"
    );
}

#[test]
fn withdrawal_without_reason_is_invalid() {
    let command = ApplicationCommand::Withdraw(WithdrawApplication {
        actor: household(),
        reason: "".into(),
        date: date("2026-11-02"),
    });
    assert_eq!(error_code(kinship(), command), "missing_field");
}

#[test]
fn referred_application_is_closed() {
    let mut command = submit("criminal_record", &[], household());
    command.unit.unit_type = "special_industry".into();
    let events = Application::default()
        .decide(
            ApplicationCommand::Submit(Box::new(command)),
            &services().policies,
        )
        .expect("valid");
    let withdraw = ApplicationCommand::Withdraw(WithdrawApplication {
        actor: household(),
        reason: "no".into(),
        date: date("2026-11-02"),
    });
    assert_eq!(error_code(events, withdraw), "application_closed");
}
