//! An exchange agreement between a city or county household-administration department and
//! another department: how often they exchange and which items the department may verify.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::policy::Cadence;
use super::{ExchangeError, ExchangeServices, Result};
use crate::application::Actor;

/// An agreement as its events leave it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub registered: bool,
    /// City or county code of the household-administration department.
    pub household_unit: String,
    /// Code of the other department.
    pub department: String,
    pub cadence: Option<Cadence>,
    /// Item codes the department may ask to verify.
    pub items: Vec<String>,
    pub policy_version: String,
}

/// Records an agreement. The HTTP layer has checked that the unit and the department exist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterAgreement {
    pub actor: Actor,
    pub household_unit: String,
    pub department: String,
    pub cadence: Cadence,
    pub items: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AgreementEvent {
    AgreementRegistered {
        household_unit: String,
        department: String,
        cadence: Cadence,
        items: Vec<String>,
        policy_version: String,
        registered_by: String,
    },
}

impl DomainEvent for AgreementEvent {
    fn event_type(&self) -> String {
        "AgreementRegistered".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for Agreement {
    const TYPE: &'static str = "exchange_agreement";
    type Command = RegisterAgreement;
    type Event = AgreementEvent;
    type Error = ExchangeError;
    type Services = ExchangeServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        if self.registered {
            return Err(ExchangeError::conflict(
                "agreement_already_registered",
                "this agreement is already registered",
            ));
        }
        let policy = services.policies.current();
        check_items(&command.items, |code| policy.exchange.has_item(code))?;
        let event = AgreementEvent::AgreementRegistered {
            household_unit: command.household_unit,
            department: command.department,
            cadence: command.cadence,
            items: command.items,
            policy_version: policy.version.clone(),
            registered_by: command.actor.officer_id,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let AgreementEvent::AgreementRegistered {
            household_unit,
            department,
            cadence,
            items,
            policy_version,
            ..
        } = event;
        self.registered = true;
        self.household_unit = household_unit;
        self.department = department;
        self.cadence = Some(cadence);
        self.items = items;
        self.policy_version = policy_version;
    }
}

/// Rejects an empty item list, a repeated item, or an item `known` does not accept.
pub(crate) fn check_items(items: &[String], known: impl Fn(&str) -> bool) -> Result<()> {
    if items.is_empty() {
        return Err(ExchangeError::invalid(
            "missing_field",
            "items",
            "items is empty; list at least one information item from GET /v1/policy",
        ));
    }
    let mut seen = BTreeSet::new();
    for item in items {
        if !known(item) {
            return Err(ExchangeError::rejected(
                "unknown_item",
                "items",
                format!(
                    "item {item:?} is not allowed here; use the exchange items of GET /v1/policy or of the agreement"
                ),
            ));
        }
        if !seen.insert(item.as_str()) {
            return Err(ExchangeError::invalid(
                "duplicate_item",
                "items",
                format!("item {item:?} is listed twice; list each item once"),
            ));
        }
    }
    Ok(())
}
