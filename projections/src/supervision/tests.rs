//! Detector tests: for each rule, a history that triggers it and one that must not.

use aggregates::application::{ApplicationEvent, EvidenceResult, Person, Signer};
use aggregates::application_reads::{ApplicationReadEvent, ReadView};
use aggregates::exchange::request::{AgreementTerms, BatchSummary, RequestEvent};
use aggregates::id_number::IdNumber;
use aggregates::policy::Role;
use aggregates::policy::{Circumstances, Outcome, Policy, PolicyBook, RequestingUnit, bundled};
use aggregates::record_check::{CheckResult, ObjectionDecision, RecordCheckEvent};
use aggregates::unit_visit::{IntroductionLetter, Unit, UnitVisitEvent};
use chrono::{DateTime, FixedOffset, NaiveDate};

use super::detectors::*;

fn policies() -> PolicyBook {
    PolicyBook::new(Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("policy loads"))
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

/// Replays application events in order, as officer roles recorded in the metadata, and
/// returns every finding and cleared rule.
struct Case {
    policies: PolicyBook,
    state: ApplicationCase,
    sequence: i64,
    findings: Vec<Finding>,
    cleared: Vec<Rule>,
}

impl Case {
    fn new() -> Case {
        Case {
            policies: policies(),
            state: ApplicationCase::default(),
            sequence: 0,
            findings: Vec::new(),
            cleared: Vec::new(),
        }
    }

    fn apply(&mut self, event: ApplicationEvent, role: &str) -> &mut Case {
        self.sequence += 1;
        let event_type = format!("{event:?}")
            .split([' ', '{'])
            .next()
            .unwrap_or_default()
            .to_string();
        let context = EventContext {
            at: EventRef {
                aggregate_type: "application".into(),
                aggregate_id: "A1".into(),
                sequence: self.sequence,
                global_position: 100 + self.sequence,
                event_type,
            },
            actor_role: Some(role.to_string()),
            recorded_on: date("2026-11-02"),
        };
        let detected = detect_application(&mut self.state, event, &context, &self.policies);
        self.findings.extend(detected.findings);
        self.cleared.extend(detected.cleared);
        self
    }

    /// Records a read of the application's personal data, on its own read chain.
    fn read(&mut self, reader: &str, role: Role, station: &str, purpose: &str) -> &mut Case {
        let context = EventContext {
            at: EventRef {
                aggregate_type: "application_reads".into(),
                aggregate_id: "A1".into(),
                sequence: 1,
                global_position: 200 + self.sequence,
                event_type: "ApplicationRead".into(),
            },
            actor_role: Some(role.code().to_string()),
            recorded_on: date("2026-11-03"),
        };
        let event = ApplicationReadEvent::ApplicationRead {
            reader: reader.into(),
            role,
            station: station.into(),
            // The detector trusts the application's own events, not the station a read claims.
            case_station: station.into(),
            view: ReadView::History,
            purpose: purpose.into(),
        };
        let detected = detect_application_read(&self.state, event, &context);
        self.findings.extend(detected.findings);
        self
    }

    /// Submits a kinship request as officer `hh`; `same_register` makes screening refuse it.
    fn submitted(same_register: bool) -> Case {
        Case::submitted_matter("kinship", "same_household_register", same_register)
    }

    fn submitted_matter(matter: &str, circumstance: &str, value: bool) -> Case {
        Case::submitted_on(matter, circumstance, value, "2026-11-02")
    }

    /// Submits a request decided on `decided`.
    fn submitted_on(matter: &str, circumstance: &str, value: bool, decided: &str) -> Case {
        let mut case = Case::new();
        let unit = RequestingUnit {
            name: "Bank of China".into(),
            unit_type: "bank".into(),
            level: "city".into(),
            provincial_rule_requires: true,
        };
        let circumstances = Circumstances::from([(circumstance.to_string(), value)]);
        let decision = case
            .policies
            .current()
            .screen(matter, &unit, &circumstances, date(decided))
            .expect("screening decides");
        let applicant = Person {
            name: "张伟".into(),
            id_number: IdNumber::parse("220102199001011239").expect("valid id"),
        };
        case.apply(
            ApplicationEvent::ApplicationSubmitted {
                applicant,
                agent: None,
                unit,
                matter: matter.into(),
                circumstances,
                purpose: "transfer".into(),
                station: "S1".into(),
                decision_date: date(decided),
                handling_officer: "hh".into(),
            },
            "household_officer",
        );
        case.apply(
            ApplicationEvent::ApplicationScreened { decision },
            "household_officer",
        );
        case
    }

    fn rules(&self) -> Vec<Rule> {
        self.findings.iter().map(|finding| finding.rule).collect()
    }

    fn finding(&self, rule: Rule) -> &Finding {
        self.findings
            .iter()
            .find(|finding| finding.rule == rule)
            .unwrap_or_else(|| panic!("no {rule:?} finding among {:?}", self.rules()))
    }
}

fn refusal(explanation: &str, referral: &str, on: &str) -> ApplicationEvent {
    ApplicationEvent::ApplicationRefused {
        principle: "legal_document".into(),
        referral: referral.into(),
        explanation: explanation.into(),
        cannot_issue: false,
        officer: "hh".into(),
        refused_on: date(on),
    }
}

const EXPLANATION: &str = "户口簿已载明亲属关系，请出示户口簿。";

fn override_to_refuse(justification: &str) -> ApplicationEvent {
    ApplicationEvent::ScreeningOverridden {
        previous: Outcome::Issue {
            kind: "kinship".into(),
            transitional: false,
        },
        outcome: Outcome::Refuse {
            principle: "legal_document".into(),
            referral: "出示户口簿".into(),
        },
        justification: justification.into(),
        officer: "hh".into(),
        promised_date: None,
    }
}

fn evidence(source: &str, result: EvidenceResult) -> ApplicationEvent {
    ApplicationEvent::EvidenceChecked {
        source: source.into(),
        reference: "R-1".into(),
        result,
        officer: "hh".into(),
    }
}

fn signature() -> ApplicationEvent {
    ApplicationEvent::StubSigned {
        signer: Signer::Applicant,
        name: "张伟".into(),
        phone: "13904310000".into(),
    }
}

fn approval(leader: &str) -> ApplicationEvent {
    ApplicationEvent::LeaderApproved {
        leader: leader.into(),
        approved_on: date("2026-11-03"),
    }
}

fn issuance(kind: &str, seal: &str, officer: &str, on: &str) -> ApplicationEvent {
    ApplicationEvent::CertificateIssued {
        certificate_number: "C-1".into(),
        kind: kind.into(),
        seal: seal.into(),
        officer: officer.into(),
        station: "S1".into(),
        issued_on: date(on),
        transitional: false,
    }
}

/// Issues a kinship application by the rules: evidence, signature, seal, on time.
fn proper_kinship_issuance() -> Case {
    let mut case = Case::submitted(false);
    case.apply(
        evidence("household_archives", EvidenceResult::Confirmed),
        "household_officer",
    )
    .apply(signature(), "household_officer")
    .apply(
        issuance("kinship", "household_seal", "hh", "2026-11-03"),
        "household_officer",
    );
    case
}

#[test]
fn proper_issuance_has_no_findings() {
    let case = proper_kinship_issuance();
    assert_eq!(case.rules(), Vec::<Rule>::new());
    assert_eq!(case.cleared, vec![Rule::Overdue]);
}

#[test]
fn refusal_of_issuable_matter_found() {
    let mut case = Case::submitted(false);
    case.apply(
        override_to_refuse("申请人坚持要求，所长同意改为不予出具。"),
        "household_officer",
    )
    .apply(
        refusal(EXPLANATION, "出示户口簿", "2026-11-03"),
        "household_officer",
    );
    let finding = case.finding(Rule::RefusedIssuable);
    let cited: Vec<i64> = finding.evidence.iter().map(|at| at.sequence).collect();
    assert_eq!(
        cited,
        vec![1, 2, 3, 4],
        "submission, screening, override, refusal"
    );
    assert_eq!(finding.evidence[3].event_type, "ApplicationRefused");
    assert_eq!(finding.evidence[3].global_position, 104);
    assert_eq!(finding.officer, "hh");
    assert_eq!(case.findings.len(), 1);
}

#[test]
fn refusal_policy_refuses_not_found() {
    let mut case = Case::submitted(true);
    case.apply(
        refusal(EXPLANATION, "出示户口簿", "2026-11-03"),
        "household_officer",
    );
    assert_eq!(case.rules(), Vec::<Rule>::new());
}

fn refusal_in_window(cannot_issue: bool) -> ApplicationEvent {
    ApplicationEvent::ApplicationRefused {
        principle: "legal_document".into(),
        referral: "出示户口簿".into(),
        explanation: EXPLANATION.into(),
        cannot_issue,
        officer: "hh".into(),
        refused_on: date("2015-06-02"),
    }
}

#[test]
fn transition_refusal_outright_found() {
    let mut case = Case::submitted_on("kinship", "same_household_register", true, "2015-06-01");
    case.apply(refusal_in_window(false), "household_officer");
    let finding = case.finding(Rule::TransitionRefusal);
    assert_eq!(finding.officer, "hh");
    assert_eq!(finding.occurred_on, date("2015-06-02"));
    let cited: Vec<i64> = finding.evidence.iter().map(|at| at.sequence).collect();
    assert_eq!(cited, vec![1, 3], "submission and refusal");
}

#[test]
fn transition_cannot_issue_not_found() {
    let mut case = Case::submitted_on("kinship", "same_household_register", true, "2015-06-01");
    case.apply(refusal_in_window(true), "household_officer");
    assert!(
        !case.rules().contains(&Rule::TransitionRefusal),
        "{:?}",
        case.rules()
    );
    let mut after = Case::submitted(true);
    after.apply(
        refusal(EXPLANATION, "出示户口簿", "2026-11-03"),
        "household_officer",
    );
    assert!(
        !after.rules().contains(&Rule::TransitionRefusal),
        "{:?}",
        after.rules()
    );
}

/// Overrides a refusal of a kinship request decided on 2026-11-02 to an issuance, due three
/// working days later.
fn override_to_issue() -> ApplicationEvent {
    ApplicationEvent::ScreeningOverridden {
        previous: Outcome::Refuse {
            principle: "legal_document".into(),
            referral: "出示户口簿".into(),
        },
        outcome: Outcome::Issue {
            kind: "kinship".into(),
            transitional: false,
        },
        justification: "申请人户口簿遗失，所长同意出具。".into(),
        officer: "hh".into(),
        promised_date: Some(date("2026-11-05")),
    }
}

#[test]
fn overridden_issuance_overdue_after_promise() {
    let mut case = Case::submitted(true);
    assert_eq!(case.state.due_on(), None, "a refusal promises nothing");
    case.apply(override_to_issue(), "household_officer");
    assert_eq!(case.state.due_on(), Some(date("2026-11-05")));
    assert_eq!(overdue_open(&case.state, date("2026-11-05")), None);
    let finding = overdue_open(&case.state, date("2026-11-06")).expect("overdue");
    let cited: Vec<&str> = finding
        .evidence
        .iter()
        .map(|at| at.event_type.as_str())
        .collect();
    assert_eq!(cited, vec!["ApplicationScreened", "ScreeningOverridden"]);

    case.apply(
        issuance("kinship", "household_seal", "hh", "2026-11-09"),
        "household_officer",
    );
    let finding = case.finding(Rule::Overdue);
    assert_eq!(
        finding.detail,
        "promised for 2026-11-05, closed on 2026-11-09"
    );
    assert_eq!(finding.evidence.len(), 3);
}

#[test]
fn issuance_of_refused_matter_found() {
    let mut case = Case::submitted(true);
    case.apply(override_to_issue(), "household_officer")
        .apply(
            evidence("household_archives", EvidenceResult::Confirmed),
            "household_officer",
        )
        .apply(signature(), "household_officer")
        .apply(
            issuance("kinship", "household_seal", "hh", "2026-11-03"),
            "household_officer",
        );
    let finding = case.finding(Rule::IssuedOutsideCatalogue);
    let cited: Vec<i64> = finding.evidence.iter().map(|at| at.sequence).collect();
    assert_eq!(
        cited,
        vec![1, 2, 3, 6],
        "submission, screening, override, issuance"
    );
    assert_eq!(case.findings.len(), 1, "{:?}", case.rules());
}

#[test]
fn issuance_of_unknown_kind_found() {
    let mut case = Case::submitted(false);
    case.apply(
        issuance("horoscope", "household_seal", "hh", "2026-11-03"),
        "household_officer",
    );
    assert_eq!(case.rules(), vec![Rule::IssuedOutsideCatalogue]);
    assert!(proper_kinship_issuance().rules().is_empty());
}

#[test]
fn refusal_without_explanation_found() {
    for (explanation, referral) in [("不行", "出示户口簿"), (EXPLANATION, " ")] {
        let mut case = Case::submitted(true);
        case.apply(
            refusal(explanation, referral, "2026-11-03"),
            "household_officer",
        );
        let finding = case.finding(Rule::RefusalUnexplained);
        assert_eq!(finding.evidence.len(), 1);
        assert_eq!(finding.evidence[0].sequence, 3);
        assert_eq!(finding.occurred_on, date("2026-11-03"));
    }
}

#[test]
fn issuance_after_promised_date_overdue() {
    let mut case = Case::submitted(false);
    let promised = case
        .state
        .promised_date
        .expect("accepted has a promised date");
    let late = promised + chrono::Days::new(3);
    case.apply(
        evidence("household_archives", EvidenceResult::Confirmed),
        "household_officer",
    )
    .apply(signature(), "household_officer")
    .apply(
        issuance("kinship", "household_seal", "hh", &late.to_string()),
        "household_officer",
    );
    let finding = case.finding(Rule::Overdue);
    assert_eq!(finding.occurred_on, promised + chrono::Days::new(1));
    assert_eq!(finding.evidence.len(), 2);
    assert_eq!(finding.evidence[1].event_type, "CertificateIssued");
    assert_eq!(case.findings.len(), 1);
    assert!(case.cleared.is_empty());
}

#[test]
fn open_application_overdue_after_promise() {
    let case = Case::submitted(false);
    let promised = case.state.promised_date.expect("promised date");
    assert_eq!(overdue_open(&case.state, promised), None, "due today");
    let finding = overdue_open(&case.state, promised + chrono::Days::new(1)).expect("overdue");
    assert_eq!(finding.rule, Rule::Overdue);
    assert_eq!(finding.evidence.len(), 1);
    assert_eq!(finding.evidence[0].event_type, "ApplicationScreened");
    let closed = proper_kinship_issuance();
    assert_eq!(
        overdue_open(&closed.state, promised + chrono::Days::new(30)),
        None
    );
    let refused = Case::submitted(true);
    assert_eq!(
        overdue_open(&refused.state, promised + chrono::Days::new(30)),
        None
    );
}

#[test]
fn approver_who_handled_found() {
    let mut case = Case::submitted_matter("death", "police_handled_event", true);
    case.apply(approval("hh"), "station_leader");
    let finding = case.finding(Rule::ApproverIsHandler);
    let cited: Vec<&str> = finding
        .evidence
        .iter()
        .map(|at| at.event_type.as_str())
        .collect();
    assert_eq!(cited, vec!["ApplicationSubmitted", "LeaderApproved"]);

    let mut other = Case::submitted_matter("death", "police_handled_event", true);
    other.apply(approval("ld"), "station_leader");
    assert_eq!(other.rules(), Vec::<Rule>::new());
}

#[test]
fn approver_who_issued_found() {
    let mut case = Case::submitted_matter("death", "police_handled_event", true);
    case.apply(
        evidence("station_dispatch_records", EvidenceResult::Confirmed),
        "community_officer",
    )
    .apply(signature(), "community_officer")
    .apply(approval("ld"), "station_leader")
    .apply(
        issuance("abnormal_death", "official_seal", "ld", "2026-11-03"),
        "community_officer",
    );
    assert_eq!(case.rules(), vec![Rule::ApproverIsHandler]);

    let mut proper = Case::submitted_matter("death", "police_handled_event", true);
    proper
        .apply(
            evidence("station_dispatch_records", EvidenceResult::Confirmed),
            "community_officer",
        )
        .apply(signature(), "community_officer")
        .apply(approval("ld"), "station_leader")
        .apply(
            issuance("abnormal_death", "official_seal", "cm", "2026-11-03"),
            "community_officer",
        );
    assert_eq!(proper.rules(), Vec::<Rule>::new());
}

#[test]
fn issuance_by_wrong_role_found() {
    let mut case = Case::submitted(false);
    case.apply(
        evidence("household_archives", EvidenceResult::Confirmed),
        "household_officer",
    )
    .apply(signature(), "household_officer")
    .apply(
        issuance("kinship", "household_seal", "cm", "2026-11-03"),
        "community_officer",
    );
    assert_eq!(case.rules(), vec![Rule::IssuedWrongRole]);
    assert_eq!(case.finding(Rule::IssuedWrongRole).officer, "cm");
}

#[test]
fn issuance_with_wrong_seal_found() {
    let mut case = Case::submitted(false);
    case.apply(
        evidence("household_archives", EvidenceResult::Confirmed),
        "household_officer",
    )
    .apply(signature(), "household_officer")
    .apply(
        issuance("kinship", "official_seal", "hh", "2026-11-03"),
        "household_officer",
    );
    assert_eq!(case.rules(), vec![Rule::IssuedWrongSeal]);
    assert_eq!(case.finding(Rule::IssuedWrongSeal).evidence[0].sequence, 5);
}

#[test]
fn issuance_without_evidence_found() {
    let mut missing = Case::submitted(false);
    missing.apply(signature(), "household_officer").apply(
        issuance("kinship", "household_seal", "hh", "2026-11-03"),
        "household_officer",
    );
    assert_eq!(missing.rules(), vec![Rule::IssuedWithoutEvidence]);

    // A source the kind does not accept confirms nothing.
    let mut wrong_source = Case::submitted(false);
    wrong_source
        .apply(
            evidence("paper_archives", EvidenceResult::Confirmed),
            "household_officer",
        )
        .apply(signature(), "household_officer")
        .apply(
            issuance("kinship", "household_seal", "hh", "2026-11-03"),
            "household_officer",
        );
    assert_eq!(wrong_source.rules(), vec![Rule::IssuedWithoutEvidence]);

    let mut contradicted = Case::submitted(false);
    contradicted
        .apply(
            evidence("household_archives", EvidenceResult::Confirmed),
            "household_officer",
        )
        .apply(
            evidence("population_information_system", EvidenceResult::Contradicts),
            "household_officer",
        )
        .apply(signature(), "household_officer")
        .apply(
            issuance("kinship", "household_seal", "hh", "2026-11-03"),
            "household_officer",
        );
    let finding = contradicted.finding(Rule::IssuedWithoutEvidence);
    assert_eq!(finding.evidence[0].event_type, "EvidenceChecked");
    assert_eq!(finding.evidence[0].sequence, 4);
}

#[test]
fn issuance_without_signature_found() {
    let mut case = Case::submitted(false);
    case.apply(
        evidence("household_archives", EvidenceResult::Confirmed),
        "household_officer",
    )
    .apply(
        issuance("kinship", "household_seal", "hh", "2026-11-03"),
        "household_officer",
    );
    assert_eq!(case.rules(), vec![Rule::IssuedWithoutSignature]);
}

#[test]
fn issuance_without_approval_found() {
    let mut case = Case::submitted_matter("death", "police_handled_event", true);
    case.apply(
        evidence("station_dispatch_records", EvidenceResult::Confirmed),
        "community_officer",
    )
    .apply(signature(), "community_officer")
    .apply(
        issuance("abnormal_death", "official_seal", "cm", "2026-11-03"),
        "community_officer",
    );
    assert_eq!(case.rules(), vec![Rule::IssuedWithoutApproval]);
}

#[test]
fn override_without_justification_found() {
    let mut case = Case::submitted(false);
    case.apply(override_to_refuse("改"), "household_officer");
    assert_eq!(case.rules(), vec![Rule::OverrideUnjustified]);
    let cited: Vec<&str> = case.findings[0]
        .evidence
        .iter()
        .map(|at| at.event_type.as_str())
        .collect();
    assert_eq!(cited, vec!["ApplicationScreened", "ScreeningOverridden"]);

    let mut justified = Case::submitted(false);
    justified.apply(
        override_to_refuse("申请人坚持要求，所长同意改为不予出具。"),
        "household_officer",
    );
    assert_eq!(justified.rules(), Vec::<Rule>::new());
}

fn exchange_ref(sequence: i64, event_type: &str) -> EventRef {
    EventRef {
        aggregate_type: "exchange_request".into(),
        aggregate_id: "R1".into(),
        sequence,
        global_position: 200 + sequence,
        event_type: event_type.into(),
    }
}

fn received_request() -> ExchangeCase {
    let mut case = ExchangeCase::default();
    let received = RequestEvent::RequestReceived {
        agreement: AgreementTerms {
            household_unit: "K1".into(),
            ..AgreementTerms::default()
        },
        items: vec!["name".into()],
        received_at: time("2026-11-02T09:00:00+08:00"),
        deadline: date("2026-11-06"),
        deadline_working_days: 5,
        policy_version: "v".into(),
        batch: BatchSummary::default(),
        officer: "hh".into(),
    };
    let detected = detect_exchange(&mut case, received, &exchange_ref(1, "RequestReceived"));
    assert_eq!(detected, Detected::default());
    case
}

fn time(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).expect("valid time")
}

fn feedback(at: &str) -> RequestEvent {
    RequestEvent::FeedbackDelivered {
        result_sha256: "00".into(),
        delivered_at: time(at),
        deadline: date("2026-11-06"),
        on_time: false,
        officer: "hh".into(),
    }
}

#[test]
fn late_exchange_feedback_found() {
    let mut case = received_request();
    let detected = detect_exchange(
        &mut case,
        feedback("2026-11-09T10:00:00+08:00"),
        &exchange_ref(3, "FeedbackDelivered"),
    );
    assert_eq!(detected.findings.len(), 1);
    let finding = &detected.findings[0];
    assert_eq!(finding.rule, Rule::FeedbackLate);
    assert_eq!(finding.occurred_on, date("2026-11-07"));
    let cited: Vec<i64> = finding.evidence.iter().map(|at| at.sequence).collect();
    assert_eq!(cited, vec![1, 3]);
}

#[test]
fn timely_exchange_feedback_not_found() {
    let mut case = received_request();
    // 23:30 in UTC on the 5th is the 6th in China: still on the deadline day.
    let detected = detect_exchange(
        &mut case,
        feedback("2026-11-05T23:30:00+00:00"),
        &exchange_ref(3, "FeedbackDelivered"),
    );
    assert!(detected.findings.is_empty());
    assert_eq!(detected.cleared, vec![Rule::FeedbackLate]);
    assert_eq!(feedback_missing(&case, date("2026-12-01")), None);
}

#[test]
fn missing_exchange_feedback_found() {
    let case = received_request();
    assert_eq!(feedback_missing(&case, date("2026-11-06")), None);
    let finding = feedback_missing(&case, date("2026-11-07")).expect("late");
    assert_eq!(finding.rule, Rule::FeedbackLate);
    assert_eq!(finding.evidence, vec![exchange_ref(1, "RequestReceived")]);
}

/// Replays no-criminal-record events in order and returns every finding and cleared rule.
fn record_check(events: Vec<RecordCheckEvent>, reads_on: &str) -> (RecordCheckCase, Detected) {
    let mut case = RecordCheckCase::default();
    let mut all = Detected::default();
    for (index, event) in events.into_iter().enumerate() {
        let context = EventContext {
            at: EventRef {
                aggregate_type: "record_check".into(),
                aggregate_id: "R1".into(),
                sequence: index as i64 + 1,
                global_position: 200 + index as i64,
                event_type: "RecordCheckEvent".into(),
            },
            actor_role: Some("household_officer".into()),
            recorded_on: date(reads_on),
        };
        let detected = detect_record_check(&mut case, event, &context);
        all.findings.extend(detected.findings);
        all.cleared.extend(detected.cleared);
    }
    (case, all)
}

fn record_submitted() -> RecordCheckEvent {
    RecordCheckEvent::RecordCheckSubmitted {
        applicant: Person {
            name: "李娜".into(),
            id_number: IdNumber::parse("220102199001011239").expect("valid id"),
        },
        agent: None,
        purpose: "study_abroad".into(),
        destination: "Canada".into(),
        station: "S1".into(),
        handling_officer: "hh".into(),
        decision_date: date("2026-11-02"),
        policy_version: "test".into(),
        promised_date: date("2026-11-09"),
    }
}

fn source_checked(found: bool) -> RecordCheckEvent {
    RecordCheckEvent::SourceChecked {
        source: "national_criminal_records".into(),
        query_reference: "Q-1".into(),
        result: if found {
            CheckResult::CriminalRecord
        } else {
            CheckResult::NoRecord
        },
        counts_as_record: found,
        officer: "hh".into(),
        checked_at: "2026-11-02T02:00:00Z".parse().expect("time"),
    }
}

fn record_certificate() -> RecordCheckEvent {
    RecordCheckEvent::CertificateIssued {
        certificate_number: "N-1".into(),
        seal: "official_seal".into(),
        officer: "hh".into(),
        station: "S1".into(),
        issued_on: date("2026-11-04"),
    }
}

#[test]
fn certificate_after_found_record_found() {
    let events = vec![
        record_submitted(),
        source_checked(true),
        record_certificate(),
    ];
    let (_, detected) = record_check(events, "2026-11-04");
    let rules: Vec<Rule> = detected.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec![Rule::IssuedDespiteRecord]);
    let cited: Vec<i64> = detected.findings[0]
        .evidence
        .iter()
        .map(|at| at.sequence)
        .collect();
    assert_eq!(cited, vec![2, 3], "the finding check and the issuance");

    let clean = vec![
        record_submitted(),
        source_checked(false),
        record_certificate(),
    ];
    assert!(record_check(clean, "2026-11-04").1.findings.is_empty());
}

fn objection(due: &str) -> RecordCheckEvent {
    RecordCheckEvent::ObjectionFiled {
        reason: "the record belongs to a namesake".into(),
        officer: "hh".into(),
        filed_on: date("2026-11-05"),
        due_on: date(due),
    }
}

fn objection_answer(on: &str) -> RecordCheckEvent {
    RecordCheckEvent::ObjectionAnswered {
        decision: ObjectionDecision::Upheld,
        explanation: "the record was checked again and stands".into(),
        leader: "ld".into(),
        answered_on: date(on),
        late: false,
    }
}

#[test]
fn late_objection_answer_found() {
    let refused = RecordCheckEvent::RecordCheckRefused {
        explanation: "a record was found; ask the court for details".into(),
        officer: "hh".into(),
        refused_on: date("2026-11-04"),
    };
    let base = vec![
        record_submitted(),
        source_checked(true),
        refused,
        objection("2026-11-26"),
    ];
    let mut late = base.clone();
    late.push(objection_answer("2026-11-27"));
    let (_, detected) = record_check(late, "2026-11-27");
    let finding = &detected.findings[0];
    assert_eq!(finding.rule, Rule::ObjectionOverdue);
    assert_eq!(finding.officer, "ld");
    assert_eq!(finding.occurred_on, date("2026-11-27"));

    let mut on_time = base.clone();
    on_time.push(objection_answer("2026-11-26"));
    let (case, detected) = record_check(on_time, "2026-11-26");
    assert!(detected.findings.is_empty(), "{:?}", detected.findings);
    assert_eq!(detected.cleared, vec![Rule::ObjectionOverdue]);
    assert_eq!(case.due_on(), None);

    let (open, _) = record_check(base, "2026-11-05");
    assert_eq!(open.due_on(), Some(date("2026-11-26")));
    assert!(objection_missing(&open, date("2026-11-26")).is_none());
    let missing = objection_missing(&open, date("2026-11-27")).expect("overdue when open");
    assert_eq!(missing.officer, "hh");
    assert_eq!(missing.evidence[0].sequence, 4);
}

fn results_read(reader: &str, role: Role, station: &str, purpose: &str) -> RecordCheckEvent {
    RecordCheckEvent::ResultsRead {
        reader: reader.into(),
        role,
        station: station.into(),
        purpose: purpose.into(),
    }
}

#[test]
fn read_without_purpose_found() {
    let read = |purpose| results_read("hh", Role::HouseholdOfficer, "S1", purpose);
    let (_, detected) = record_check(vec![record_submitted(), read("  ")], "2026-11-06");
    assert_eq!(detected.findings.len(), 1);
    assert_eq!(detected.findings[0].rule, Rule::ReadWithoutPurpose);
    assert_eq!(detected.findings[0].officer, "hh");
    assert_eq!(detected.findings[0].occurred_on, date("2026-11-06"));
    let (_, detected) = record_check(
        vec![record_submitted(), read("objection review")],
        "2026-11-06",
    );
    assert!(detected.findings.is_empty());
}

#[test]
fn read_outside_case_found() {
    // The case belongs to station S1 and is handled by "hh".
    let outsiders = [
        results_read("cm", Role::CommunityOfficer, "S1", "curiosity"),
        results_read("hh", Role::HouseholdOfficer, "S2", "same id, other station"),
        results_read("ld2", Role::StationLeader, "S2", "neighbouring station"),
        results_read("po", Role::ProvincialOfficer, "P", "report"),
    ];
    for read in outsiders {
        let (_, detected) = record_check(vec![record_submitted(), read.clone()], "2026-11-06");
        assert_eq!(detected.findings.len(), 1, "{read:?}");
        let finding = &detected.findings[0];
        assert_eq!(finding.rule, Rule::ReadOutsideCase);
        assert_eq!(finding.occurred_on, date("2026-11-06"));
        assert_eq!(finding.evidence.len(), 1);
        assert_eq!(finding.evidence[0].sequence, 2);
        assert!(finding.detail.contains("station S1"), "{}", finding.detail);
    }

    let admitted = [
        results_read("hh", Role::HouseholdOfficer, "S1", "certificate"),
        results_read("ld", Role::StationLeader, "S1", "approval"),
        results_read("ins", Role::Inspector, "P", "inspection of S1"),
    ];
    for read in admitted {
        let (_, detected) = record_check(vec![record_submitted(), read.clone()], "2026-11-06");
        assert!(
            detected.findings.is_empty(),
            "{read:?}: {:?}",
            detected.findings
        );
    }
}

#[test]
fn read_outside_case_without_purpose_gives_both() {
    let read = results_read("cm", Role::CommunityOfficer, "S1", "");
    let (_, detected) = record_check(vec![record_submitted(), read], "2026-11-06");
    let rules: Vec<Rule> = detected.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec![Rule::ReadWithoutPurpose, Rule::ReadOutsideCase]);
    assert!(detected.findings.iter().all(|f| f.officer == "cm"));
}

/// Replays unit verification events in order and returns every finding.
fn unit_visit(events: Vec<UnitVisitEvent>) -> Vec<Finding> {
    let mut case = UnitVisitCase::default();
    let mut findings = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        let context = EventContext {
            at: EventRef {
                aggregate_type: "unit_visit".into(),
                aggregate_id: "V1".into(),
                sequence: index as i64 + 1,
                global_position: 300 + index as i64,
                event_type: "UnitVisitEvent".into(),
            },
            actor_role: Some("household_officer".into()),
            recorded_on: date("2026-11-10"),
        };
        findings.extend(detect_unit_visit(&mut case, event, &context).findings);
    }
    findings
}

fn visit_registered() -> UnitVisitEvent {
    UnitVisitEvent::VisitRegistered {
        unit: Unit {
            name: "市人力资源和社会保障局".into(),
            unit_type: "government".into(),
            level: "city".into(),
        },
        staff: Person {
            name: "王强".into(),
            id_number: IdNumber::parse("220102199001011239").expect("valid id"),
        },
        letter: IntroductionLetter {
            number: "L-7".into(),
            date: date("2026-11-09"),
            issuing_unit: "市人力资源和社会保障局".into(),
            scan_sha256: "0".repeat(64),
        },
        purpose: "civil service recruitment".into(),
        subject: Person {
            name: "李娜".into(),
            id_number: IdNumber::parse("220102199001011239").expect("valid id"),
        },
        station: "S1".into(),
        handling_officer: "hh".into(),
        decision_date: date("2026-11-10"),
        policy_version: "test".into(),
        rule_id: "civil_service".into(),
    }
}

fn visit_read(reader: &str, role: Role, station: &str, purpose: &str) -> UnitVisitEvent {
    UnitVisitEvent::VisitResultsRead {
        reader: reader.into(),
        role,
        station: station.into(),
        purpose: purpose.into(),
    }
}

#[test]
fn unit_visit_reads_examined() {
    let findings = unit_visit(vec![
        visit_registered(),
        visit_read("hh", Role::HouseholdOfficer, "S1", " "),
    ]);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, Rule::ReadWithoutPurpose);
    assert_eq!(findings[0].evidence[0].aggregate_type, "unit_visit");
    assert_eq!(findings[0].evidence[0].sequence, 2);

    let findings = unit_visit(vec![
        visit_registered(),
        visit_read("cm", Role::CommunityOfficer, "S1", "looked up a neighbour"),
    ]);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, Rule::ReadOutsideCase);
    assert_eq!(findings[0].officer, "cm");

    let findings = unit_visit(vec![
        visit_registered(),
        visit_read("hh", Role::HouseholdOfficer, "S1", "written certificate"),
        visit_read(
            "ld",
            Role::StationLeader,
            "S1",
            "approval of the certificate",
        ),
        visit_read("ins", Role::Inspector, "P", "inspection of S1"),
    ]);
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn application_reads_examined() {
    let mut case = Case::submitted(false);
    case.read("hh9", Role::HouseholdOfficer, "S2", "looked up a neighbour");
    let finding = case.finding(Rule::ReadOutsideCase);
    assert_eq!(finding.officer, "hh9");
    assert_eq!(finding.occurred_on, date("2026-11-03"));
    assert_eq!(finding.evidence[0].aggregate_type, "application_reads");
    assert!(finding.detail.contains("station S1"), "{}", finding.detail);
    assert!(finding.detail.contains("station S2"), "{}", finding.detail);

    let mut case = Case::submitted(false);
    case.read("hh", Role::HouseholdOfficer, "S1", "\t");
    assert_eq!(case.rules(), vec![Rule::ReadWithoutPurpose]);

    let mut case = Case::submitted(false);
    case.read(
        "hh",
        Role::HouseholdOfficer,
        "S1",
        "applicant asks for a copy",
    )
    .read("cm", Role::CommunityOfficer, "S1", "covering for hh")
    .read("ld", Role::StationLeader, "S1", "approval")
    .read("ins", Role::Inspector, "P", "inspection of S1")
    .read("po", Role::ProvincialOfficer, "P", "problem report 7");
    assert!(case.findings.is_empty(), "{:?}", case.findings);
}

/// Returns a death certificate application with confirming evidence and a signed stub, ready
/// for the leader's approval that the kind needs.
fn ready_for_approval() -> Case {
    let mut case = Case::submitted_matter("death", "police_handled_event", true);
    case.apply(
        evidence("station_dispatch_records", EvidenceResult::Confirmed),
        "community_officer",
    )
    .apply(signature(), "community_officer");
    case
}

fn approval_on(on: NaiveDate) -> ApplicationEvent {
    ApplicationEvent::LeaderApproved {
        leader: "ld".into(),
        approved_on: on,
    }
}

#[test]
fn late_approval_found() {
    let mut case = ready_for_approval();
    let promised = case.state.promised_date.expect("promised date");
    case.apply(
        approval_on(promised + chrono::Days::new(2)),
        "station_leader",
    );
    let finding = case.finding(Rule::ApprovalOverdue);
    assert_eq!(finding.officer, "ld");
    assert_eq!(finding.occurred_on, promised + chrono::Days::new(1));
    let cited: Vec<&str> = finding
        .evidence
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(
        cited,
        ["ApplicationScreened", "StubSigned", "LeaderApproved"]
    );
}

#[test]
fn timely_approval_not_found() {
    let mut case = ready_for_approval();
    let promised = case.state.promised_date.expect("promised date");
    case.apply(approval_on(promised), "station_leader");
    assert_eq!(case.rules(), Vec::<Rule>::new());
    assert_eq!(case.cleared, vec![Rule::ApprovalOverdue]);
}

#[test]
fn undecided_approval_found_after_promise() {
    let case = ready_for_approval();
    let promised = case.state.promised_date.expect("promised date");
    let after = promised + chrono::Days::new(1);
    assert_eq!(
        approval_overdue_open(&case.state, promised),
        None,
        "due today"
    );
    let finding = approval_overdue_open(&case.state, after).expect("undecided after the promise");
    assert_eq!(finding.rule, Rule::ApprovalOverdue);
    assert_eq!(finding.officer, "", "any leader of the station may approve");
    assert_eq!(finding.evidence.len(), 2);

    // The handling officer's part still missing: the delay is not the leaders'.
    let mut unsigned = Case::submitted_matter("death", "police_handled_event", true);
    unsigned.apply(
        evidence("station_dispatch_records", EvidenceResult::Confirmed),
        "community_officer",
    );
    assert_eq!(unsigned.state.ready_for_approval, None);
    assert_eq!(approval_overdue_open(&unsigned.state, after), None);

    // Ready only after the promised date.
    let mut late_ready = ready_for_approval();
    if let Some((day, _)) = late_ready.state.ready_for_approval.as_mut() {
        *day = after;
    }
    assert_eq!(approval_overdue_open(&late_ready.state, after), None);

    // A kind without leader approval is never awaiting one.
    let kinship = proper_kinship_issuance();
    assert_eq!(kinship.state.ready_for_approval, None);
    let mut approved = ready_for_approval();
    approved.apply(approval_on(promised), "station_leader");
    assert_eq!(approval_overdue_open(&approved.state, after), None);
}
