//! Unit verification (单位核查): a unit's staff member visits the station with an introduction
//! letter to verify whether a person has a criminal record. The policy decides which units
//! qualify. The officer records the systems checked, the result and what was disclosed, and a
//! written verification certificate follows only where a station leader approves the unit's
//! need for one.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::application::{ApplicationError, ApplicationServices, Person};
use crate::record_check::CheckResult;

pub mod commands;
pub mod events;
mod handle;
#[cfg(test)]
mod tests;

pub use commands::*;
pub use events::{IntroductionLetter, Unit, UnitVisitEvent};

/// The stage of a unit verification visit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitVisitStatus {
    #[default]
    NotRegistered,
    /// The unit qualifies; the officer checks the record systems next.
    Checking,
    /// The unit does not qualify, so nothing is checked or disclosed.
    Refused,
    /// The findings were recorded and disclosed to the unit.
    Checked,
    CertificateIssued,
}

/// The findings of a visit: systems checked, result and disclosure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitFindings {
    pub sources: Vec<String>,
    pub query_reference: String,
    pub result: CheckResult,
    pub counts_as_record: bool,
    pub disclosed: String,
    pub officer: String,
    pub checked_at: DateTime<Utc>,
}

/// The refusal of an unqualified unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRefusal {
    pub principle: String,
    pub explanation: String,
    pub referral: String,
    pub refused_on: NaiveDate,
}

/// The state of one unit verification visit, rebuilt from its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitVisit {
    pub status: UnitVisitStatus,
    pub unit: Option<Unit>,
    pub staff: Option<Person>,
    pub letter: Option<IntroductionLetter>,
    pub purpose: String,
    pub subject: Option<Person>,
    pub station: String,
    pub handling_officer: String,
    pub decision_date: Option<NaiveDate>,
    pub policy_version: String,
    pub rule_id: String,
    pub refusal: Option<VisitRefusal>,
    pub findings: Option<VisitFindings>,
    pub certificate_need: Option<String>,
    pub approved_by: Option<String>,
    pub certificate_number: Option<String>,
    pub closed_on: Option<NaiveDate>,
    /// Number of recorded reads of the findings.
    pub results_reads: u32,
}

impl Aggregate for UnitVisit {
    const TYPE: &'static str = "unit_visit";
    type Command = UnitVisitCommand;
    type Event = UnitVisitEvent;
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
            UnitVisitEvent::VisitRegistered {
                unit,
                staff,
                letter,
                purpose,
                subject,
                station,
                handling_officer,
                decision_date,
                policy_version,
                rule_id,
            } => {
                self.status = UnitVisitStatus::Checking;
                self.unit = Some(unit);
                self.staff = Some(staff);
                self.letter = Some(letter);
                self.purpose = purpose;
                self.subject = Some(subject);
                self.station = station;
                self.handling_officer = handling_officer;
                self.decision_date = Some(decision_date);
                self.policy_version = policy_version;
                self.rule_id = rule_id;
            }
            UnitVisitEvent::VisitRefused {
                principle,
                explanation,
                referral,
                refused_on,
                ..
            } => {
                self.status = UnitVisitStatus::Refused;
                self.closed_on = Some(refused_on);
                self.refusal = Some(VisitRefusal {
                    principle,
                    explanation,
                    referral,
                    refused_on,
                });
            }
            UnitVisitEvent::VisitChecked {
                sources,
                query_reference,
                result,
                counts_as_record,
                disclosed,
                officer,
                checked_at,
            } => {
                self.status = UnitVisitStatus::Checked;
                self.findings = Some(VisitFindings {
                    sources,
                    query_reference,
                    result,
                    counts_as_record,
                    disclosed,
                    officer,
                    checked_at,
                });
            }
            UnitVisitEvent::VisitCertificateApproved { leader, need, .. } => {
                self.approved_by = Some(leader);
                self.certificate_need = Some(need);
            }
            UnitVisitEvent::VisitCertificateIssued {
                certificate_number,
                issued_on,
                ..
            } => {
                self.status = UnitVisitStatus::CertificateIssued;
                self.certificate_number = Some(certificate_number);
                self.closed_on = Some(issued_on);
            }
            UnitVisitEvent::VisitResultsRead { .. } => self.results_reads += 1,
        }
    }
}
