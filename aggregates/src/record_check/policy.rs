//! The criminal-record part of the policy document: the purposes a citizen may ask for a
//! no-criminal-record certificate, the record systems to check, how findings are read, the
//! deadlines, and which units qualify for in-person unit verification.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::policy::{PolicyError, Role};

/// The `[criminal_records]` table of the policy document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriminalRecordPolicy {
    /// Roles that handle a no-criminal-record application or a unit verification visit.
    pub handling_roles: Vec<Role>,
    /// Working days from the decision date to the promised completion date.
    pub time_limit_working_days: u32,
    /// When false, a finding of administrative violations only reads as "no record".
    pub administrative_violations_are_records: bool,
    /// When true, a sealed juvenile record reads as "no record".
    pub sealed_juvenile_records_read_as_no_record: bool,
    /// Working days from the filing of an objection to its answer.
    pub objection_answer_working_days: u32,
    /// Working days from the filing to the answer once the station extends the deadline.
    pub objection_extended_working_days: u32,
    pub purposes: Vec<Purpose>,
    pub sources: Vec<RecordSource>,
    pub unit_verification: UnitVerificationPolicy,
}

/// A purpose for which a citizen may ask for a no-criminal-record certificate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    pub code: String,
    pub description: String,
}

/// A record system or archive that an investigation checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSource {
    pub code: String,
    pub name: String,
    /// Issuance requires a recorded check of every mandatory source.
    pub mandatory: bool,
}

/// Rules of unit verification: the units that qualify, and the refusal given to the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitVerificationPolicy {
    /// Unit types a visit may name, qualifying or not.
    pub unit_types: Vec<UnitType>,
    pub purposes: Vec<Purpose>,
    /// Rules read in order; the first whose unit type and purpose match qualifies the visit.
    pub qualifying: Vec<QualifyingRule>,
    /// The refusal principle for a unit no rule qualifies.
    pub refusal_principle: String,
    pub refusal_referral: String,
}

/// A kind of unit that may visit, such as a state organ or a private employer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitType {
    pub code: String,
    pub description: String,
}

/// Unit types that qualify for unit verification for the listed purposes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualifyingRule {
    pub id: String,
    pub unit_types: Vec<String>,
    pub purposes: Vec<String>,
}

/// Id recorded for the refusal of a visit that no qualifying rule matches.
pub const UNQUALIFIED_RULE_ID: &str = "unit_verification.unqualified";

impl UnitVerificationPolicy {
    /// Returns the first rule that qualifies a unit of `unit_type` visiting for `purpose`.
    pub fn qualifying_rule(&self, unit_type: &str, purpose: &str) -> Option<&QualifyingRule> {
        self.qualifying.iter().find(|rule| {
            rule.unit_types.iter().any(|code| code == unit_type)
                && rule.purposes.iter().any(|code| code == purpose)
        })
    }
}

impl CriminalRecordPolicy {
    /// Returns the purpose of a certificate application with `code`, if the policy lists it.
    pub fn purpose(&self, code: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|purpose| purpose.code == code)
    }

    /// Returns the record source with `code`, if the policy lists it.
    pub fn source(&self, code: &str) -> Option<&RecordSource> {
        self.sources.iter().find(|source| source.code == code)
    }

    /// Returns the codes of the mandatory sources.
    pub fn mandatory_sources(&self) -> impl Iterator<Item = &str> {
        let mandatory = self.sources.iter().filter(|source| source.mandatory);
        mandatory.map(|source| source.code.as_str())
    }

    /// Returns every source code, comma-separated, for error messages.
    pub fn source_codes(&self) -> String {
        let codes: Vec<&str> = self.sources.iter().map(|s| s.code.as_str()).collect();
        codes.join(", ")
    }

    /// Checks the table once at load.
    ///
    /// # Errors
    /// Fails on an empty or duplicate code, no mandatory source, no handling role, an
    /// extended objection deadline shorter than the ordinary one, or a qualifying rule that
    /// names an unknown unit type or visit purpose.
    pub fn check(&self, principles: &BTreeSet<&str>) -> Result<(), PolicyError> {
        let invalid = |field: &str, message: &str| PolicyError::Invalid {
            field: format!("criminal_records.{field}"),
            message: message.to_string(),
        };
        if self.handling_roles.is_empty() {
            return Err(invalid("handling_roles", "names no role"));
        }
        unique_codes(self.purposes.iter().map(|p| p.code.as_str()))
            .map_err(|message| invalid("purposes", &message))?;
        unique_codes(self.sources.iter().map(|s| s.code.as_str()))
            .map_err(|message| invalid("sources", &message))?;
        if self.mandatory_sources().next().is_none() {
            return Err(invalid("sources", "marks no source as mandatory"));
        }
        if self.objection_extended_working_days < self.objection_answer_working_days {
            return Err(invalid(
                "objection_extended_working_days",
                "is shorter than objection_answer_working_days",
            ));
        }
        let visits = &self.unit_verification;
        unique_codes(visits.purposes.iter().map(|p| p.code.as_str()))
            .map_err(|message| invalid("unit_verification.purposes", &message))?;
        if !principles.contains(visits.refusal_principle.as_str()) {
            return Err(invalid(
                "unit_verification.refusal_principle",
                "is not a principle of this policy",
            ));
        }
        unique_codes(visits.unit_types.iter().map(|t| t.code.as_str()))
            .map_err(|message| invalid("unit_verification.unit_types", &message))?;
        for rule in &visits.qualifying {
            let unknown_type = rule
                .unit_types
                .iter()
                .find(|code| !visits.unit_types.iter().any(|t| &t.code == *code));
            if let Some(code) = unknown_type {
                let message = format!("rule {} names unknown unit type {code}", rule.id);
                return Err(invalid("unit_verification.qualifying", &message));
            }
            let unknown = rule
                .purposes
                .iter()
                .find(|code| !visits.purposes.iter().any(|p| &p.code == *code));
            if let Some(code) = unknown {
                let message = format!("rule {} names unknown purpose {code}", rule.id);
                return Err(invalid("unit_verification.qualifying", &message));
            }
        }
        Ok(())
    }
}

fn unique_codes<'a>(codes: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for code in codes {
        if code.trim().is_empty() {
            return Err("contains an empty code".into());
        }
        if !seen.insert(code) {
            return Err(format!("lists {code} twice"));
        }
    }
    if seen.is_empty() {
        return Err("is empty".into());
    }
    Ok(())
}
