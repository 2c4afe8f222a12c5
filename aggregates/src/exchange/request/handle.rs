//! The rules of each request command.

use chrono::{DateTime, FixedOffset, NaiveDate};

use super::{
    AgreementTerms, BatchSummary, ExchangeRequest, HandoverParty, Material, RESULTS_FILE,
    RequestAction, RequestCommand, RequestEvent, RequestStatus, SUBJECTS_FILE,
};
use crate::application::Actor;
use crate::exchange::agreement::check_items;
use crate::exchange::{ExchangeError, Result, require_text};
use crate::policy::Policy;

/// Returns the calendar date of `time` in China Standard Time (UTC+8), the date deadlines
/// count from.
pub fn china_date(time: DateTime<FixedOffset>) -> NaiveDate {
    (time.to_utc() + chrono::Duration::hours(8)).date_naive()
}

/// Checks that `actor` may record a request under `agreement` with these items, and computes
/// its feedback deadline and the working days it allows.
///
/// # Errors
/// Fails when the unit has no responsible officer or `actor` is not that officer. Fails too
/// when the agreement was never registered, when an item is not in the agreement, or
/// when the calendar does not cover the days from receipt to the deadline.
pub fn check_receipt(
    policy: &Policy,
    actor: &Actor,
    responsible_officer: Option<&str>,
    agreement: &AgreementTerms,
    items: &[String],
    received_at: DateTime<FixedOffset>,
) -> Result<(NaiveDate, u32)> {
    check_responsible(actor, responsible_officer)?;
    let Some(cadence) = agreement.cadence else {
        return Err(ExchangeError::not_found(
            "agreement_not_found",
            "no agreement with this id is registered; check agreement_id",
        ));
    };
    check_items(items, |code| {
        agreement.items.iter().any(|item| item == code)
    })?;
    let received_on = china_date(received_at);
    let deadline = policy
        .exchange
        .deadline(&policy.calendar, cadence, received_on)?;
    Ok((deadline, policy.exchange.deadline_working_days(cadence)))
}

impl ExchangeRequest {
    /// Decides `command` on this state and returns the event it would record, without
    /// recording anything.
    ///
    /// # Errors
    /// Returns the rule the command breaks.
    pub fn decide(&self, command: RequestCommand, policy: &Policy) -> Result<RequestEvent> {
        let responsible = command.responsible_officer.as_deref();
        let action = match command.action {
            RequestAction::Receive {
                agreement,
                items,
                received_at,
                batch,
            } => {
                let actor = (&command.actor, responsible);
                return self.receive(policy, actor, agreement, items, received_at, batch);
            }
            other => other,
        };
        check_responsible(&command.actor, responsible)?;
        let officer = command.actor.officer_id;
        match action {
            RequestAction::Receive { .. } => unreachable!("receipt returned above"),
            RequestAction::RecordVerification(verification) => {
                self.require(RequestStatus::Received, "verify")?;
                Ok(RequestEvent::RequestVerified {
                    verification,
                    officer,
                })
            }
            RequestAction::DeliverFeedback { delivered_at } => {
                self.deliver_feedback(delivered_at, officer)
            }
            RequestAction::PrepareHandover {
                manifest,
                receiving_person,
            } => self.prepare_handover(manifest, receiving_person, officer),
            RequestAction::AcknowledgeHandover { party, name } => {
                self.acknowledge(party, name, officer)
            }
            RequestAction::File {
                registration_number,
                filed_on,
            } => self.file(registration_number, filed_on, officer),
        }
    }

    fn require(&self, status: RequestStatus, action: &str) -> Result<()> {
        if self.status == RequestStatus::NotReceived {
            return Err(ExchangeError::not_found(
                "request_not_found",
                "no exchange request with this id was received; check the request id",
            ));
        }
        if self.status != status {
            let message = format!(
                "cannot {action} a request whose status is {:?}; it must be {:?}",
                self.status, status
            );
            return Err(ExchangeError::conflict("wrong_request_status", message));
        }
        Ok(())
    }

    fn receive(
        &self,
        policy: &Policy,
        (actor, responsible): (&Actor, Option<&str>),
        agreement: AgreementTerms,
        items: Vec<String>,
        received_at: DateTime<FixedOffset>,
        batch: BatchSummary,
    ) -> Result<RequestEvent> {
        if self.status != RequestStatus::NotReceived {
            return Err(ExchangeError::conflict(
                "request_already_received",
                "this request is already recorded",
            ));
        }
        let (deadline, deadline_working_days) =
            check_receipt(policy, actor, responsible, &agreement, &items, received_at)?;
        if batch.subjects == 0 {
            return Err(ExchangeError::rejected(
                "empty_batch",
                "subjects",
                "the batch has no valid subject row; send at least one",
            ));
        }
        Ok(RequestEvent::RequestReceived {
            agreement,
            items,
            received_at,
            deadline,
            deadline_working_days,
            policy_version: policy.version.clone(),
            batch,
            officer: actor.officer_id.clone(),
        })
    }

    fn deliver_feedback(
        &self,
        delivered_at: DateTime<FixedOffset>,
        officer: String,
    ) -> Result<RequestEvent> {
        self.require(RequestStatus::Verified, "deliver feedback for")?;
        let (Some(received_at), Some(deadline), Some(verification)) =
            (self.received_at, self.deadline, &self.verification)
        else {
            unreachable!("a verified request has a receipt time, a deadline and a verification");
        };
        if delivered_at < received_at {
            return Err(ExchangeError::invalid(
                "delivered_before_received",
                "delivered_at",
                format!(
                    "delivered_at is before the request was received at {received_at}; send the real delivery time"
                ),
            ));
        }
        Ok(RequestEvent::FeedbackDelivered {
            result_sha256: verification.result_sha256.clone(),
            delivered_at,
            deadline,
            // The deadline is a whole working day in China Standard Time.
            on_time: china_date(delivered_at) <= deadline,
            officer,
        })
    }

    fn prepare_handover(
        &self,
        manifest: Vec<Material>,
        receiving_person: String,
        officer: String,
    ) -> Result<RequestEvent> {
        self.require(RequestStatus::FeedbackDelivered, "hand over")?;
        require_text("receiving_person", &receiving_person, 100)?;
        check_manifest(&manifest, &self.held_materials())?;
        Ok(RequestEvent::HandoverPrepared {
            manifest,
            handing_officer: officer,
            receiving_person: receiving_person.trim().to_string(),
        })
    }

    /// Returns the files whose digests the ledger stores: the batch and the result file.
    fn held_materials(&self) -> Vec<Material> {
        let mut held = vec![Material {
            name: SUBJECTS_FILE.to_string(),
            size: self.batch.file_bytes,
            sha256: self.batch.file_sha256.clone(),
        }];
        if let Some(verification) = &self.verification {
            held.push(Material {
                name: RESULTS_FILE.to_string(),
                size: verification.result_bytes,
                sha256: verification.result_sha256.clone(),
            });
        }
        held
    }

    fn acknowledge(
        &self,
        party: HandoverParty,
        name: String,
        officer: String,
    ) -> Result<RequestEvent> {
        self.require(
            RequestStatus::HandoverPrepared,
            "acknowledge the handover of",
        )?;
        let handover = self
            .handover
            .as_ref()
            .expect("a prepared handover is recorded");
        let (expected, done) = match party {
            HandoverParty::HandingOfficer => {
                (&handover.handing_officer, handover.handing_acknowledged)
            }
            HandoverParty::ReceivingPerson => {
                (&handover.receiving_person, handover.receiving_acknowledged)
            }
        };
        if done {
            return Err(ExchangeError::conflict(
                "already_acknowledged",
                "this party has already acknowledged the handover",
            ));
        }
        if name.trim() != expected {
            return Err(ExchangeError::rejected(
                "acknowledging_party_mismatch",
                "name",
                format!(
                    "the handover names {expected:?} for this party, not {name:?}; the named person must acknowledge"
                ),
            ));
        }
        if party == HandoverParty::HandingOfficer && officer != handover.handing_officer {
            return Err(ExchangeError::forbidden(
                "not_handing_officer",
                "party",
                "only the handing officer can acknowledge for the handing officer",
            ));
        }
        Ok(RequestEvent::HandoverAcknowledged {
            party,
            name: expected.clone(),
            recorded_by: officer,
        })
    }

    fn file(
        &self,
        registration_number: String,
        filed_on: NaiveDate,
        officer: String,
    ) -> Result<RequestEvent> {
        self.require(RequestStatus::HandoverPrepared, "file")?;
        let handover = self
            .handover
            .as_ref()
            .expect("a prepared handover is recorded");
        if !(handover.handing_acknowledged && handover.receiving_acknowledged) {
            return Err(ExchangeError::conflict(
                "handover_not_acknowledged",
                "both the handing officer and the receiving person must acknowledge the handover before filing",
            ));
        }
        Ok(RequestEvent::RequestFiled {
            registration_number,
            filed_on,
            officer,
        })
    }
}

/// Rejects a command from anyone but the unit's responsible officer, and any command in a unit
/// that has none.
fn check_responsible(actor: &Actor, responsible: Option<&str>) -> Result<()> {
    if actor.role.supervises() {
        return Err(ExchangeError::forbidden(
            "inspector_reads_only",
            "authorization",
            "inspectors and provincial officers read supervision records and do not handle exchange requests",
        ));
    }
    match responsible {
        None => Err(ExchangeError::rejected(
            "no_responsible_officer",
            "agreement_id",
            "the household-administration unit of this agreement has no responsible officer for exchange; designate one first",
        )),
        Some(officer) if officer != actor.officer_id => Err(ExchangeError::forbidden(
            "not_responsible_officer",
            "authorization",
            format!("only the unit's responsible officer ({officer}) handles exchange requests"),
        )),
        Some(_) => Ok(()),
    }
}

/// Checks each manifest entry, and that the batch and the result file are listed with the
/// recorded size and digest.
fn check_manifest(manifest: &[Material], held: &[Material]) -> Result<()> {
    if manifest.is_empty() {
        return Err(ExchangeError::invalid(
            "missing_field",
            "manifest",
            "manifest is empty; list every material handed over",
        ));
    }
    for (index, material) in manifest.iter().enumerate() {
        require_text(&format!("manifest[{index}].name"), &material.name, 200)?;
        let digest_ok = material.sha256.len() == 64
            && material
                .sha256
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if !digest_ok {
            return Err(ExchangeError::invalid(
                "invalid_sha256",
                &format!("manifest[{index}].sha256"),
                "sha256 must be 64 lowercase hexadecimal digits",
            ));
        }
        if manifest[..index]
            .iter()
            .any(|other| other.name == material.name)
        {
            return Err(ExchangeError::invalid(
                "duplicate_material",
                &format!("manifest[{index}].name"),
                format!("material {:?} is listed twice", material.name),
            ));
        }
    }
    for expected in held {
        let Some(index) = manifest.iter().position(|m| m.name == expected.name) else {
            return Err(ExchangeError::rejected(
                "material_missing",
                "manifest",
                format!(
                    "the manifest does not list {}, which the ledger holds; add it",
                    expected.name
                ),
            ));
        };
        let listed = &manifest[index];
        if listed.sha256 != expected.sha256 {
            return Err(ExchangeError::rejected(
                "material_digest_mismatch",
                &format!("manifest[{index}].sha256"),
                format!(
                    "the SHA-256 of {} is {} in the ledger, not {}; hand over the recorded file",
                    expected.name, expected.sha256, listed.sha256
                ),
            ));
        }
        if listed.size != expected.size {
            return Err(ExchangeError::rejected(
                "material_size_mismatch",
                &format!("manifest[{index}].size"),
                format!(
                    "{} has {} bytes in the ledger, not {}",
                    expected.name, expected.size, listed.size
                ),
            ));
        }
    }
    Ok(())
}
