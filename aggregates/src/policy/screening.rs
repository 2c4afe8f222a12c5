//! Screening: deciding from the policy whether a request is issued, refused or referred.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Condition, Policy, Rule, RuleOutcome};
use crate::calendar::CalendarError;

/// Facts about a request that the rules read, by circumstance code.
pub type Circumstances = BTreeMap<String, bool>;

/// The unit that demands the certificate (用证单位).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestingUnit {
    pub name: String,
    /// A unit-type code, such as `bank`, `state_organ` or `private_enterprise`.
    pub unit_type: String,
    /// Administrative level: `national`, `provincial`, `city`, `county`, `township` or `none`.
    pub level: String,
    /// Whether a rule of a provincial-or-higher department requires this certificate.
    pub provincial_rule_requires: bool,
}

/// Administrative levels a requesting unit may have.
pub const UNIT_LEVELS: [&str; 6] = [
    "national",
    "provincial",
    "city",
    "county",
    "township",
    "none",
];

/// The outcome of screening, as recorded and as overridden.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Issue a certificate of `kind`; `transitional` marks an issuance that only the transition
    /// window allows.
    Issue { kind: String, transitional: bool },
    /// Refuse under `principle` and refer the citizen to `referral`.
    Refuse { principle: String, referral: String },
    /// Inside the transition window, a refusal with no police record to issue from: the officer
    /// explains why the station cannot issue.
    CannotIssue { principle: String, referral: String },
    /// The station verifies in person for a qualifying unit and issues no certificate.
    UnitVerification { referral: String },
}

impl Outcome {
    /// Returns the kind to issue, for an issuing outcome.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Outcome::Issue { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// A recorded screening decision and the rule behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreeningDecision {
    pub policy_version: String,
    pub rule_id: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub in_transition_window: bool,
    /// Promised completion date of an accepted application, in working days from the decision.
    pub promised_date: Option<NaiveDate>,
}

/// A reason a request could not be screened.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ScreeningError {
    #[error("matter {0} is not in policy; use a matter code from GET /v1/policy")]
    UnknownMatter(String),
    #[error(
        "circumstance {circumstance} is required for matter {matter}; state it as true or false"
    )]
    MissingCircumstance {
        matter: String,
        circumstance: String,
    },
    #[error("circumstance {circumstance} is not read by matter {matter}; remove it")]
    UnknownCircumstance {
        matter: String,
        circumstance: String,
    },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

impl Condition {
    fn holds(&self, unit: &RequestingUnit, circumstances: &Circumstances) -> bool {
        let facts_hold = self
            .circumstances
            .iter()
            .all(|(name, value)| circumstances.get(name) == Some(value));
        let unit_type_holds =
            self.unit_types.is_empty() || self.unit_types.contains(&unit.unit_type);
        let requirement_holds = self
            .provincial_rule_requires
            .is_none_or(|required| required == unit.provincial_rule_requires);
        facts_hold && unit_type_holds && requirement_holds
    }
}

impl Policy {
    /// Screens a request for `matter` decided on `decision_date`.
    ///
    /// Gates apply before the matter's own rules; the first rule whose condition holds decides.
    /// Inside the transition window a refusal becomes a transitional issuance where the rule
    /// names one, else an explained "cannot issue".
    ///
    /// # Errors
    /// Fails on an unknown matter, a missing or unexpected circumstance, and an accepted request
    /// whose promised date falls outside the calendar's years.
    pub fn screen(
        &self,
        matter: &str,
        unit: &RequestingUnit,
        circumstances: &Circumstances,
        decision_date: NaiveDate,
    ) -> Result<ScreeningDecision, ScreeningError> {
        let matter_rules = self
            .matters
            .get(matter)
            .ok_or_else(|| ScreeningError::UnknownMatter(matter.to_string()))?;
        for name in &matter_rules.circumstances {
            if !circumstances.contains_key(name) {
                let circumstance = name.clone();
                return Err(ScreeningError::MissingCircumstance {
                    matter: matter.into(),
                    circumstance,
                });
            }
        }
        if let Some(name) = circumstances
            .keys()
            .find(|name| !matter_rules.circumstances.contains(name))
        {
            let circumstance = name.clone();
            return Err(ScreeningError::UnknownCircumstance {
                matter: matter.into(),
                circumstance,
            });
        }
        let rule = self
            .gates
            .iter()
            .chain(&matter_rules.rules)
            .find(|rule| rule.when.holds(unit, circumstances))
            .expect("policy load checks that each matter ends with an unconditional rule");
        self.decide(
            rule,
            matter_rules.transitional_kind.as_deref(),
            decision_date,
        )
    }

    fn decide(
        &self,
        rule: &Rule,
        matter_transitional_kind: Option<&str>,
        decision_date: NaiveDate,
    ) -> Result<ScreeningDecision, ScreeningError> {
        let in_transition_window = self.transition.contains(decision_date);
        let outcome = match rule.then.clone() {
            RuleOutcome::Issue { kind } => Outcome::Issue {
                kind,
                transitional: false,
            },
            RuleOutcome::Refuse {
                principle,
                referral,
                transitional_kind,
            } if in_transition_window => {
                match transitional_kind.or(matter_transitional_kind.map(String::from)) {
                    Some(kind) => Outcome::Issue {
                        kind,
                        transitional: true,
                    },
                    None => Outcome::CannotIssue {
                        principle,
                        referral,
                    },
                }
            }
            RuleOutcome::Refuse {
                principle,
                referral,
                ..
            } => Outcome::Refuse {
                principle,
                referral,
            },
            RuleOutcome::UnitVerification { referral } => Outcome::UnitVerification { referral },
        };
        let promised_date = match outcome.kind() {
            Some(kind) => {
                let days = self.kinds[kind].time_limit_working_days;
                Some(self.calendar.add_working_days(decision_date, days)?)
            }
            None => None,
        };
        Ok(ScreeningDecision {
            policy_version: self.version.clone(),
            rule_id: rule.id.clone(),
            outcome,
            in_transition_window,
            promised_date,
        })
    }
}
