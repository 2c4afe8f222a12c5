//! The applicant's objection to a refusal (异议): filed, optionally extended once with a reason,
//! re-checked, and answered within the policy's working-day limit.

use super::commands::*;
use super::events::RecordCheckEvent;
use super::handle::{check_no_record_details, status_name};
use super::input::{china_date, require_explanation, require_text};
use super::{RecordCheck, RecordCheckStatus};
use crate::application::{ApplicationError, Result};
use crate::policy::{Policy, Role};

impl RecordCheck {
    fn open_objection(&self) -> Result<&super::Objection> {
        match &self.objection {
            Some(objection) if objection.decision.is_none() => Ok(objection),
            Some(_) => Err(ApplicationError::conflict(
                "objection_answered",
                "the objection is already answered",
            )),
            None => Err(ApplicationError::conflict(
                "no_objection",
                "no objection was filed against the refusal",
            )),
        }
    }

    fn calendar_error(error: crate::calendar::CalendarError) -> ApplicationError {
        ApplicationError::rejected("date_outside_calendar", "date", error.to_string())
    }

    pub(super) fn file_objection(
        &self,
        command: WrittenAct,
        policy: &Policy,
    ) -> Result<Vec<RecordCheckEvent>> {
        if self.status != RecordCheckStatus::Refused {
            let message = format!(
                "the application is {}; only a refusal can be objected to",
                status_name(self.status)
            );
            return Err(ApplicationError::conflict("not_refused", message));
        }
        if self.objection.is_some() {
            return Err(ApplicationError::conflict(
                "objection_exists",
                "an objection to this refusal was already filed",
            ));
        }
        require_text(&command.text, "reason")?;
        if let Some(refused_on) = self.refused_on
            && command.date < refused_on
        {
            let message = format!(
                "date {} is before the refusal on {refused_on}",
                command.date
            );
            return Err(ApplicationError::rejected(
                "date_before_refusal",
                "date",
                message,
            ));
        }
        let days = policy.criminal_records.objection_answer_working_days;
        let due_on = policy
            .calendar
            .add_working_days(command.date, days)
            .map_err(Self::calendar_error)?;
        Ok(vec![RecordCheckEvent::ObjectionFiled {
            reason: command.text.trim().to_string(),
            officer: command.actor.officer_id,
            filed_on: command.date,
            due_on,
        }])
    }

    pub(super) fn extend_objection(
        &self,
        command: WrittenAct,
        policy: &Policy,
    ) -> Result<Vec<RecordCheckEvent>> {
        let objection = self.open_objection()?;
        if objection.extended {
            return Err(ApplicationError::conflict(
                "already_extended",
                "the answer deadline was already extended once; it cannot be extended again",
            ));
        }
        require_explanation(&command.text, "reason")?;
        if command.date < objection.filed_on || command.date > objection.due_on {
            let message = format!(
                "an extension is decided between the filing on {} and the due date {}; {} is outside",
                objection.filed_on, objection.due_on, command.date
            );
            return Err(ApplicationError::rejected(
                "extension_out_of_time",
                "date",
                message,
            ));
        }
        let days = policy.criminal_records.objection_extended_working_days;
        let due_on = policy
            .calendar
            .add_working_days(objection.filed_on, days)
            .map_err(Self::calendar_error)?;
        Ok(vec![RecordCheckEvent::ObjectionExtended {
            reason: command.text.trim().to_string(),
            officer: command.actor.officer_id,
            extended_on: command.date,
            due_on,
        }])
    }

    pub(super) fn recheck(
        &self,
        command: CheckSource,
        policy: &Policy,
    ) -> Result<Vec<RecordCheckEvent>> {
        self.open_objection()?;
        let counts_as_record = self.validate_check(&command, &policy.criminal_records)?;
        Ok(vec![RecordCheckEvent::SourceRechecked {
            source: command.source,
            query_reference: command.query_reference.trim().to_string(),
            result: command.result,
            counts_as_record,
            officer: command.actor.officer_id,
            checked_at: command.checked_at,
        }])
    }

    pub(super) fn answer_objection(
        &self,
        command: AnswerObjection,
        policy: &Policy,
    ) -> Result<Vec<RecordCheckEvent>> {
        let objection = self.open_objection()?;
        if command.actor.role != Role::StationLeader {
            let message = format!(
                "a station leader answers an objection; the officer's role is {}",
                command.actor.role.code()
            );
            return Err(ApplicationError::forbidden("wrong_role", "role", message));
        }
        let rechecked = self
            .checks
            .iter()
            .any(|check| check.recheck && china_date(check.checked_at) >= objection.filed_on);
        if !rechecked {
            return Err(ApplicationError::rejected(
                "recheck_missing",
                "rechecks",
                "record a re-check of the sources before answering the objection",
            ));
        }
        require_explanation(&command.explanation, "explanation")?;
        check_no_record_details(
            &command.explanation,
            "explanation",
            &policy.criminal_records,
        )?;
        if command.date < objection.filed_on {
            let message = format!(
                "date {} is before the objection was filed on {}",
                command.date, objection.filed_on
            );
            return Err(ApplicationError::rejected(
                "date_before_objection",
                "date",
                message,
            ));
        }
        Ok(vec![RecordCheckEvent::ObjectionAnswered {
            decision: command.decision,
            explanation: command.explanation.trim().to_string(),
            leader: command.actor.officer_id,
            answered_on: command.date,
            late: command.date > objection.due_on,
        }])
    }
}
