//! Command handling of the investigation: each command is checked against the state and the
//! policy version of the application, and either yields its events or is rejected with nothing
//! recorded.

use chrono::NaiveDate;

use super::commands::*;
use super::events::RecordCheckEvent;
use super::input::{china_date, require_explanation, require_text, validate_person};
use super::{CriminalRecordPolicy, RecordCheck, RecordCheckStatus};
use crate::application::{Actor, ApplicationError, Result};
use crate::policy::{Policy, PolicyBook, Role, Seal};

impl RecordCheck {
    /// Decides the events a command produces.
    ///
    /// # Errors
    /// Returns the first rule the command breaks; see [`ApplicationError`].
    pub fn decide(
        &self,
        command: RecordCheckCommand,
        policies: &PolicyBook,
    ) -> Result<Vec<RecordCheckEvent>> {
        // Inspectors read results, each read recorded, and act on no application.
        if command.actor().role.supervises()
            && !matches!(command, RecordCheckCommand::ReadResults(_))
        {
            return Err(ApplicationError::forbidden(
                "inspector_reads_only",
                "role",
                "inspectors and provincial officers read supervision records and do not act on record checks; use an officer of the station",
            ));
        }
        if let RecordCheckCommand::Submit(command) = command {
            return self.submit(*command, policies.current());
        }
        if self.status == RecordCheckStatus::NotSubmitted {
            return Err(ApplicationError::NotFound);
        }
        if let RecordCheckCommand::ReadResults(command) = command {
            return self.read_results(command);
        }
        self.check_station(command.actor())?;
        let policy = policies.version(&self.policy_version).ok_or_else(|| {
            let message = format!(
                "policy version {} of this application is not loaded on this server",
                self.policy_version
            );
            ApplicationError::conflict("policy_version_unavailable", message)
        })?;
        match command {
            RecordCheckCommand::Submit(_) | RecordCheckCommand::ReadResults(_) => {
                unreachable!("handled above")
            }
            RecordCheckCommand::CheckSource(command) => self.check_source(command, policy),
            RecordCheckCommand::Approve(command) => self.approve(command, policy),
            RecordCheckCommand::Issue(command) => self.issue(command, policy),
            RecordCheckCommand::Refuse(command) => self.refuse(command, policy),
            RecordCheckCommand::FileObjection(command) => self.file_objection(command, policy),
            RecordCheckCommand::ExtendObjection(command) => self.extend_objection(command, policy),
            RecordCheckCommand::Recheck(command) => self.recheck(command, policy),
            RecordCheckCommand::AnswerObjection(command) => self.answer_objection(command, policy),
        }
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

    pub(super) fn check_date(&self, date: NaiveDate) -> Result<()> {
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

    fn require_investigating(&self) -> Result<()> {
        if self.status == RecordCheckStatus::Investigating {
            return Ok(());
        }
        let message = format!(
            "the application is {}; the investigation is closed",
            status_name(self.status)
        );
        Err(ApplicationError::conflict("investigation_closed", message))
    }

    fn submit(&self, command: SubmitRecordCheck, policy: &Policy) -> Result<Vec<RecordCheckEvent>> {
        if self.status != RecordCheckStatus::NotSubmitted {
            return Err(ApplicationError::conflict(
                "already_submitted",
                "an application with this id was already submitted",
            ));
        }
        let rules = &policy.criminal_records;
        check_handling_role(&command.actor, rules)?;
        let applicant = validate_person(&command.applicant, "applicant")?;
        let agent = match &command.agent {
            Some(agent) => Some(validate_person(agent, "agent")?),
            None => None,
        };
        crate::application::handle::reject_self_agent(&applicant, agent.as_ref())?;
        if rules.purpose(&command.purpose).is_none() {
            let codes: Vec<&str> = rules.purposes.iter().map(|p| p.code.as_str()).collect();
            let message = format!(
                "purpose {:?} does not allow a no-criminal-record certificate under policy {}; use one of {}",
                command.purpose,
                policy.version,
                codes.join(", ")
            );
            return Err(ApplicationError::rejected(
                "purpose_not_allowed",
                "purpose",
                message,
            ));
        }
        require_text(&command.destination, "destination")?;
        let promised_date = crate::application::handle::promise(
            policy,
            command.decision_date,
            rules.time_limit_working_days,
        )?;
        Ok(vec![RecordCheckEvent::RecordCheckSubmitted {
            applicant,
            agent,
            purpose: command.purpose,
            destination: command.destination.trim().to_string(),
            station: command.actor.station.clone(),
            handling_officer: command.actor.officer_id,
            decision_date: command.decision_date,
            policy_version: policy.version.clone(),
            promised_date,
        }])
    }

    /// Validates a source check and returns whether the policy reads its result as a record.
    pub(super) fn validate_check(
        &self,
        command: &CheckSource,
        rules: &CriminalRecordPolicy,
    ) -> Result<bool> {
        check_handling_role(&command.actor, rules)?;
        if rules.source(&command.source).is_none() {
            let message = format!(
                "source {:?} is not a record source of the policy; use one of {}",
                command.source,
                rules.source_codes()
            );
            return Err(ApplicationError::rejected(
                "unknown_source",
                "source",
                message,
            ));
        }
        require_text(&command.query_reference, "query_reference")?;
        if let Some(decided) = self.decision_date
            && china_date(command.checked_at) < decided
        {
            let message = format!(
                "checked_at {} is before the decision date {decided}",
                command.checked_at
            );
            return Err(ApplicationError::rejected(
                "date_before_decision",
                "checked_at",
                message,
            ));
        }
        Ok(counts_as_record(command.result, rules))
    }

    fn check_source(&self, command: CheckSource, policy: &Policy) -> Result<Vec<RecordCheckEvent>> {
        self.require_investigating()?;
        let counts_as_record = self.validate_check(&command, &policy.criminal_records)?;
        Ok(vec![RecordCheckEvent::SourceChecked {
            source: command.source,
            query_reference: command.query_reference.trim().to_string(),
            result: command.result,
            counts_as_record,
            officer: command.actor.officer_id,
            checked_at: command.checked_at,
        }])
    }

    /// Checks what approval and issuance both require: every mandatory source checked and no
    /// record found.
    fn check_clear(&self, rules: &CriminalRecordPolicy) -> Result<()> {
        if self.record_found {
            return Err(ApplicationError::rejected(
                "record_found",
                "checks",
                "a check found a record; this application can only be refused, never issued",
            ));
        }
        let missing = self.unchecked_mandatory_sources(rules);
        if !missing.is_empty() {
            let message = format!(
                "mandatory sources not checked yet: {}; record a check of each first",
                missing.join(", ")
            );
            return Err(ApplicationError::rejected(
                "mandatory_source_unchecked",
                "checks",
                message,
            ));
        }
        Ok(())
    }

    fn approve(
        &self,
        command: ApproveRecordCheck,
        policy: &Policy,
    ) -> Result<Vec<RecordCheckEvent>> {
        self.require_investigating()?;
        if command.actor.role != Role::StationLeader {
            let message = format!(
                "only a station leader approves; the officer's role is {}",
                command.actor.role.code()
            );
            return Err(ApplicationError::forbidden("wrong_role", "role", message));
        }
        if command.actor.officer_id == self.handling_officer {
            return Err(ApplicationError::rejected(
                "approver_is_handler",
                "officer",
                "the approver handles this application; another station leader must approve",
            ));
        }
        if self.approved_by.is_some() {
            return Err(ApplicationError::conflict(
                "already_approved",
                "the application is already approved",
            ));
        }
        self.check_clear(&policy.criminal_records)?;
        self.check_date(command.date)?;
        Ok(vec![RecordCheckEvent::LeaderApproved {
            leader: command.actor.officer_id,
            approved_on: command.date,
        }])
    }

    fn issue(
        &self,
        command: IssueRecordCertificate,
        policy: &Policy,
    ) -> Result<Vec<RecordCheckEvent>> {
        self.require_investigating()?;
        check_handling_role(&command.actor, &policy.criminal_records)?;
        if command.seal != Seal::OfficialSeal.code() {
            let message = format!(
                "no-criminal-record certificates carry the official_seal, not {:?}",
                command.seal
            );
            return Err(ApplicationError::rejected("wrong_seal", "seal", message));
        }
        self.check_clear(&policy.criminal_records)?;
        if self.approved_by.is_none() {
            return Err(ApplicationError::rejected(
                "approval_missing",
                "approval",
                "a station leader has not approved this application",
            ));
        }
        self.check_date(command.date)?;
        Ok(vec![RecordCheckEvent::CertificateIssued {
            certificate_number: command.certificate_number,
            seal: command.seal,
            officer: command.actor.officer_id,
            station: self.station.clone(),
            issued_on: command.date,
        }])
    }

    fn refuse(&self, command: WrittenAct, policy: &Policy) -> Result<Vec<RecordCheckEvent>> {
        self.require_investigating()?;
        if !self.record_found {
            return Err(ApplicationError::conflict(
                "no_record_found",
                "no check found a record; a no-criminal-record application is refused only when one does",
            ));
        }
        require_explanation(&command.text, "explanation")?;
        check_no_record_details(&command.text, "explanation", &policy.criminal_records)?;
        self.check_date(command.date)?;
        Ok(vec![RecordCheckEvent::RecordCheckRefused {
            explanation: command.text.trim().to_string(),
            officer: command.actor.officer_id,
            refused_on: command.date,
        }])
    }

    fn read_results(&self, command: ReadResults) -> Result<Vec<RecordCheckEvent>> {
        super::access::check_results_access(&command.actor, &self.station, &self.handling_officer)?;
        let purpose = super::access::require_purpose(&command.purpose)?;
        Ok(vec![RecordCheckEvent::ResultsRead {
            reader: command.actor.officer_id,
            role: command.actor.role,
            station: command.actor.station,
            purpose,
        }])
    }
}

pub(crate) fn check_handling_role(actor: &Actor, rules: &CriminalRecordPolicy) -> Result<()> {
    if rules.handling_roles.contains(&actor.role) {
        return Ok(());
    }
    let roles: Vec<&str> = rules
        .handling_roles
        .iter()
        .map(|role| role.code())
        .collect();
    let message = format!(
        "criminal-record checks are handled by {}; the officer's role is {}",
        roles.join(" or "),
        actor.role.code()
    );
    Err(ApplicationError::forbidden("wrong_role", "role", message))
}

/// Rejects a text for the applicant that names a record source or a kind of finding, because
/// refusal notices and objection answers must not reveal record details.
///
/// NOTE: this catches source codes, source names and finding codes only. An officer can still
/// describe a finding in other words, so the leader who approves must read the text.
pub(crate) fn check_no_record_details(
    text: &str,
    field: &str,
    rules: &CriminalRecordPolicy,
) -> Result<()> {
    let lower = text.to_lowercase();
    let findings = [
        "criminal_record",
        "administrative_violation",
        "sealed_juvenile_record",
    ];
    let sources = rules
        .sources
        .iter()
        .flat_map(|source| [source.code.as_str(), source.name.as_str()]);
    let named = findings
        .into_iter()
        .chain(sources)
        .find(|term| lower.contains(&term.to_lowercase()));
    if let Some(term) = named {
        let message = format!(
            "{field} names {term:?}; texts for the applicant must not reveal record sources or findings, so explain in general terms"
        );
        return Err(ApplicationError::rejected(
            "record_details_disclosed",
            field,
            message,
        ));
    }
    Ok(())
}

/// Reads a result under the policy options: administrative violations and sealed juvenile
/// records count as records only where the policy version says so.
pub(crate) fn counts_as_record(result: CheckResult, rules: &CriminalRecordPolicy) -> bool {
    match result {
        CheckResult::NoRecord => false,
        CheckResult::CriminalRecord => true,
        CheckResult::AdministrativeViolation => rules.administrative_violations_are_records,
        CheckResult::SealedJuvenileRecord => !rules.sealed_juvenile_records_read_as_no_record,
    }
}

pub(super) fn status_name(status: RecordCheckStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|value| value.as_str().map(String::from))
        .unwrap_or_default()
}
