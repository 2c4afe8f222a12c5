//! The application aggregate: one request for a certificate, from submission and screening to
//! issuance, refusal, referral or withdrawal.

use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::policy::{Outcome, PolicyBook, ScreeningDecision};

pub mod commands;
mod error;
pub mod events;
pub(crate) mod handle;
#[cfg(test)]
mod tests;

pub use commands::*;
pub use error::{ApplicationError, Result};
pub use events::{ApplicationEvent, Person};
pub use handle::MIN_EXPLANATION_CHARS;

/// The stage of an application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No submission recorded yet.
    #[default]
    NotSubmitted,
    /// Screening decided to issue; evidence, signature, approval and issuance follow.
    Accepted,
    /// Screening decided to refuse or that the station cannot issue; a refusal with an
    /// explanation closes it.
    AwaitingRefusal,
    /// Closed: the station verifies in person for the requesting unit instead.
    Referred,
    Refused,
    Issued,
    Withdrawn,
}

impl Status {
    /// Tells whether no further command can change the application.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Status::Referred | Status::Refused | Status::Issued | Status::Withdrawn
        )
    }
}

/// One recorded evidence check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceCheck {
    pub source: String,
    pub reference: String,
    pub result: EvidenceResult,
    pub officer: String,
}

/// The state of one application, rebuilt from its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub status: Status,
    pub applicant: Option<Person>,
    pub agent: Option<Person>,
    pub matter: String,
    pub station: String,
    pub handling_officer: String,
    pub decision_date: Option<NaiveDate>,
    /// The screening decision as recorded at submission.
    pub screening: Option<ScreeningDecision>,
    /// The outcome in force: the screening outcome, or the last override.
    pub outcome: Option<Outcome>,
    pub overridden: bool,
    /// The date the certificate is promised for: screening's, or the last override's that
    /// issues one.
    #[serde(default)]
    pub promised_date: Option<NaiveDate>,
    pub evidence: Vec<EvidenceCheck>,
    pub stub_signed: bool,
    pub approved_by: Option<String>,
    pub certificate_number: Option<String>,
    pub refusal: Option<Refusal>,
    pub closed_on: Option<NaiveDate>,
}

/// A recorded refusal, for the written refusal notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub principle: String,
    pub referral: String,
    pub explanation: String,
    pub cannot_issue: bool,
    pub officer: String,
    pub refused_on: NaiveDate,
}

/// Services of the application aggregate: the policy versions.
#[derive(Clone, Debug)]
pub struct ApplicationServices {
    pub policies: Arc<PolicyBook>,
}

impl Aggregate for Application {
    const TYPE: &'static str = "application";
    type Command = ApplicationCommand;
    type Event = ApplicationEvent;
    type Error = ApplicationError;
    type Services = ApplicationServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        let events = self.decide(command, &services.policies)?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ApplicationEvent::ApplicationSubmitted {
                applicant,
                agent,
                matter,
                station,
                decision_date,
                handling_officer,
                ..
            } => {
                self.applicant = Some(applicant);
                self.agent = agent;
                self.matter = matter;
                self.station = station;
                self.decision_date = Some(decision_date);
                self.handling_officer = handling_officer;
            }
            ApplicationEvent::ApplicationScreened { decision } => {
                self.status = status_for(&decision.outcome);
                self.outcome = Some(decision.outcome.clone());
                self.promised_date = decision.promised_date;
                self.screening = Some(decision);
            }
            ApplicationEvent::ScreeningOverridden {
                outcome,
                promised_date,
                ..
            } => {
                self.status = status_for(&outcome);
                self.outcome = Some(outcome);
                self.overridden = true;
                if promised_date.is_some() {
                    self.promised_date = promised_date;
                }
            }
            ApplicationEvent::ApplicationRefused {
                principle,
                referral,
                explanation,
                cannot_issue,
                officer,
                refused_on,
            } => {
                self.status = Status::Refused;
                self.closed_on = Some(refused_on);
                self.refusal = Some(Refusal {
                    principle,
                    referral,
                    explanation,
                    cannot_issue,
                    officer,
                    refused_on,
                });
            }
            ApplicationEvent::EvidenceChecked {
                source,
                reference,
                result,
                officer,
            } => {
                self.evidence.push(EvidenceCheck {
                    source,
                    reference,
                    result,
                    officer,
                });
            }
            ApplicationEvent::StubSigned { .. } => self.stub_signed = true,
            ApplicationEvent::LeaderApproved { leader, .. } => self.approved_by = Some(leader),
            ApplicationEvent::CertificateIssued {
                certificate_number,
                issued_on,
                ..
            } => {
                self.status = Status::Issued;
                self.certificate_number = Some(certificate_number);
                self.closed_on = Some(issued_on);
            }
            ApplicationEvent::ApplicationWithdrawn { withdrawn_on, .. } => {
                self.status = Status::Withdrawn;
                self.closed_on = Some(withdrawn_on);
            }
        }
    }
}

fn status_for(outcome: &Outcome) -> Status {
    match outcome {
        Outcome::Issue { .. } => Status::Accepted,
        Outcome::Refuse { .. } | Outcome::CannotIssue { .. } => Status::AwaitingRefusal,
        Outcome::UnitVerification { .. } => Status::Referred,
    }
}
