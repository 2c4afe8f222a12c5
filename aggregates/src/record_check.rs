//! The no-criminal-record certificate (无违法犯罪记录核查证明): the application form, one
//! recorded check per record source, leader approval and issuance where nothing was found, a
//! refusal where a record was found, and the applicant's objection to that refusal.
//!
//! A certificate is never issued on an application where any check found a record: the finding
//! is kept in the state for good, and approval and issuance both test it.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::application::{ApplicationError, ApplicationServices, Person};

pub mod access;
pub mod commands;
pub mod events;
pub(crate) mod handle;
pub(crate) mod input;
mod objection;
mod policy;
#[cfg(test)]
mod tests;

pub use commands::*;
pub use events::RecordCheckEvent;
pub use policy::{
    CriminalRecordPolicy, Purpose, QualifyingRule, RecordSource, UNQUALIFIED_RULE_ID, UnitType,
    UnitVerificationPolicy,
};

/// Catalogue code of the no-criminal-record certificate. Only this workflow issues it.
pub const CERTIFICATE_KIND: &str = "no_criminal_record";

/// The stage of a no-criminal-record application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordCheckStatus {
    #[default]
    NotSubmitted,
    /// Sources are being checked; approval and issuance follow where nothing is found.
    Investigating,
    Issued,
    /// A record was found and the refusal notice was given; an objection may follow.
    Refused,
    /// An objection reversed the refusal; the applicant applies anew.
    RefusalReversed,
}

/// One recorded check of a record source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCheck {
    pub source: String,
    pub query_reference: String,
    pub result: CheckResult,
    pub counts_as_record: bool,
    pub officer: String,
    pub checked_at: DateTime<Utc>,
    /// True for a check made again for an objection.
    pub recheck: bool,
}

/// An applicant's objection to a refusal and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objection {
    pub reason: String,
    pub filed_on: NaiveDate,
    pub due_on: NaiveDate,
    pub extended: bool,
    pub extension_reason: Option<String>,
    pub decision: Option<ObjectionDecision>,
    pub answered_on: Option<NaiveDate>,
    pub answered_late: bool,
}

impl Objection {
    /// Tells whether the answer is overdue on `today`: answered after the due date, or still
    /// unanswered after it.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        match self.answered_on {
            Some(_) => self.answered_late,
            None => today > self.due_on,
        }
    }
}

/// The state of one no-criminal-record application, rebuilt from its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordCheck {
    pub status: RecordCheckStatus,
    pub applicant: Option<Person>,
    pub agent: Option<Person>,
    pub purpose: String,
    pub destination: String,
    pub station: String,
    pub handling_officer: String,
    pub decision_date: Option<NaiveDate>,
    pub policy_version: String,
    pub promised_date: Option<NaiveDate>,
    pub checks: Vec<SourceCheck>,
    /// True once any check found something the policy reads as a record; it never turns back.
    pub record_found: bool,
    pub approved_by: Option<String>,
    pub certificate_number: Option<String>,
    pub refusal_explanation: Option<String>,
    pub refused_on: Option<NaiveDate>,
    pub objection: Option<Objection>,
    pub closed_on: Option<NaiveDate>,
    /// Number of recorded reads of the results.
    pub results_reads: u32,
}

impl Aggregate for RecordCheck {
    const TYPE: &'static str = "record_check";
    type Command = RecordCheckCommand;
    type Event = RecordCheckEvent;
    // The same error type as applications, so the API maps both in one place.
    type Error = ApplicationError;
    type Services = ApplicationServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), ApplicationError> {
        let events = self.decide(command, &services.policies)?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            RecordCheckEvent::RecordCheckSubmitted {
                applicant,
                agent,
                purpose,
                destination,
                station,
                handling_officer,
                decision_date,
                policy_version,
                promised_date,
            } => {
                self.status = RecordCheckStatus::Investigating;
                self.applicant = Some(applicant);
                self.agent = agent;
                self.purpose = purpose;
                self.destination = destination;
                self.station = station;
                self.handling_officer = handling_officer;
                self.decision_date = Some(decision_date);
                self.policy_version = policy_version;
                self.promised_date = Some(promised_date);
            }
            RecordCheckEvent::SourceChecked {
                source,
                query_reference,
                result,
                counts_as_record,
                officer,
                checked_at,
            } => self.add_check(SourceCheck {
                source,
                query_reference,
                result,
                counts_as_record,
                officer,
                checked_at,
                recheck: false,
            }),
            RecordCheckEvent::SourceRechecked {
                source,
                query_reference,
                result,
                counts_as_record,
                officer,
                checked_at,
            } => self.add_check(SourceCheck {
                source,
                query_reference,
                result,
                counts_as_record,
                officer,
                checked_at,
                recheck: true,
            }),
            RecordCheckEvent::LeaderApproved { leader, .. } => self.approved_by = Some(leader),
            RecordCheckEvent::CertificateIssued {
                certificate_number,
                issued_on,
                ..
            } => {
                self.status = RecordCheckStatus::Issued;
                self.certificate_number = Some(certificate_number);
                self.closed_on = Some(issued_on);
            }
            RecordCheckEvent::RecordCheckRefused {
                explanation,
                refused_on,
                ..
            } => {
                self.status = RecordCheckStatus::Refused;
                self.refusal_explanation = Some(explanation);
                self.refused_on = Some(refused_on);
                self.closed_on = Some(refused_on);
            }
            RecordCheckEvent::ObjectionFiled {
                reason,
                filed_on,
                due_on,
                ..
            } => {
                self.objection = Some(Objection {
                    reason,
                    filed_on,
                    due_on,
                    extended: false,
                    extension_reason: None,
                    decision: None,
                    answered_on: None,
                    answered_late: false,
                });
            }
            RecordCheckEvent::ObjectionExtended { reason, due_on, .. } => {
                if let Some(objection) = &mut self.objection {
                    objection.extended = true;
                    objection.extension_reason = Some(reason);
                    objection.due_on = due_on;
                }
            }
            RecordCheckEvent::ObjectionAnswered {
                decision,
                answered_on,
                late,
                ..
            } => {
                if let Some(objection) = &mut self.objection {
                    objection.decision = Some(decision);
                    objection.answered_on = Some(answered_on);
                    objection.answered_late = late;
                }
                if decision == ObjectionDecision::Reversed {
                    self.status = RecordCheckStatus::RefusalReversed;
                }
            }
            RecordCheckEvent::ResultsRead { .. } => self.results_reads += 1,
        }
    }
}

impl RecordCheck {
    fn add_check(&mut self, check: SourceCheck) {
        // A re-check for an objection does not erase the finding that the refusal rests on.
        self.record_found |= check.counts_as_record;
        self.checks.push(check);
    }

    /// Returns the mandatory sources of `policy` that no check covers yet.
    pub fn unchecked_mandatory_sources<'a>(
        &self,
        policy: &'a CriminalRecordPolicy,
    ) -> Vec<&'a str> {
        policy
            .mandatory_sources()
            .filter(|code| !self.checks.iter().any(|check| check.source == *code))
            .collect()
    }
}
