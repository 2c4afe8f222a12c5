//! Detectors: one rule each, applied to one event and the case state before it, each finding
//! citing the events that prove it. Pure functions, so that they run the same during a rebuild.

use aggregates::application::{Actor, ApplicationEvent, EvidenceResult, MIN_EXPLANATION_CHARS};
use aggregates::application_reads::{ApplicationReadEvent, check_personal_data_access};
use aggregates::exchange::request::RequestEvent;
use aggregates::exchange::request::china_date;
use aggregates::policy::{
    CertificateKind, Circumstances, Outcome, Policy, PolicyBook, RequestingUnit,
};
use aggregates::record_check::RecordCheckEvent;
use aggregates::record_check::access::{check_results_access, states_purpose};
use aggregates::unit_visit::UnitVisitEvent;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// A rule a finding breaks; its code is the finding's category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A refusal where the policy version of the application screens the matter as issued.
    RefusedIssuable,
    /// A refusal whose explanation is shorter than the minimum or which names no referral.
    RefusalUnexplained,
    /// An accepted application not closed by its promised date.
    Overdue,
    /// The approving leader also handled (submitted) or issued the application.
    ApproverIsHandler,
    /// An issuance by an officer whose role may not issue the kind.
    IssuedWrongRole,
    /// An issuance under a seal other than the kind's.
    IssuedWrongSeal,
    /// An issuance with no confirming evidence check, or with a contradicting one.
    IssuedWithoutEvidence,
    /// An issuance of a kind with a stub, before the stub was signed.
    IssuedWithoutSignature,
    /// An issuance of a kind that needs leader approval, without one.
    IssuedWithoutApproval,
    /// A screening override whose justification is shorter than the minimum.
    OverrideUnjustified,
    /// Exchange feedback delivered after its deadline, or not delivered by it.
    FeedbackLate,
    /// Inside the transition window, a refusal recorded as a plain refusal instead of the
    /// explained "cannot issue" the window requires.
    TransitionRefusal,
    /// After the transition window, an issuance of a kind missing from the catalogue, or of a
    /// matter the policy version does not issue for.
    IssuedOutsideCatalogue,
    /// A no-criminal-record certificate issued after a check found a record.
    IssuedDespiteRecord,
    /// An objection to a criminal-record refusal answered after its due date, or not by it.
    ObjectionOverdue,
    /// A read of criminal-record results that states no purpose.
    ReadWithoutPurpose,
    /// A read of criminal-record results by someone with no part in the case: neither its
    /// handling officer, nor a leader of its station, nor an inspector.
    ReadOutsideCase,
    /// A leader approval still undecided at the promised date although the handling officer's
    /// part (confirming evidence, signed stub) was done by then.
    ApprovalOverdue,
}

impl Rule {
    pub const ALL: [Rule; 18] = [
        Rule::RefusedIssuable,
        Rule::RefusalUnexplained,
        Rule::Overdue,
        Rule::ApproverIsHandler,
        Rule::IssuedWrongRole,
        Rule::IssuedWrongSeal,
        Rule::IssuedWithoutEvidence,
        Rule::IssuedWithoutSignature,
        Rule::IssuedWithoutApproval,
        Rule::OverrideUnjustified,
        Rule::FeedbackLate,
        Rule::TransitionRefusal,
        Rule::IssuedOutsideCatalogue,
        Rule::IssuedDespiteRecord,
        Rule::ObjectionOverdue,
        Rule::ReadWithoutPurpose,
        Rule::ReadOutsideCase,
        Rule::ApprovalOverdue,
    ];

    /// Returns the snake_case code stored in `supervision_findings.rule`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::RefusedIssuable => "refused_issuable",
            Rule::RefusalUnexplained => "refusal_unexplained",
            Rule::Overdue => "overdue",
            Rule::ApproverIsHandler => "approver_is_handler",
            Rule::IssuedWrongRole => "issued_wrong_role",
            Rule::IssuedWrongSeal => "issued_wrong_seal",
            Rule::IssuedWithoutEvidence => "issued_without_evidence",
            Rule::IssuedWithoutSignature => "issued_without_signature",
            Rule::IssuedWithoutApproval => "issued_without_approval",
            Rule::OverrideUnjustified => "override_unjustified",
            Rule::FeedbackLate => "feedback_late",
            Rule::TransitionRefusal => "transition_refusal",
            Rule::IssuedOutsideCatalogue => "issued_outside_catalogue",
            Rule::IssuedDespiteRecord => "issued_despite_record",
            Rule::ObjectionOverdue => "objection_overdue",
            Rule::ReadWithoutPurpose => "read_without_purpose",
            Rule::ReadOutsideCase => "read_outside_case",
            Rule::ApprovalOverdue => "approval_overdue",
        }
    }

    /// Returns `inaction` (不作为) for a refusal or delay of what the rules require, and
    /// `misconduct` (乱作为) for an act against the rules.
    pub fn category(self) -> &'static str {
        match self {
            Rule::RefusedIssuable
            | Rule::RefusalUnexplained
            | Rule::Overdue
            | Rule::FeedbackLate
            | Rule::TransitionRefusal
            | Rule::ObjectionOverdue
            | Rule::ApprovalOverdue => "inaction",
            Rule::ApproverIsHandler
            | Rule::IssuedWrongRole
            | Rule::IssuedWrongSeal
            | Rule::IssuedWithoutEvidence
            | Rule::IssuedWithoutSignature
            | Rule::IssuedWithoutApproval
            | Rule::OverrideUnjustified
            | Rule::IssuedOutsideCatalogue
            | Rule::IssuedDespiteRecord
            | Rule::ReadWithoutPurpose
            | Rule::ReadOutsideCase => "misconduct",
        }
    }
}

/// One event a finding cites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
}

/// A detected breach of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub officer: String,
    pub occurred_on: NaiveDate,
    pub detail: String,
    pub evidence: Vec<EventRef>,
}

impl Finding {
    /// Returns the act a finding of a per-act rule concerns, as the aggregate type and sequence
    /// of its first cited event (`application_reads#2`), so that each offending read is a
    /// finding of its own. Other rules have one finding per case and return an empty text.
    pub fn occurrence(&self) -> String {
        let per_act = matches!(self.rule, Rule::ReadWithoutPurpose | Rule::ReadOutsideCase);
        match self.evidence.first() {
            Some(act) if per_act => format!("{}#{}", act.aggregate_type, act.sequence),
            _ => String::new(),
        }
    }
}

/// Changes that one event makes to the findings of its case.
#[derive(Debug, Default, PartialEq)]
pub struct Detected {
    pub findings: Vec<Finding>,
    /// Rules whose earlier finding no longer holds: a deadline finding recorded by the sweep
    /// before a backdated, on-time closing event was projected.
    pub cleared: Vec<Rule>,
}

/// Facts about the event beyond its payload.
#[derive(Clone, Debug)]
pub struct EventContext {
    pub at: EventRef,
    /// `actor_role` of the event's metadata, as the API records it.
    pub actor_role: Option<String>,
    /// Date the event was recorded, in China Standard Time.
    pub recorded_on: NaiveDate,
}

/// One evidence check of an application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceEntry {
    pub source: String,
    pub result: EvidenceResult,
    pub at: EventRef,
}

/// The state of an application as the detectors read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationCase {
    pub station: String,
    pub handling_officer: String,
    pub matter: String,
    pub unit: Option<RequestingUnit>,
    pub circumstances: Circumstances,
    pub decision_date: Option<NaiveDate>,
    pub policy_version: Option<String>,
    pub outcome: Option<Outcome>,
    pub promised_date: Option<NaiveDate>,
    /// The override that set the promised date in force, when one did; screening set it
    /// otherwise.
    #[serde(default)]
    pub promised_by: Option<EventRef>,
    pub submitted: Option<EventRef>,
    pub screened: Option<EventRef>,
    pub overridden: Option<EventRef>,
    /// The officer who overrode the screening, for the comparison of officers' override rates.
    #[serde(default)]
    pub overridden_by: Option<String>,
    pub approval: Option<(String, EventRef)>,
    pub signature: Option<EventRef>,
    pub evidence: Vec<EvidenceEntry>,
    /// The event that issued, refused or withdrew the application.
    pub closed: Option<EventRef>,
    /// For a kind that needs leader approval: the day the handling officer's part was done
    /// (confirming evidence and, where the kind has a stub, the signature), and the event that
    /// completed it.
    #[serde(default)]
    pub ready_for_approval: Option<(NaiveDate, EventRef)>,
}

impl ApplicationCase {
    /// Returns the promised date while the application is accepted for issuance and open.
    pub fn due_on(&self) -> Option<NaiveDate> {
        let accepted = matches!(self.outcome, Some(Outcome::Issue { .. }));
        if self.closed.is_some() || !accepted {
            return None;
        }
        self.promised_date
    }
}

/// The state of an exchange request as the detectors read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExchangeCase {
    /// City or county code of the household-administration unit.
    pub unit: String,
    pub officer: String,
    pub deadline: Option<NaiveDate>,
    pub received: Option<EventRef>,
    pub delivered: Option<EventRef>,
    /// Cadence code of the agreement the request came under, for the compliance report.
    #[serde(default)]
    pub cadence: Option<String>,
    /// Day of delivery of the feedback in China Standard Time.
    #[serde(default)]
    pub delivered_on: Option<NaiveDate>,
}

fn text_too_short(text: &str) -> bool {
    text.trim().chars().count() < MIN_EXPLANATION_CHARS
}

/// Returns the policy the application was screened under, or the current one when this
/// server does not load that version.
fn policy_of<'a>(case: &ApplicationCase, policies: &'a PolicyBook) -> &'a Policy {
    case.policy_version
        .as_deref()
        .and_then(|version| policies.version(version))
        .unwrap_or_else(|| policies.current())
}

fn refs(items: &[&Option<EventRef>]) -> Vec<EventRef> {
    items.iter().filter_map(|item| (*item).clone()).collect()
}

/// Applies an application event to `case` and returns the findings it proves.
pub fn detect_application(
    case: &mut ApplicationCase,
    event: ApplicationEvent,
    context: &EventContext,
    policies: &PolicyBook,
) -> Detected {
    let mut detected = Detected::default();
    let at = context.at.clone();
    match event {
        ApplicationEvent::ApplicationSubmitted {
            unit,
            matter,
            circumstances,
            station,
            decision_date,
            handling_officer,
            ..
        } => {
            case.station = station;
            case.handling_officer = handling_officer;
            case.matter = matter;
            case.unit = Some(unit);
            case.circumstances = circumstances;
            case.decision_date = Some(decision_date);
            case.submitted = Some(at);
        }
        ApplicationEvent::ApplicationScreened { decision } => {
            case.policy_version = Some(decision.policy_version);
            case.outcome = Some(decision.outcome);
            case.promised_date = decision.promised_date;
            case.screened = Some(at);
        }
        ApplicationEvent::ScreeningOverridden {
            outcome,
            justification,
            officer,
            promised_date,
            ..
        } => {
            if text_too_short(&justification) {
                detected.findings.push(Finding {
                    rule: Rule::OverrideUnjustified,
                    officer: officer.clone(),
                    occurred_on: context.recorded_on,
                    detail: format!(
                        "screening was overridden with a justification of {} characters; at least {MIN_EXPLANATION_CHARS} are required",
                        justification.trim().chars().count()
                    ),
                    evidence: refs(&[&case.screened, &Some(at.clone())]),
                });
            }
            case.outcome = Some(outcome);
            if promised_date.is_some() {
                case.promised_date = promised_date;
                case.promised_by = Some(at.clone());
            }
            case.overridden = Some(at);
            case.overridden_by = Some(officer);
        }
        ApplicationEvent::ApplicationRefused {
            referral,
            explanation,
            cannot_issue,
            officer,
            refused_on,
            ..
        } => {
            let window = &policy_of(case, policies).transition;
            if let Some(decided) = case.decision_date
                && window.contains(decided)
                && !cannot_issue
            {
                detected.findings.push(Finding {
                    rule: Rule::TransitionRefusal,
                    officer: officer.clone(),
                    occurred_on: refused_on,
                    detail: format!(
                        "decided on {decided}, inside the transition window {} to {}, and refused outright instead of issuing or explaining that the station cannot issue",
                        window.start, window.end
                    ),
                    evidence: refs(&[&case.submitted, &Some(at.clone())]),
                });
            }
            case.closed = Some(at.clone());
            if text_too_short(&explanation) || referral.trim().is_empty() {
                detected.findings.push(Finding {
                    rule: Rule::RefusalUnexplained,
                    officer: officer.clone(),
                    occurred_on: refused_on,
                    detail: format!(
                        "the refusal carries an explanation of {} characters (at least {MIN_EXPLANATION_CHARS} are required) and {} referral",
                        explanation.trim().chars().count(),
                        if referral.trim().is_empty() { "no" } else { "a" }
                    ),
                    evidence: vec![at.clone()],
                });
            }
            if let Some(finding) = refused_issuable(case, &officer, refused_on, &at, policies) {
                detected.findings.push(finding);
            }
            detect_closing(case, refused_on, &at, &mut detected);
        }
        ApplicationEvent::EvidenceChecked { source, result, .. } => {
            case.evidence.push(EvidenceEntry { source, result, at });
            note_ready_for_approval(case, context, policies);
        }
        ApplicationEvent::StubSigned { .. } => {
            case.signature = Some(at);
            note_ready_for_approval(case, context, policies);
        }
        ApplicationEvent::LeaderApproved {
            leader,
            approved_on,
        } => {
            detect_approval(case, &leader, approved_on, &at, &mut detected);
            if leader == case.handling_officer {
                detected.findings.push(Finding {
                    rule: Rule::ApproverIsHandler,
                    officer: leader.clone(),
                    occurred_on: approved_on,
                    detail: format!("station leader {leader} approved an application they handled"),
                    evidence: refs(&[&case.submitted, &Some(at.clone())]),
                });
            }
            case.approval = Some((leader, at));
        }
        ApplicationEvent::CertificateIssued {
            kind,
            seal,
            officer,
            issued_on,
            ..
        } => {
            case.closed = Some(at.clone());
            detected.findings.extend(detect_issuance(
                case, &kind, &seal, &officer, issued_on, context, policies,
            ));
            detect_closing(case, issued_on, &at, &mut detected);
        }
        ApplicationEvent::ApplicationWithdrawn { withdrawn_on, .. } => {
            case.closed = Some(at.clone());
            detect_closing(case, withdrawn_on, &at, &mut detected);
        }
    }
    detected
}

/// Records the day the handling officer's part of an application that awaits leader approval
/// was done, once: confirming evidence from the kind's sources with none contradicting, and
/// the signed stub where the kind has one.
fn note_ready_for_approval(
    case: &mut ApplicationCase,
    context: &EventContext,
    policies: &PolicyBook,
) {
    if case.ready_for_approval.is_some() || case.approval.is_some() || case.closed.is_some() {
        return;
    }
    let Some(Outcome::Issue { kind, .. }) = &case.outcome else {
        return;
    };
    let Some(kind) = policy_of(case, policies).kind(kind) else {
        return;
    };
    let relevant = || {
        case.evidence
            .iter()
            .filter(|entry| kind.evidence_sources.contains(&entry.source))
    };
    let confirmed = relevant().any(|entry| entry.result == EvidenceResult::Confirmed);
    let contradicted = relevant().any(|entry| entry.result == EvidenceResult::Contradicts);
    let signed = !kind.stub_signature || case.signature.is_some();
    if kind.leader_approval && confirmed && !contradicted && signed {
        case.ready_for_approval = Some((context.recorded_on, context.at.clone()));
    }
}

/// Records an approval-overdue finding for an approval dated after the promised date of an
/// application that was ready for approval by then, and clears a finding the sweep recorded
/// when the approval is dated on or before it.
fn detect_approval(
    case: &ApplicationCase,
    leader: &str,
    approved_on: NaiveDate,
    at: &EventRef,
    detected: &mut Detected,
) {
    let (Some(promised), Some((ready_on, ready_at))) =
        (case.promised_date, &case.ready_for_approval)
    else {
        return;
    };
    if approved_on <= promised {
        detected.cleared.push(Rule::ApprovalOverdue);
        return;
    }
    if *ready_on > promised {
        return;
    }
    detected.findings.push(Finding {
        rule: Rule::ApprovalOverdue,
        officer: leader.to_string(),
        occurred_on: promised + Days::new(1),
        detail: format!(
            "ready for approval on {ready_on}, promised for {promised}, approved on {approved_on}"
        ),
        evidence: refs(&[
            &case.screened,
            &case.promised_by,
            &Some(ready_at.clone()),
            &Some(at.clone()),
        ]),
    });
}

/// Returns the approval-overdue finding of an application still awaiting leader approval after
/// its promised date, as of `today`, when the handling officer's part was done by that date.
/// The finding names no officer: any leader of the station may approve, so it concerns them all.
pub fn approval_overdue_open(case: &ApplicationCase, today: NaiveDate) -> Option<Finding> {
    let promised = case.due_on()?;
    let (ready_on, ready_at) = case.ready_for_approval.as_ref()?;
    if today <= promised || case.approval.is_some() || *ready_on > promised {
        return None;
    }
    Some(Finding {
        rule: Rule::ApprovalOverdue,
        officer: String::new(),
        occurred_on: promised + Days::new(1),
        detail: format!(
            "ready for approval on {ready_on}, promised for {promised}, still awaiting a station leader's approval on {today}"
        ),
        evidence: refs(&[&case.screened, &case.promised_by, &Some(ready_at.clone())]),
    })
}

/// Screens an application decided after the transition window again under its policy version,
/// and describes why it must not be issued when the policy refuses it.
fn outside_catalogue(case: &ApplicationCase, policy: &Policy) -> Option<String> {
    let (unit, decision_date) = (case.unit.as_ref()?, case.decision_date?);
    if decision_date <= policy.transition.end {
        return None;
    }
    let decision = policy
        .screen(&case.matter, unit, &case.circumstances, decision_date)
        .ok()?;
    match decision.outcome {
        Outcome::Issue { .. } => None,
        Outcome::Refuse { principle, .. } | Outcome::CannotIssue { principle, .. } => {
            Some(format!(
                "policy {} rule {} refuses matter {} under {principle} after the transition window, but a certificate was issued",
                policy.version, decision.rule_id, case.matter
            ))
        }
        Outcome::UnitVerification { .. } => Some(format!(
            "policy {} rule {} sends matter {} to unit verification, which issues no certificate, but a certificate was issued",
            policy.version, decision.rule_id, case.matter
        )),
    }
}

/// Screens the application again under its policy version; a refusal of what it issues is a
/// finding, whether or not an override preceded it.
fn refused_issuable(
    case: &ApplicationCase,
    officer: &str,
    refused_on: NaiveDate,
    at: &EventRef,
    policies: &PolicyBook,
) -> Option<Finding> {
    let policy = policy_of(case, policies);
    let (unit, decision_date) = (case.unit.as_ref()?, case.decision_date?);
    let decision = policy
        .screen(&case.matter, unit, &case.circumstances, decision_date)
        .ok()?;
    let Outcome::Issue { kind, .. } = decision.outcome else {
        return None;
    };
    Some(Finding {
        rule: Rule::RefusedIssuable,
        officer: officer.to_string(),
        occurred_on: refused_on,
        detail: format!(
            "policy {} rule {} issues {kind} for this matter, but the application was refused",
            policy.version, decision.rule_id
        ),
        evidence: refs(&[
            &case.submitted,
            &case.screened,
            &case.overridden,
            &Some(at.clone()),
        ]),
    })
}

/// Records an overdue finding for a closing dated after the promised date, and clears a
/// finding the sweep recorded when the closing is dated on or before it.
fn detect_closing(
    case: &ApplicationCase,
    closed_on: NaiveDate,
    at: &EventRef,
    detected: &mut Detected,
) {
    let Some(promised) = case.promised_date else {
        return;
    };
    if closed_on <= promised {
        detected.cleared.push(Rule::Overdue);
        return;
    }
    detected.findings.push(Finding {
        rule: Rule::Overdue,
        officer: case.handling_officer.clone(),
        occurred_on: promised + Days::new(1),
        detail: format!("promised for {promised}, closed on {closed_on}"),
        evidence: refs(&[&case.screened, &case.promised_by, &Some(at.clone())]),
    });
}

fn detect_issuance(
    case: &ApplicationCase,
    kind_code: &str,
    seal: &str,
    officer: &str,
    issued_on: NaiveDate,
    context: &EventContext,
    policies: &PolicyBook,
) -> Vec<Finding> {
    let policy = policy_of(case, policies);
    let at = Some(context.at.clone());
    let finding = |rule: Rule, detail: String, evidence: Vec<EventRef>| Finding {
        rule,
        officer: officer.to_string(),
        occurred_on: issued_on,
        detail,
        evidence,
    };
    let Some(kind) = policy.kind(kind_code) else {
        let detail = format!(
            "{kind_code} is not a kind of the catalogue of policy {}",
            policy.version
        );
        return vec![finding(Rule::IssuedOutsideCatalogue, detail, refs(&[&at]))];
    };
    let mut findings = Vec::new();
    if let Some(detail) = outside_catalogue(case, policy) {
        let evidence = refs(&[&case.submitted, &case.screened, &case.overridden, &at]);
        findings.push(finding(Rule::IssuedOutsideCatalogue, detail, evidence));
    }
    if let Some(detail) = wrong_role(kind, context.actor_role.as_deref()) {
        findings.push(finding(Rule::IssuedWrongRole, detail, refs(&[&at])));
    }

    if seal != kind.seal.code() {
        let detail = format!("{kind_code} carries the {}, not {seal}", kind.seal.code());
        findings.push(finding(Rule::IssuedWrongSeal, detail, refs(&[&at])));
    }

    let relevant: Vec<&EvidenceEntry> = case
        .evidence
        .iter()
        .filter(|entry| kind.evidence_sources.contains(&entry.source))
        .collect();
    let contradicting: Vec<EventRef> = relevant
        .iter()
        .filter(|entry| entry.result == EvidenceResult::Contradicts)
        .map(|entry| entry.at.clone())
        .collect();
    let confirmed = relevant
        .iter()
        .any(|entry| entry.result == EvidenceResult::Confirmed);
    if !contradicting.is_empty() || !confirmed {
        let detail = if contradicting.is_empty() {
            format!(
                "no evidence check from {} confirmed the fact",
                kind.evidence_sources.join(", ")
            )
        } else {
            format!(
                "{} evidence check(s) contradict the fact",
                contradicting.len()
            )
        };
        let mut evidence = contradicting;
        evidence.extend(refs(&[&case.screened, &at]));
        findings.push(finding(Rule::IssuedWithoutEvidence, detail, evidence));
    }

    if kind.stub_signature && case.signature.is_none() {
        let detail = format!("{kind_code} needs a signed stub; none was recorded before issuance");
        findings.push(finding(
            Rule::IssuedWithoutSignature,
            detail,
            refs(&[&case.screened, &at]),
        ));
    }
    if kind.leader_approval && case.approval.is_none() {
        let detail = format!("{kind_code} needs a station leader's approval; none was recorded");
        findings.push(finding(
            Rule::IssuedWithoutApproval,
            detail,
            refs(&[&case.screened, &at]),
        ));
    }
    if let Some((leader, approved_at)) = &case.approval
        && leader == officer
        && *leader != case.handling_officer
    {
        findings.push(Finding {
            rule: Rule::ApproverIsHandler,
            officer: leader.clone(),
            occurred_on: issued_on,
            detail: format!("station leader {leader} approved and issued the same certificate"),
            evidence: vec![approved_at.clone(), context.at.clone()],
        });
    }
    findings
}

/// Returns the detail of a wrong-role finding when the recorded role may not issue `kind`.
fn wrong_role(kind: &CertificateKind, actor_role: Option<&str>) -> Option<String> {
    let allowed = actor_role.is_some_and(|role| {
        kind.handling_roles
            .iter()
            .any(|allowed| allowed.code() == role)
    });
    if allowed {
        return None;
    }
    let roles: Vec<&str> = kind.handling_roles.iter().map(|role| role.code()).collect();
    Some(format!(
        "{} is issued by {}; the issuing officer's recorded role is {}",
        kind.code,
        roles.join(" or "),
        actor_role.unwrap_or("missing")
    ))
}

/// Returns the overdue finding of an application still open after its promised date, as of
/// `today`.
pub fn overdue_open(case: &ApplicationCase, today: NaiveDate) -> Option<Finding> {
    let promised = case.due_on()?;
    if today <= promised {
        return None;
    }
    Some(Finding {
        rule: Rule::Overdue,
        officer: case.handling_officer.clone(),
        occurred_on: promised + Days::new(1),
        detail: format!("promised for {promised}, still open on {today}"),
        evidence: refs(&[&case.screened, &case.promised_by]),
    })
}

impl ExchangeCase {
    /// Returns the feedback deadline while no feedback is delivered.
    pub fn due_on(&self) -> Option<NaiveDate> {
        match self.delivered {
            Some(_) => None,
            None => self.deadline,
        }
    }
}

/// Applies an exchange request event to `case` and returns the findings it proves.
pub fn detect_exchange(case: &mut ExchangeCase, event: RequestEvent, at: &EventRef) -> Detected {
    let mut detected = Detected::default();
    match event {
        RequestEvent::RequestReceived {
            agreement,
            deadline,
            officer,
            ..
        } => {
            case.cadence = agreement.cadence.map(|cadence| cadence.code().to_string());
            case.unit = agreement.household_unit;
            case.officer = officer;
            case.deadline = Some(deadline);
            case.received = Some(at.clone());
        }
        RequestEvent::FeedbackDelivered {
            delivered_at,
            deadline,
            officer,
            ..
        } => {
            case.delivered = Some(at.clone());
            let delivered_on = china_date(delivered_at);
            case.delivered_on = Some(delivered_on);
            if delivered_on > deadline {
                detected.findings.push(Finding {
                    rule: Rule::FeedbackLate,
                    officer,
                    occurred_on: deadline + Days::new(1),
                    detail: format!("feedback due by {deadline}, delivered on {delivered_on}"),
                    evidence: refs(&[&case.received, &Some(at.clone())]),
                });
            } else {
                detected.cleared.push(Rule::FeedbackLate);
            }
        }
        RequestEvent::RequestVerified { .. }
        | RequestEvent::HandoverPrepared { .. }
        | RequestEvent::HandoverAcknowledged { .. }
        | RequestEvent::RequestFiled { .. } => {}
    }
    detected
}

/// Returns the late-feedback finding of a request with no feedback after its deadline, as of
/// `today`.
pub fn feedback_missing(case: &ExchangeCase, today: NaiveDate) -> Option<Finding> {
    let deadline = case.due_on()?;
    if today <= deadline {
        return None;
    }
    Some(Finding {
        rule: Rule::FeedbackLate,
        officer: case.officer.clone(),
        occurred_on: deadline + Days::new(1),
        detail: format!("feedback due by {deadline}, not delivered on {today}"),
        evidence: refs(&[&case.received]),
    })
}

/// The state of one no-criminal-record application as the detectors need it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordCheckCase {
    pub station: String,
    pub handling_officer: String,
    /// The first check that found a record.
    pub record_found: Option<EventRef>,
    pub objection_filed: Option<EventRef>,
    pub objection_due: Option<NaiveDate>,
    pub objection_answered: bool,
}

impl RecordCheckCase {
    /// Returns the objection's due date while it is unanswered.
    pub fn due_on(&self) -> Option<NaiveDate> {
        if self.objection_answered {
            return None;
        }
        self.objection_due
    }
}

/// Applies a no-criminal-record event to `case` and returns the findings it proves.
pub fn detect_record_check(
    case: &mut RecordCheckCase,
    event: RecordCheckEvent,
    context: &EventContext,
) -> Detected {
    let at = &context.at;
    let mut detected = Detected::default();
    match event {
        RecordCheckEvent::RecordCheckSubmitted {
            station,
            handling_officer,
            ..
        } => {
            case.station = station;
            case.handling_officer = handling_officer;
        }
        RecordCheckEvent::SourceChecked {
            counts_as_record: true,
            ..
        }
        | RecordCheckEvent::SourceRechecked {
            counts_as_record: true,
            ..
        } => {
            if case.record_found.is_none() {
                case.record_found = Some(at.clone());
            }
        }
        RecordCheckEvent::CertificateIssued {
            certificate_number,
            officer,
            issued_on,
            ..
        } => {
            if let Some(found) = &case.record_found {
                detected.findings.push(Finding {
                    rule: Rule::IssuedDespiteRecord,
                    officer,
                    occurred_on: issued_on,
                    detail: format!(
                        "certificate {certificate_number} was issued after the check at sequence {} found a record",
                        found.sequence
                    ),
                    evidence: vec![found.clone(), at.clone()],
                });
            }
        }
        RecordCheckEvent::ObjectionFiled { due_on, .. } => {
            case.objection_filed = Some(at.clone());
            case.objection_due = Some(due_on);
            case.objection_answered = false;
        }
        RecordCheckEvent::ObjectionExtended { due_on, .. } => case.objection_due = Some(due_on),
        RecordCheckEvent::ObjectionAnswered {
            leader,
            answered_on,
            ..
        } => {
            case.objection_answered = true;
            match case.objection_due {
                Some(due) if answered_on > due => detected.findings.push(Finding {
                    rule: Rule::ObjectionOverdue,
                    officer: leader,
                    occurred_on: due + Days::new(1),
                    detail: format!("objection due by {due}, answered on {answered_on}"),
                    evidence: refs(&[&case.objection_filed, &Some(at.clone())]),
                }),
                _ => detected.cleared.push(Rule::ObjectionOverdue),
            }
        }
        RecordCheckEvent::ResultsRead {
            reader,
            role,
            station,
            purpose,
        } => {
            let reader = Actor {
                officer_id: reader,
                role,
                station,
            };
            detected.findings = read_findings(
                &case.station,
                &case.handling_officer,
                reader,
                &purpose,
                context,
            );
        }
        RecordCheckEvent::SourceChecked { .. }
        | RecordCheckEvent::SourceRechecked { .. }
        | RecordCheckEvent::LeaderApproved { .. }
        | RecordCheckEvent::RecordCheckRefused { .. } => {}
    }
    detected
}

/// Returns the overdue-objection finding of an objection unanswered after its due date, as of
/// `today`.
pub fn objection_missing(case: &RecordCheckCase, today: NaiveDate) -> Option<Finding> {
    let due = case.due_on()?;
    if today <= due {
        return None;
    }
    Some(Finding {
        rule: Rule::ObjectionOverdue,
        officer: case.handling_officer.clone(),
        occurred_on: due + Days::new(1),
        detail: format!("objection due by {due}, not answered on {today}"),
        evidence: refs(&[&case.objection_filed]),
    })
}

/// The detectors' state of one unit verification visit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitVisitCase {
    pub station: String,
    pub handling_officer: String,
}

/// Applies a unit verification event to `case` and returns the findings it proves. Only the
/// reads of a visit's findings are examined: the rest of a visit is checked by its aggregate.
pub fn detect_unit_visit(
    case: &mut UnitVisitCase,
    event: UnitVisitEvent,
    context: &EventContext,
) -> Detected {
    let mut detected = Detected::default();
    match event {
        UnitVisitEvent::VisitRegistered {
            station,
            handling_officer,
            ..
        } => {
            case.station = station;
            case.handling_officer = handling_officer;
        }
        UnitVisitEvent::VisitResultsRead {
            reader,
            role,
            station,
            purpose,
        } => {
            let reader = Actor {
                officer_id: reader,
                role,
                station,
            };
            detected.findings = read_findings(
                &case.station,
                &case.handling_officer,
                reader,
                &purpose,
                context,
            );
        }
        UnitVisitEvent::VisitRefused { .. }
        | UnitVisitEvent::VisitChecked { .. }
        | UnitVisitEvent::VisitCertificateApproved { .. }
        | UnitVisitEvent::VisitCertificateIssued { .. } => {}
    }
    detected
}

/// Returns the findings of one read of criminal-record results in a case of `station` handled
/// by `handler`: no purpose stated, and a reader that the results' access rule rejects.
fn read_findings(
    station: &str,
    handler: &str,
    reader: Actor,
    purpose: &str,
    context: &EventContext,
) -> Vec<Finding> {
    let denial = check_results_access(&reader, station, handler)
        .is_err()
        .then_some("who does not handle the case, lead that station or inspect");
    let read = Read {
        data: "the criminal-record results",
        station,
        reader,
        purpose,
        denial,
    };
    read.findings(context)
}

/// Applies a read of an application's personal data to the application's `case` and returns
/// the findings it proves: no purpose stated, and a reader from another station who neither
/// inspects nor works for the provincial office. The station is the one the application's own
/// events name, not the one the read recorded.
pub fn detect_application_read(
    case: &ApplicationCase,
    event: ApplicationReadEvent,
    context: &EventContext,
) -> Detected {
    let ApplicationReadEvent::ApplicationRead {
        reader,
        role,
        station,
        purpose,
        ..
    } = event;
    let reader = Actor {
        officer_id: reader,
        role,
        station,
    };
    let denial = check_personal_data_access(&reader, &case.station)
        .is_err()
        .then_some("who neither works there nor inspects");
    let read = Read {
        data: "the personal data of an application",
        station: &case.station,
        reader,
        purpose: &purpose,
        denial,
    };
    Detected {
        findings: read.findings(context),
        ..Detected::default()
    }
}

/// One recorded read, for the rules every read follows.
struct Read<'a> {
    /// Data read, for the finding's detail: "the criminal-record results".
    data: &'static str,
    /// Station of the case read.
    station: &'a str,
    reader: Actor,
    purpose: &'a str,
    /// Reason the access rule rejects the reader, when it does.
    denial: Option<&'static str>,
}

impl Read<'_> {
    fn findings(self, context: &EventContext) -> Vec<Finding> {
        let mut findings = Vec::new();
        if !states_purpose(self.purpose) {
            findings.push(Finding {
                rule: Rule::ReadWithoutPurpose,
                officer: self.reader.officer_id.clone(),
                occurred_on: context.recorded_on,
                detail: format!("a read of {} stated no purpose", self.data),
                evidence: vec![context.at.clone()],
            });
        }
        if let Some(denial) = self.denial {
            findings.push(Finding {
                rule: Rule::ReadOutsideCase,
                detail: format!(
                    "a read of {} of station {} by a {} of station {}, {denial}",
                    self.data,
                    self.station,
                    self.reader.role.code(),
                    self.reader.station
                ),
                officer: self.reader.officer_id,
                occurred_on: context.recorded_on,
                evidence: vec![context.at.clone()],
            });
        }
        findings
    }
}
