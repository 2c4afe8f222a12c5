//! Command handling: each command is checked against the state and the policy, and either
//! yields its events or is rejected with nothing recorded.

use chrono::NaiveDate;

use super::commands::*;
use super::error::{ApplicationError, Result};
use super::events::{ApplicationEvent, Person};
use super::{Application, Status};
use crate::id_number::IdNumber;
use crate::policy::{
    CertificateKind, Outcome, Policy, PolicyBook, Role, ScreeningError, UNIT_LEVELS,
};

/// Minimum length, in characters, of a refusal explanation and an override justification.
pub const MIN_EXPLANATION_CHARS: usize = 10;

impl Application {
    /// Decides the events a command produces.
    ///
    /// # Errors
    /// Returns the first rule the command breaks; see [`ApplicationError`].
    pub fn decide(
        &self,
        command: ApplicationCommand,
        policies: &PolicyBook,
    ) -> Result<Vec<ApplicationEvent>> {
        if command.actor().role.supervises() {
            return Err(ApplicationError::forbidden(
                "inspector_reads_only",
                "role",
                "inspectors and provincial officers read supervision records and do not act on applications; use an officer of the station",
            ));
        }
        if let ApplicationCommand::Submit(command) = command {
            return self.submit(*command, policies.current());
        }
        if self.status == Status::NotSubmitted {
            return Err(ApplicationError::NotFound);
        }
        self.check_station(command.actor())?;
        if self.status.is_closed() {
            let message = format!(
                "application is already {}; no further command is accepted",
                self.status_name()
            );
            return Err(ApplicationError::conflict("application_closed", message));
        }
        let policy = self.policy(policies)?;
        match command {
            ApplicationCommand::Submit(_) => unreachable!("handled above"),
            ApplicationCommand::OverrideScreening(command) => {
                self.override_screening(command, policy)
            }
            ApplicationCommand::Refuse(command) => self.refuse(command),
            ApplicationCommand::RecordEvidence(command) => self.record_evidence(command, policy),
            ApplicationCommand::SignStub(command) => self.sign_stub(command, policy),
            ApplicationCommand::Approve(command) => self.approve(command, policy),
            ApplicationCommand::Issue(command) => self.issue(command, policy),
            ApplicationCommand::Withdraw(command) => self.withdraw(command),
        }
    }

    fn status_name(&self) -> String {
        serde_json::to_value(self.status)
            .ok()
            .and_then(|value| value.as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Returns the policy version the application was screened under.
    fn policy<'a>(&self, policies: &'a PolicyBook) -> Result<&'a Policy> {
        let version = self
            .screening
            .as_ref()
            .map(|decision| decision.policy_version.as_str());
        version
            .and_then(|version| policies.version(version))
            .ok_or_else(|| {
                let message = format!(
                    "policy version {} of this application is not loaded on this server",
                    version.unwrap_or("?")
                );
                ApplicationError::conflict("policy_version_unavailable", message)
            })
    }

    fn check_station(&self, actor: &Actor) -> Result<()> {
        if actor.station != self.station {
            let message = format!(
                "the application belongs to station {}; officers of station {} cannot act on it",
                self.station, actor.station
            );
            return Err(ApplicationError::forbidden(
                "other_station",
                "station",
                message,
            ));
        }
        Ok(())
    }

    fn check_date(&self, date: NaiveDate) -> Result<()> {
        match self.decision_date {
            Some(decided) if date < decided => {
                let message = format!(
                    "date {date} is before the decision date {decided}; use a date on or after it"
                );
                Err(ApplicationError::rejected(
                    "date_before_decision",
                    "date",
                    message,
                ))
            }
            _ => Ok(()),
        }
    }

    /// Returns the catalogue entry of the kind the application is accepted for.
    fn accepted_kind<'a>(&self, policy: &'a Policy) -> Result<&'a CertificateKind> {
        let kind = match (&self.status, &self.outcome) {
            (Status::Accepted, Some(outcome)) => outcome.kind(),
            _ => None,
        };
        let Some(kind) = kind else {
            let message = "screening did not accept this application for issuance; override it with a justification first";
            return Err(ApplicationError::conflict("not_accepted", message));
        };
        policy.kind(kind).ok_or_else(|| {
            ApplicationError::conflict(
                "unknown_kind",
                format!("kind {kind} is not in policy {}", policy.version),
            )
        })
    }

    fn submit(&self, command: SubmitApplication, policy: &Policy) -> Result<Vec<ApplicationEvent>> {
        if self.status != Status::NotSubmitted {
            return Err(ApplicationError::conflict(
                "already_submitted",
                "an application with this id was already submitted",
            ));
        }
        if command.station != command.actor.station {
            let message = format!(
                "officer of station {} cannot submit for station {}",
                command.actor.station, command.station
            );
            return Err(ApplicationError::forbidden(
                "other_station",
                "station",
                message,
            ));
        }
        let applicant = validate_person(&command.applicant, "applicant", command.decision_date)?;
        let agent = match &command.agent {
            Some(agent) => Some(validate_person(agent, "agent", command.decision_date)?),
            None => None,
        };
        reject_self_agent(&applicant, agent.as_ref())?;
        require_text(&command.purpose, "purpose")?;
        require_text(&command.unit.name, "unit.name")?;
        require_text(&command.unit.unit_type, "unit.unit_type")?;
        if !policy.unit_types.contains_key(&command.unit.unit_type) {
            let codes: Vec<&str> = policy.unit_types.keys().map(String::as_str).collect();
            let message = format!(
                "unit type {:?} is unknown; use one of {} (GET /v1/policy)",
                command.unit.unit_type,
                codes.join(", ")
            );
            return Err(ApplicationError::invalid(
                "unknown_unit_type",
                "unit.unit_type",
                message,
            ));
        }
        if !UNIT_LEVELS.contains(&command.unit.level.as_str()) {
            let message = format!(
                "unit level {:?} is unknown; use one of {}",
                command.unit.level,
                UNIT_LEVELS.join(", ")
            );
            return Err(ApplicationError::invalid(
                "invalid_unit_level",
                "unit.level",
                message,
            ));
        }
        let decision = policy
            .screen(
                &command.matter,
                &command.unit,
                &command.circumstances,
                command.decision_date,
            )
            .map_err(screening_error)?;
        let submitted = ApplicationEvent::ApplicationSubmitted {
            applicant,
            agent,
            unit: command.unit,
            matter: command.matter,
            circumstances: command.circumstances,
            purpose: command.purpose,
            station: command.station,
            decision_date: command.decision_date,
            handling_officer: command.actor.officer_id,
        };
        Ok(vec![
            submitted,
            ApplicationEvent::ApplicationScreened { decision },
        ])
    }

    fn override_screening(
        &self,
        command: OverrideScreening,
        policy: &Policy,
    ) -> Result<Vec<ApplicationEvent>> {
        require_explanation(&command.justification, "justification")?;
        if self.approved_by.is_some() {
            return Err(ApplicationError::conflict(
                "already_approved",
                "a station leader already approved this application; it can no longer be overridden",
            ));
        }
        let outcome = match command.outcome {
            OverrideOutcome::Issue { kind } => {
                if policy.kind(&kind).is_none() {
                    let message = format!(
                        "kind {kind} is not in the certificate catalogue of policy {}",
                        policy.version
                    );
                    return Err(ApplicationError::rejected(
                        "unknown_kind",
                        "outcome.kind",
                        message,
                    ));
                }
                Outcome::Issue {
                    kind,
                    transitional: false,
                }
            }
            OverrideOutcome::Refuse {
                principle,
                referral,
            } => {
                if !policy.principles.contains_key(&principle) {
                    let message = format!(
                        "principle {principle} is unknown; use one of {}",
                        principle_codes(policy)
                    );
                    return Err(ApplicationError::rejected(
                        "unknown_principle",
                        "outcome.principle",
                        message,
                    ));
                }
                require_text(&referral, "outcome.referral")?;
                Outcome::Refuse {
                    principle,
                    referral,
                }
            }
        };
        let previous = self
            .outcome
            .clone()
            .expect("a submitted application has an outcome");
        if previous == outcome {
            return Err(ApplicationError::rejected(
                "override_unchanged",
                "outcome",
                "the override names the outcome already in force",
            ));
        }
        let promised_date = self.promised_date_of(&outcome, policy)?;
        Ok(vec![ApplicationEvent::ScreeningOverridden {
            previous,
            outcome,
            justification: command.justification,
            officer: command.actor.officer_id,
            promised_date,
        }])
    }

    /// Returns the date a certificate is promised for when `outcome` issues one: the decision
    /// date plus the kind's time limit in working days, as screening computes it.
    fn promised_date_of(&self, outcome: &Outcome, policy: &Policy) -> Result<Option<NaiveDate>> {
        let (Some(kind), Some(decided)) = (outcome.kind(), self.decision_date) else {
            return Ok(None);
        };
        let days = policy
            .kind(kind)
            .map_or(0, |kind| kind.time_limit_working_days);
        promise(policy, decided, days).map(Some)
    }

    fn refuse(&self, command: RefuseApplication) -> Result<Vec<ApplicationEvent>> {
        let (principle, cannot_issue) = match &self.outcome {
            Some(Outcome::Refuse { principle, .. }) => (principle.clone(), false),
            Some(Outcome::CannotIssue { principle, .. }) => (principle.clone(), true),
            _ => {
                let message =
                    "screening decided to issue; override it with a justification before refusing";
                return Err(ApplicationError::conflict("not_refusable", message));
            }
        };
        require_explanation(&command.explanation, "explanation")?;
        require_text(&command.referral, "referral")?;
        self.check_date(command.date)?;
        Ok(vec![ApplicationEvent::ApplicationRefused {
            principle,
            referral: command.referral,
            explanation: command.explanation,
            cannot_issue,
            officer: command.actor.officer_id,
            refused_on: command.date,
        }])
    }

    fn record_evidence(
        &self,
        command: RecordEvidence,
        policy: &Policy,
    ) -> Result<Vec<ApplicationEvent>> {
        let kind = self.accepted_kind(policy)?;
        if !kind.evidence_sources.contains(&command.source) {
            let message = format!(
                "source {:?} is not accepted for {}; use one of {}",
                command.source,
                kind.code,
                kind.evidence_sources.join(", ")
            );
            return Err(ApplicationError::rejected(
                "source_not_allowed",
                "source",
                message,
            ));
        }
        require_text(&command.reference, "reference")?;
        Ok(vec![ApplicationEvent::EvidenceChecked {
            source: command.source,
            reference: command.reference,
            result: command.result,
            officer: command.actor.officer_id,
        }])
    }

    fn sign_stub(&self, command: SignStub, policy: &Policy) -> Result<Vec<ApplicationEvent>> {
        let kind = self.accepted_kind(policy)?;
        if !kind.stub_signature {
            let message = format!("{} certificates have no stub to sign", kind.code);
            return Err(ApplicationError::rejected(
                "signature_not_required",
                "signer",
                message,
            ));
        }
        if self.stub_signed {
            return Err(ApplicationError::conflict(
                "already_signed",
                "the stub is already signed",
            ));
        }
        let person = match command.signer {
            Signer::Applicant => self.applicant.as_ref(),
            Signer::Agent => self.agent.as_ref(),
        };
        let Some(person) = person else {
            return Err(ApplicationError::rejected(
                "no_agent",
                "signer",
                "the application names no agent; the applicant signs",
            ));
        };
        if person.name != command.name.trim() {
            let message = "signer name differs from the name recorded at submission; the recorded applicant or agent signs";
            return Err(ApplicationError::rejected(
                "signer_mismatch",
                "name",
                message,
            ));
        }
        let phone = validate_phone(&command.phone)?;
        Ok(vec![ApplicationEvent::StubSigned {
            signer: command.signer,
            name: person.name.clone(),
            phone,
        }])
    }

    fn approve(
        &self,
        command: ApproveApplication,
        policy: &Policy,
    ) -> Result<Vec<ApplicationEvent>> {
        let kind = self.accepted_kind(policy)?;
        if !kind.leader_approval {
            let message = format!("{} certificates need no leader approval", kind.code);
            return Err(ApplicationError::rejected(
                "approval_not_required",
                "kind",
                message,
            ));
        }
        if command.actor.role != Role::StationLeader {
            let message = format!(
                "only a station leader approves; the officer's role is {}",
                command.actor.role.code()
            );
            return Err(ApplicationError::forbidden("wrong_role", "role", message));
        }
        if command.actor.officer_id == self.handling_officer {
            let message =
                "the approver handles this application; another station leader must approve";
            return Err(ApplicationError::rejected(
                "approver_is_handler",
                "officer",
                message,
            ));
        }
        if self.approved_by.is_some() {
            return Err(ApplicationError::conflict(
                "already_approved",
                "the application is already approved",
            ));
        }
        self.check_evidence(kind)?;
        self.check_date(command.date)?;
        Ok(vec![ApplicationEvent::LeaderApproved {
            leader: command.actor.officer_id,
            approved_on: command.date,
        }])
    }

    fn issue(&self, command: IssueCertificate, policy: &Policy) -> Result<Vec<ApplicationEvent>> {
        let kind = self.accepted_kind(policy)?;
        if kind.code == crate::record_check::CERTIFICATE_KIND {
            // This workflow records one evidence check, but the certificate needs a check of
            // every mandatory record source and can never follow a found record.
            return Err(ApplicationError::rejected(
                "record_check_required",
                "kind",
                "no-criminal-record certificates are issued only through /v1/record-checks, which checks every mandatory record source; submit the applicant's form there",
            ));
        }
        if !kind.handling_roles.contains(&command.actor.role) {
            let roles: Vec<&str> = kind.handling_roles.iter().map(|role| role.code()).collect();
            let message = format!(
                "{} certificates are issued by {}; the officer's role is {}",
                kind.code,
                roles.join(" or "),
                command.actor.role.code()
            );
            return Err(ApplicationError::forbidden("wrong_role", "role", message));
        }
        if command.seal != kind.seal.code() {
            let message = format!(
                "{} certificates carry the {}, not {:?}",
                kind.code,
                kind.seal.code(),
                command.seal
            );
            return Err(ApplicationError::rejected("wrong_seal", "seal", message));
        }
        self.check_evidence(kind)?;
        if kind.stub_signature && !self.stub_signed {
            return Err(ApplicationError::rejected(
                "signature_missing",
                "signature",
                "the applicant or agent has not signed the stub",
            ));
        }
        if kind.leader_approval && self.approved_by.is_none() {
            return Err(ApplicationError::rejected(
                "approval_missing",
                "approval",
                "a station leader has not approved this application",
            ));
        }
        self.check_date(command.date)?;
        let transitional = matches!(
            self.outcome,
            Some(Outcome::Issue {
                transitional: true,
                ..
            })
        );
        Ok(vec![ApplicationEvent::CertificateIssued {
            certificate_number: command.certificate_number,
            kind: kind.code.clone(),
            seal: command.seal,
            officer: command.actor.officer_id,
            station: self.station.clone(),
            issued_on: command.date,
            transitional,
        }])
    }

    /// Checks that a source of the kind confirmed the fact and that none contradicted it.
    fn check_evidence(&self, kind: &CertificateKind) -> Result<()> {
        let relevant = self
            .evidence
            .iter()
            .filter(|check| kind.evidence_sources.contains(&check.source));
        let mut confirmed = false;
        for check in relevant {
            match check.result {
                EvidenceResult::Contradicts => {
                    let message = format!(
                        "source {} contradicts the fact (reference {}); the certificate cannot be issued",
                        check.source, check.reference
                    );
                    return Err(ApplicationError::rejected(
                        "evidence_contradicts",
                        "evidence",
                        message,
                    ));
                }
                EvidenceResult::Confirmed => confirmed = true,
                EvidenceResult::NotFound => {}
            }
        }
        if !confirmed {
            let message = format!(
                "no evidence check confirmed the fact; check one of {}",
                kind.evidence_sources.join(", ")
            );
            return Err(ApplicationError::rejected(
                "evidence_missing",
                "evidence",
                message,
            ));
        }
        Ok(())
    }

    fn withdraw(&self, command: WithdrawApplication) -> Result<Vec<ApplicationEvent>> {
        require_text(&command.reason, "reason")?;
        self.check_date(command.date)?;
        Ok(vec![ApplicationEvent::ApplicationWithdrawn {
            reason: command.reason,
            officer: command.actor.officer_id,
            withdrawn_on: command.date,
        }])
    }
}

fn principle_codes(policy: &Policy) -> String {
    policy
        .principles
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

fn screening_error(error: ScreeningError) -> ApplicationError {
    let message = error.to_string();
    match error {
        ScreeningError::UnknownMatter(_) => {
            ApplicationError::rejected("unknown_matter", "matter", message)
        }
        ScreeningError::MissingCircumstance { circumstance, .. } => ApplicationError::invalid(
            "missing_circumstance",
            &format!("circumstances.{circumstance}"),
            message,
        ),
        ScreeningError::UnknownCircumstance { circumstance, .. } => ApplicationError::invalid(
            "unknown_circumstance",
            &format!("circumstances.{circumstance}"),
            message,
        ),
        ScreeningError::Calendar(_) => {
            ApplicationError::rejected("date_outside_calendar", "decision_date", message)
        }
    }
}

/// Returns the date `days` working days after `decided`: the date a certificate is promised for.
///
/// # Errors
/// Returns `date_outside_calendar` when the working-day calendar does not cover the days.
pub(crate) fn promise(policy: &Policy, decided: NaiveDate, days: u32) -> Result<NaiveDate> {
    policy
        .calendar
        .add_working_days(decided, days)
        .map_err(|error| {
            ApplicationError::rejected("date_outside_calendar", "decision_date", error.to_string())
        })
}

/// Longest name accepted, in characters; the longest names on Chinese ID cards, including
/// transliterated names of minority languages, are well below it.
const MAX_NAME_CHARS: usize = 64;

/// Rejects an agent who is the applicant: an agent acts for someone else, and the stub and
/// the refusal notice name both.
pub(crate) fn reject_self_agent(applicant: &Person, agent: Option<&Person>) -> Result<()> {
    match agent {
        Some(agent) if agent.id_number == applicant.id_number => Err(ApplicationError::invalid(
            "agent_is_applicant",
            "agent.id_number",
            "the agent's ID number is the applicant's; leave out the agent when the applicant comes in person",
        )),
        _ => Ok(()),
    }
}

fn validate_person(input: &PersonInput, field: &str, decision_date: NaiveDate) -> Result<Person> {
    let name_field = format!("{field}.name");
    require_text(&input.name, &name_field)?;
    if input.name.trim().chars().count() > MAX_NAME_CHARS {
        let message = format!(
            "{name_field} has more than {MAX_NAME_CHARS} characters; give the name as on the ID card"
        );
        return Err(ApplicationError::invalid(
            "name_too_long",
            &name_field,
            message,
        ));
    }
    let id_field = format!("{field}.id_number");
    let id_number = IdNumber::parse(input.id_number.trim()).map_err(|error| {
        ApplicationError::invalid("invalid_id_number", &id_field, error.to_string())
    })?;
    if id_number.birth_date() > decision_date {
        let message = format!(
            "{id_field} encodes a birth date after the decision date; re-read the number from the card"
        );
        return Err(ApplicationError::invalid(
            "invalid_id_number",
            &id_field,
            message,
        ));
    }
    Ok(Person {
        name: input.name.trim().to_string(),
        id_number,
    })
}

fn require_text(value: &str, field: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(ApplicationError::invalid(
            "missing_field",
            field,
            format!("{field} is required"),
        ));
    }
    Ok(())
}

fn require_explanation(text: &str, field: &str) -> Result<()> {
    if text.trim().chars().count() < MIN_EXPLANATION_CHARS {
        let message = format!(
            "{field} must explain the decision to the citizen in at least {MIN_EXPLANATION_CHARS} characters"
        );
        let code = if field == "justification" {
            "justification_required"
        } else {
            "explanation_required"
        };
        return Err(ApplicationError::rejected(code, field, message));
    }
    Ok(())
}

/// Validates a mainland mobile number (11 digits starting 13–19) or a landline with area code
/// (0 + 2–3 digits, optional hyphen, 7–8 digits); returns it without spaces.
fn validate_phone(phone: &str) -> Result<String> {
    let phone: String = phone.chars().filter(|c| !c.is_whitespace()).collect();
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mobile = phone.len() == 11
        && digits_only(&phone)
        && phone.starts_with('1')
        && (b'3'..=b'9').contains(&phone.as_bytes()[1]);
    let landline = match phone.split_once('-') {
        Some((area, number)) => {
            area.starts_with('0')
                && (3..=4).contains(&area.len())
                && digits_only(area)
                && (7..=8).contains(&number.len())
                && digits_only(number)
        }
        None => phone.starts_with('0') && (10..=12).contains(&phone.len()) && digits_only(&phone),
    };
    if mobile || landline {
        return Ok(phone);
    }
    let message = "contact phone is invalid; give an 11-digit mobile number such as 13912345678 or a landline with area code such as 0431-88886666";
    Err(ApplicationError::invalid("invalid_phone", "phone", message))
}
