//! The exchange duty of a city or county household-administration department: exactly one
//! responsible officer (责任民警) at any time, and every change of designation recorded.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{ExchangeError, ExchangeServices, Result, require_text};
use crate::application::Actor;

/// The exchange duty of one unit; the aggregate id is the city or county code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExchangeUnit {
    pub responsible_officer: Option<String>,
}

/// Designates `officer`. While an officer is designated, a new designation must name the
/// officer it replaces and a reason, so that two leaders cannot each appoint one unknowingly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesignateResponsibleOfficer {
    pub actor: Actor,
    pub officer: String,
    pub replaces: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UnitEvent {
    ResponsibleOfficerDesignated {
        officer: String,
        designated_by: String,
    },
    ResponsibleOfficerChanged {
        previous: String,
        officer: String,
        reason: String,
        designated_by: String,
    },
}

impl DomainEvent for UnitEvent {
    fn event_type(&self) -> String {
        match self {
            UnitEvent::ResponsibleOfficerDesignated { .. } => "ResponsibleOfficerDesignated",
            UnitEvent::ResponsibleOfficerChanged { .. } => "ResponsibleOfficerChanged",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for ExchangeUnit {
    const TYPE: &'static str = "exchange_unit";
    type Command = DesignateResponsibleOfficer;
    type Event = UnitEvent;
    type Error = ExchangeError;
    type Services = ExchangeServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        let event = self.designate(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UnitEvent::ResponsibleOfficerDesignated { officer, .. }
            | UnitEvent::ResponsibleOfficerChanged { officer, .. } => {
                self.responsible_officer = Some(officer);
            }
        }
    }
}

impl ExchangeUnit {
    fn designate(&self, command: DesignateResponsibleOfficer) -> Result<UnitEvent> {
        let designated_by = command.actor.officer_id;
        let Some(current) = &self.responsible_officer else {
            if command.replaces.is_some() {
                return Err(ExchangeError::conflict(
                    "no_responsible_officer",
                    "this unit has no responsible officer to replace; omit replaces",
                ));
            }
            return Ok(UnitEvent::ResponsibleOfficerDesignated {
                officer: command.officer,
                designated_by,
            });
        };
        match command.replaces.as_deref() {
            None => Err(ExchangeError::conflict(
                "responsible_officer_already_designated",
                format!(
                    "this unit already has responsible officer {current}, and a unit has exactly \
                     one; to change the designation send replaces = {current:?} with a reason"
                ),
            )),
            Some(replaces) if replaces != current => Err(ExchangeError::conflict(
                "responsible_officer_changed",
                format!(
                    "replaces names {replaces} but the responsible officer is {current}; reload \
                     the unit and retry"
                ),
            )),
            Some(_) if command.officer == *current => Err(ExchangeError::conflict(
                "already_responsible_officer",
                format!("{current} is already the responsible officer"),
            )),
            Some(_) => {
                let reason = command.reason.unwrap_or_default();
                require_text("reason", &reason, 500)?;
                Ok(UnitEvent::ResponsibleOfficerChanged {
                    previous: current.clone(),
                    officer: command.officer,
                    reason,
                    designated_by,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Role;

    fn command(
        officer: &str,
        replaces: Option<&str>,
        reason: Option<&str>,
    ) -> DesignateResponsibleOfficer {
        DesignateResponsibleOfficer {
            actor: Actor {
                officer_id: "ld".into(),
                role: Role::StationLeader,
                station: "S1".into(),
            },
            officer: officer.into(),
            replaces: replaces.map(String::from),
            reason: reason.map(String::from),
        }
    }

    fn designated(officer: &str) -> ExchangeUnit {
        ExchangeUnit {
            responsible_officer: Some(officer.into()),
        }
    }

    #[test]
    fn first_designation_is_recorded() {
        let event = ExchangeUnit::default().designate(command("hh", None, None));
        assert!(
            matches!(event, Ok(UnitEvent::ResponsibleOfficerDesignated { officer, .. }) if officer == "hh")
        );
    }

    #[test]
    fn second_officer_without_replaces_is_rejected() {
        let error = designated("hh")
            .designate(command("hh9", None, None))
            .unwrap_err();
        assert_eq!(error.code(), "responsible_officer_already_designated");
    }

    #[test]
    fn change_names_previous_officer() {
        let event = designated("hh").designate(command("hh9", Some("hh"), Some("transfer")));
        let Ok(UnitEvent::ResponsibleOfficerChanged {
            previous, officer, ..
        }) = event
        else {
            panic!("expected a change, got {event:?}");
        };
        assert_eq!(previous, "hh");
        assert_eq!(officer, "hh9");
    }

    #[test]
    fn change_without_reason_is_rejected() {
        let error = designated("hh")
            .designate(command("hh9", Some("hh"), None))
            .unwrap_err();
        assert_eq!(error.field(), Some("reason"));
    }

    #[test]
    fn stale_replaces_is_rejected() {
        let error = designated("hh")
            .designate(command("hh9", Some("cm"), Some("x")))
            .unwrap_err();
        assert_eq!(error.code(), "responsible_officer_changed");
    }
}
