//! Command handling of unit verification visits: each command is checked against the state and
//! the policy version of the visit, and either yields its events or is rejected with nothing
//! recorded.

use chrono::NaiveDate;

use super::commands::*;
use super::events::{IntroductionLetter, Unit, UnitVisitEvent};
use super::{UnitVisit, UnitVisitStatus};
use crate::application::{Actor, ApplicationError, Result};
use crate::policy::{Policy, PolicyBook, Role, Seal};
use crate::record_check::UNQUALIFIED_RULE_ID;
use crate::record_check::access::{check_results_access, require_purpose};
use crate::record_check::handle::{check_handling_role, counts_as_record};
use crate::record_check::input::{china_date, require_explanation, require_text, validate_person};

impl UnitVisit {
    /// Decides the events a command produces.
    ///
    /// # Errors
    /// Returns the first rule the command breaks; see [`ApplicationError`].
    pub fn decide(
        &self,
        command: UnitVisitCommand,
        policies: &PolicyBook,
    ) -> Result<Vec<UnitVisitEvent>> {
        // Inspectors read results, each read recorded, and act on no visit.
        if command.actor().role.supervises() && !matches!(command, UnitVisitCommand::ReadResults(_))
        {
            return Err(ApplicationError::forbidden(
                "inspector_reads_only",
                "role",
                "inspectors and provincial officers read supervision records and do not act on unit visits; use an officer of the station",
            ));
        }
        if let UnitVisitCommand::Register(command) = command {
            return self.register(*command, policies.current());
        }
        if self.status == UnitVisitStatus::NotRegistered {
            return Err(ApplicationError::NotFound);
        }
        if let UnitVisitCommand::ReadResults(command) = command {
            check_results_access(&command.actor, &self.station, &self.handling_officer)?;
            let purpose = require_purpose(&command.purpose)?;
            return Ok(vec![UnitVisitEvent::VisitResultsRead {
                reader: command.actor.officer_id,
                role: command.actor.role,
                station: command.actor.station,
                purpose,
            }]);
        }
        self.check_station(command.actor())?;
        let policy = policies.version(&self.policy_version).ok_or_else(|| {
            let message = format!(
                "policy version {} of this visit is not loaded on this server",
                self.policy_version
            );
            ApplicationError::conflict("policy_version_unavailable", message)
        })?;
        match command {
            UnitVisitCommand::Register(_) | UnitVisitCommand::ReadResults(_) => {
                unreachable!("handled above")
            }
            UnitVisitCommand::RecordFindings(command) => self.record_findings(command, policy),
            UnitVisitCommand::ApproveCertificate(command) => self.approve_certificate(command),
            UnitVisitCommand::IssueCertificate(command) => self.issue_certificate(command, policy),
        }
    }

    fn check_station(&self, actor: &Actor) -> Result<()> {
        if actor.station == self.station {
            return Ok(());
        }
        let message = format!(
            "the visit belongs to station {}; officers of station {} cannot act on it",
            self.station, actor.station
        );
        Err(ApplicationError::forbidden(
            "other_station",
            "station",
            message,
        ))
    }

    fn check_date(&self, date: NaiveDate, field: &str) -> Result<()> {
        match self.decision_date {
            Some(decided) if date < decided => {
                let message = format!(
                    "{field} {date} is before the visit date {decided}; use a date on or after it"
                );
                Err(ApplicationError::rejected(
                    "date_before_decision",
                    field,
                    message,
                ))
            }
            _ => Ok(()),
        }
    }

    fn require_status(&self, expected: UnitVisitStatus, action: &str) -> Result<()> {
        if self.status == expected {
            return Ok(());
        }
        let message = format!(
            "the visit is {}; {action} needs a visit that is {}",
            status_name(self.status),
            status_name(expected)
        );
        Err(ApplicationError::conflict("wrong_visit_status", message))
    }

    fn register(&self, command: RegisterVisit, policy: &Policy) -> Result<Vec<UnitVisitEvent>> {
        if self.status != UnitVisitStatus::NotRegistered {
            return Err(ApplicationError::conflict(
                "already_registered",
                "a visit with this id was already registered",
            ));
        }
        let rules = &policy.criminal_records;
        let visits = &rules.unit_verification;
        check_handling_role(&command.actor, rules)?;
        let unit = validate_unit(&command.unit, visits)?;
        let staff = validate_person(&command.staff, "staff")?;
        let letter = validate_letter(&command.letter, command.decision_date)?;
        if !visits.purposes.iter().any(|p| p.code == command.purpose) {
            let codes: Vec<&str> = visits.purposes.iter().map(|p| p.code.as_str()).collect();
            let message = format!(
                "purpose {:?} is not a visit purpose of policy {}; use one of {}",
                command.purpose,
                policy.version,
                codes.join(", ")
            );
            return Err(ApplicationError::invalid(
                "unknown_purpose",
                "purpose",
                message,
            ));
        }
        let subject = validate_person(&command.subject, "subject")?;

        let rule = visits.qualifying_rule(&unit.unit_type, &command.purpose);
        let rule_id = rule.map_or(UNQUALIFIED_RULE_ID, |rule| rule.id.as_str());
        let mut events = vec![UnitVisitEvent::VisitRegistered {
            unit: unit.clone(),
            staff,
            letter,
            purpose: command.purpose.clone(),
            subject,
            station: command.actor.station.clone(),
            handling_officer: command.actor.officer_id.clone(),
            decision_date: command.decision_date,
            policy_version: policy.version.clone(),
            rule_id: rule_id.to_string(),
        }];

        if rule.is_none() {
            let explanation = format!(
                "A unit of type {} visiting for {} does not qualify for unit verification under policy {}, so no record is checked or disclosed.",
                unit.unit_type, command.purpose, policy.version
            );
            events.push(UnitVisitEvent::VisitRefused {
                principle: visits.refusal_principle.clone(),
                explanation,
                referral: visits.refusal_referral.clone(),
                officer: command.actor.officer_id,
                refused_on: command.decision_date,
            });
        }
        Ok(events)
    }

    fn record_findings(
        &self,
        command: RecordVisitFindings,
        policy: &Policy,
    ) -> Result<Vec<UnitVisitEvent>> {
        self.require_status(UnitVisitStatus::Checking, "recording findings")?;
        let rules = &policy.criminal_records;
        check_handling_role(&command.actor, rules)?;
        let mut sources: Vec<String> = Vec::new();
        for source in &command.sources {
            if rules.source(source).is_none() {
                let message = format!(
                    "source {source:?} is not a record source of the policy; use one of {}",
                    rules.source_codes()
                );
                return Err(ApplicationError::invalid(
                    "unknown_source",
                    "sources",
                    message,
                ));
            }
            if sources.contains(source) {
                let message = format!("source {source} is listed twice; list each source once");
                return Err(ApplicationError::invalid(
                    "duplicate_source",
                    "sources",
                    message,
                ));
            }
            sources.push(source.clone());
        }
        let missing: Vec<&str> = rules
            .mandatory_sources()
            .filter(|code| !sources.iter().any(|source| source == code))
            .collect();
        if !missing.is_empty() {
            let message = format!(
                "mandatory sources not checked: {}; check each and list it in sources",
                missing.join(", ")
            );
            return Err(ApplicationError::rejected(
                "mandatory_source_unchecked",
                "sources",
                message,
            ));
        }
        require_text(&command.query_reference, "query_reference")?;
        require_text(&command.disclosed, "disclosed")?;
        self.check_date(china_date(command.checked_at), "checked_at")?;
        Ok(vec![UnitVisitEvent::VisitChecked {
            sources,
            query_reference: command.query_reference.trim().to_string(),
            result: command.result,
            counts_as_record: counts_as_record(command.result, rules),
            disclosed: command.disclosed.trim().to_string(),
            officer: command.actor.officer_id,
            checked_at: command.checked_at,
        }])
    }

    fn approve_certificate(&self, command: ApproveVisitCertificate) -> Result<Vec<UnitVisitEvent>> {
        self.require_status(UnitVisitStatus::Checked, "approving a certificate")?;
        if command.actor.role != Role::StationLeader {
            let message = format!(
                "only a station leader approves a verification certificate; the officer's role is {}",
                command.actor.role.code()
            );
            return Err(ApplicationError::forbidden("wrong_role", "role", message));
        }
        if command.actor.officer_id == self.handling_officer {
            return Err(ApplicationError::rejected(
                "approver_is_handler",
                "officer",
                "the approver handled this visit; another station leader must approve",
            ));
        }
        if self.approved_by.is_some() {
            return Err(ApplicationError::conflict(
                "already_approved",
                "the certificate of this visit is already approved",
            ));
        }
        require_explanation(&command.need, "need")?;
        self.check_date(command.date, "date")?;
        Ok(vec![UnitVisitEvent::VisitCertificateApproved {
            leader: command.actor.officer_id,
            need: command.need.trim().to_string(),
            approved_on: command.date,
        }])
    }

    fn issue_certificate(
        &self,
        command: IssueVisitCertificate,
        policy: &Policy,
    ) -> Result<Vec<UnitVisitEvent>> {
        self.require_status(UnitVisitStatus::Checked, "issuing a certificate")?;
        check_handling_role(&command.actor, &policy.criminal_records)?;
        if command.seal != Seal::OfficialSeal.code() {
            let message = format!(
                "verification certificates carry the official_seal, not {:?}",
                command.seal
            );
            return Err(ApplicationError::rejected("wrong_seal", "seal", message));
        }
        if self.approved_by.is_none() {
            return Err(ApplicationError::rejected(
                "approval_missing",
                "approval",
                "a station leader has not approved a certificate for this visit; the unit's need must be approved first",
            ));
        }
        self.check_date(command.date, "date")?;
        Ok(vec![UnitVisitEvent::VisitCertificateIssued {
            certificate_number: command.certificate_number,
            seal: command.seal,
            officer: command.actor.officer_id,
            station: self.station.clone(),
            issued_on: command.date,
        }])
    }
}

fn validate_unit(
    input: &UnitInput,
    visits: &crate::record_check::UnitVerificationPolicy,
) -> Result<Unit> {
    require_text(&input.name, "unit.name")?;
    require_text(&input.level, "unit.level")?;
    if !visits.unit_types.iter().any(|t| t.code == input.unit_type) {
        let codes: Vec<&str> = visits.unit_types.iter().map(|t| t.code.as_str()).collect();
        let message = format!(
            "unit type {:?} is unknown; use one of {}",
            input.unit_type,
            codes.join(", ")
        );
        return Err(ApplicationError::invalid(
            "unknown_unit_type",
            "unit.unit_type",
            message,
        ));
    }
    Ok(Unit {
        name: input.name.trim().to_string(),
        unit_type: input.unit_type.clone(),
        level: input.level.trim().to_string(),
    })
}

fn validate_letter(input: &LetterInput, visit_date: NaiveDate) -> Result<IntroductionLetter> {
    require_text(&input.number, "letter.number")?;
    require_text(&input.issuing_unit, "letter.issuing_unit")?;
    if input.date > visit_date {
        let message = format!(
            "letter.date {} is after the visit date {visit_date}; check the date on the letter",
            input.date
        );
        return Err(ApplicationError::invalid(
            "letter_date_after_visit",
            "letter.date",
            message,
        ));
    }
    let digest = input.scan_sha256.trim().to_ascii_lowercase();
    if digest.len() != 64 || !digest.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(ApplicationError::invalid(
            "invalid_scan_digest",
            "letter.scan_sha256",
            "letter.scan_sha256 must be the SHA-256 of the scan as 64 hexadecimal digits",
        ));
    }
    Ok(IntroductionLetter {
        number: input.number.trim().to_string(),
        date: input.date,
        issuing_unit: input.issuing_unit.trim().to_string(),
        scan_sha256: digest,
    })
}

fn status_name(status: UnitVisitStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|value| value.as_str().map(String::from))
        .unwrap_or_default()
}
