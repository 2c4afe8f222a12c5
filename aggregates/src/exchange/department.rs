//! A department other than public security that verifies citizen information by exchange.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{ExchangeError, ExchangeServices, Result, require_text};
use crate::application::Actor;

/// A department, identified by its code (the aggregate id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Department {
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterDepartment {
    pub actor: Actor,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DepartmentEvent {
    DepartmentRegistered { name: String, registered_by: String },
}

impl DomainEvent for DepartmentEvent {
    fn event_type(&self) -> String {
        "DepartmentRegistered".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for Department {
    const TYPE: &'static str = "exchange_department";
    type Command = RegisterDepartment;
    type Event = DepartmentEvent;
    type Error = ExchangeError;
    type Services = ExchangeServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        if self.name.is_some() {
            return Err(ExchangeError::conflict(
                "department_already_registered",
                "a department with this code is already registered; choose another code",
            ));
        }
        require_text("name", &command.name, 200)?;
        let event = DepartmentEvent::DepartmentRegistered {
            name: command.name.trim().to_string(),
            registered_by: command.actor.officer_id,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let DepartmentEvent::DepartmentRegistered { name, .. } = event;
        self.name = Some(name);
    }
}
