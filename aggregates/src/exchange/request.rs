//! One exchange request: receipt with its subject batch, verification against the population
//! register, feedback against the deadline, handover of the materials, and filing.
//!
//! The per-subject rows are not events, because a batch of 100,000 subjects would otherwise be
//! 100,000 events. The events record digests and counts instead, and the rows live in plain
//! tables (`exchange_subjects`, `exchange_results`) whose content those digests pin down. Anyone
//! can recompute `rows_sha256` and `result_sha256` from the tables and compare.

use chrono::{DateTime, FixedOffset, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::policy::Cadence;
use super::{ExchangeError, ExchangeServices, Result};
use crate::application::Actor;

mod handle;
#[cfg(test)]
mod tests;

pub use handle::{check_receipt, china_date};

/// Name of the subject batch in a handover manifest.
pub const SUBJECTS_FILE: &str = "subjects.csv";
/// Name of the result file in a handover manifest.
pub const RESULTS_FILE: &str = "results.csv";

/// The stage of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    #[default]
    NotReceived,
    Received,
    Verified,
    FeedbackDelivered,
    HandoverPrepared,
    Filed,
}

/// The terms of the agreement a request arrives under, as the agreement's events left them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgreementTerms {
    pub agreement_id: String,
    pub household_unit: String,
    pub department: String,
    pub cadence: Option<Cadence>,
    pub items: Vec<String>,
}

/// The accepted subject batch: digests, size and counts. The rows are in `exchange_subjects`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// SHA-256 of the uploaded CSV file as received, lowercase hex.
    pub file_sha256: String,
    pub file_bytes: u64,
    /// SHA-256 over the accepted rows; see `docs/exchange.md` for the encoding.
    pub rows_sha256: String,
    pub subjects: u64,
    /// Rows left out because they were invalid; zero unless the caller chose to skip them.
    pub rejected_rows: u64,
}

/// The outcome of verification. The per-subject rows are in `exchange_results`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationSummary {
    /// SHA-256 of the result file, lowercase hex.
    pub result_sha256: String,
    pub result_bytes: u64,
    pub subjects: u64,
    /// Counts over every (subject, item) pair.
    pub matches: u64,
    pub mismatches: u64,
    pub not_found: u64,
}

/// One material of a handover: a file named with its size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A party that acknowledges a handover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HandoverParty {
    /// The responsible officer who hands the materials over.
    HandingOfficer,
    /// The person of the receiving department.
    ReceivingPerson,
}

/// A handover as recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub manifest: Vec<Material>,
    pub handing_officer: String,
    pub receiving_person: String,
    pub handing_acknowledged: bool,
    pub receiving_acknowledged: bool,
}

/// An exchange request as its events leave it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRequest {
    pub status: RequestStatus,
    pub agreement: AgreementTerms,
    pub items: Vec<String>,
    pub received_at: Option<DateTime<FixedOffset>>,
    pub deadline: Option<NaiveDate>,
    pub policy_version: String,
    pub batch: BatchSummary,
    pub verification: Option<VerificationSummary>,
    pub delivered_at: Option<DateTime<FixedOffset>>,
    pub on_time: Option<bool>,
    pub handover: Option<Handover>,
    pub registration_number: Option<String>,
}

/// A command together with the facts the HTTP layer read for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestCommand {
    pub actor: Actor,
    /// The unit's responsible officer now, or `None` if it has none.
    pub responsible_officer: Option<String>,
    pub action: RequestAction,
}

/// The action of a request command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RequestAction {
    Receive {
        agreement: AgreementTerms,
        items: Vec<String>,
        received_at: DateTime<FixedOffset>,
        batch: BatchSummary,
    },
    RecordVerification(VerificationSummary),
    DeliverFeedback {
        delivered_at: DateTime<FixedOffset>,
    },
    PrepareHandover {
        manifest: Vec<Material>,
        receiving_person: String,
    },
    AcknowledgeHandover {
        party: HandoverParty,
        name: String,
    },
    File {
        registration_number: String,
        filed_on: NaiveDate,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RequestEvent {
    RequestReceived {
        agreement: AgreementTerms,
        items: Vec<String>,
        received_at: DateTime<FixedOffset>,
        deadline: NaiveDate,
        deadline_working_days: u32,
        policy_version: String,
        batch: BatchSummary,
        officer: String,
    },
    RequestVerified {
        verification: VerificationSummary,
        officer: String,
    },
    FeedbackDelivered {
        result_sha256: String,
        delivered_at: DateTime<FixedOffset>,
        deadline: NaiveDate,
        on_time: bool,
        officer: String,
    },
    HandoverPrepared {
        manifest: Vec<Material>,
        handing_officer: String,
        receiving_person: String,
    },
    HandoverAcknowledged {
        party: HandoverParty,
        name: String,
        recorded_by: String,
    },
    RequestFiled {
        registration_number: String,
        filed_on: NaiveDate,
        officer: String,
    },
}

impl DomainEvent for RequestEvent {
    fn event_type(&self) -> String {
        match self {
            RequestEvent::RequestReceived { .. } => "RequestReceived",
            RequestEvent::RequestVerified { .. } => "RequestVerified",
            RequestEvent::FeedbackDelivered { .. } => "FeedbackDelivered",
            RequestEvent::HandoverPrepared { .. } => "HandoverPrepared",
            RequestEvent::HandoverAcknowledged { .. } => "HandoverAcknowledged",
            RequestEvent::RequestFiled { .. } => "RequestFiled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for ExchangeRequest {
    const TYPE: &'static str = "exchange_request";
    type Command = RequestCommand;
    type Event = RequestEvent;
    type Error = ExchangeError;
    type Services = ExchangeServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        let event = self.decide(command, services.policies.current())?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            RequestEvent::RequestReceived {
                agreement,
                items,
                received_at,
                deadline,
                policy_version,
                batch,
                ..
            } => {
                self.status = RequestStatus::Received;
                self.agreement = agreement;
                self.items = items;
                self.received_at = Some(received_at);
                self.deadline = Some(deadline);
                self.policy_version = policy_version;
                self.batch = batch;
            }
            RequestEvent::RequestVerified { verification, .. } => {
                self.status = RequestStatus::Verified;
                self.verification = Some(verification);
            }
            RequestEvent::FeedbackDelivered {
                delivered_at,
                on_time,
                ..
            } => {
                self.status = RequestStatus::FeedbackDelivered;
                self.delivered_at = Some(delivered_at);
                self.on_time = Some(on_time);
            }
            RequestEvent::HandoverPrepared {
                manifest,
                handing_officer,
                receiving_person,
            } => {
                self.status = RequestStatus::HandoverPrepared;
                self.handover = Some(Handover {
                    manifest,
                    handing_officer,
                    receiving_person,
                    ..Handover::default()
                });
            }
            RequestEvent::HandoverAcknowledged { party, .. } => {
                if let Some(handover) = &mut self.handover {
                    match party {
                        HandoverParty::HandingOfficer => handover.handing_acknowledged = true,
                        HandoverParty::ReceivingPerson => handover.receiving_acknowledged = true,
                    }
                }
            }
            RequestEvent::RequestFiled {
                registration_number,
                ..
            } => {
                self.status = RequestStatus::Filed;
                self.registration_number = Some(registration_number);
            }
        }
    }
}
