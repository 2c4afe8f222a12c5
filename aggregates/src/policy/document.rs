//! The policy document as written in TOML, and its checks.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{
    CertificateKind, Matter, Policy, PolicyError, Principle, Rule, RuleOutcome, TransitionWindow,
};
use crate::calendar::WorkingDayCalendar;
use crate::record_check::CriminalRecordPolicy;
use crate::record_check::UnitType;

/// The four principle codes of the notice; a policy must define exactly these.
const PRINCIPLE_CODES: [&str; 4] = [
    "legal_document",
    "outside_police_duty",
    "information_exchange",
    "no_provincial_requirement",
];

/// The policy document as written; [`PolicyDocument::into_policy`] checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub version: String,
    pub transition: TransitionWindow,
    pub kinds: Vec<CertificateKind>,
    pub principles: Vec<Principle>,
    #[serde(default)]
    pub gates: Vec<Rule>,
    pub matters: Vec<Matter>,
    pub unit_types: Vec<UnitType>,
    pub criminal_records: CriminalRecordPolicy,
    pub exchange: crate::exchange::policy::ExchangePolicy,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl PolicyDocument {
    /// Checks every reference and builds the policy.
    ///
    /// # Errors
    /// See [`Policy::load`].
    pub fn into_policy(self, calendar: WorkingDayCalendar) -> Result<Policy, PolicyError> {
        if self.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        if self.transition.end < self.transition.start {
            return Err(invalid("transition", "end is before start"));
        }
        self.exchange.check()?;
        let mut unit_types = BTreeMap::new();
        for unit_type in self.unit_types {
            let field = format!("unit_types.{}", unit_type.code);
            if unit_types
                .insert(unit_type.code.clone(), unit_type.description)
                .is_some()
            {
                return Err(invalid(field, "is listed twice"));
            }
        }
        let named_types = self
            .gates
            .iter()
            .chain(self.matters.iter().flat_map(|matter| &matter.rules))
            .flat_map(|rule| &rule.when.unit_types)
            .chain(
                self.criminal_records
                    .unit_verification
                    .unit_types
                    .iter()
                    .map(|unit_type| &unit_type.code),
            );
        for code in named_types {
            if !unit_types.contains_key(code) {
                let message = format!("unit type {code} is named but not listed in unit_types");
                return Err(invalid("unit_types", message));
            }
        }
        let kinds = index_kinds(self.kinds)?;
        let principles = index_principles(self.principles)?;
        let mut rule_ids = BTreeSet::new();
        for rule in &self.gates {
            check_rule(rule, &kinds, &principles, &mut rule_ids)?;
        }
        let mut matters = BTreeMap::new();
        for matter in self.matters {
            check_matter(&matter, &kinds, &principles, &mut rule_ids)?;
            if matters.insert(matter.code.clone(), matter).is_some() {
                return Err(invalid("matters", "a matter code is listed twice"));
            }
        }
        let principle_codes = principles.keys().map(String::as_str).collect();
        self.criminal_records.check(&principle_codes)?;
        Ok(Policy {
            version: self.version,
            kinds,
            principles,
            gates: self.gates,
            matters,
            unit_types,
            transition: self.transition,
            calendar,
            criminal_records: self.criminal_records,
            exchange: self.exchange,
        })
    }
}

fn index_kinds(
    kinds: Vec<CertificateKind>,
) -> Result<BTreeMap<String, CertificateKind>, PolicyError> {
    let mut index = BTreeMap::new();
    for kind in kinds {
        let field = format!("kinds.{}", kind.code);
        if kind.handling_roles.is_empty() {
            return Err(invalid(field, "names no handling role"));
        }
        if let Some(role) = kind.handling_roles.iter().find(|role| role.supervises()) {
            let message = format!(
                "names {} as a handling role; supervising roles only read",
                role.code()
            );
            return Err(invalid(field, &message));
        }
        if kind.evidence_sources.is_empty() {
            return Err(invalid(field, "names no evidence source"));
        }
        if index.insert(kind.code.clone(), kind).is_some() {
            return Err(invalid(field, "is listed twice"));
        }
    }
    Ok(index)
}

fn index_principles(
    principles: Vec<Principle>,
) -> Result<BTreeMap<String, Principle>, PolicyError> {
    let mut index = BTreeMap::new();
    for principle in principles {
        if !PRINCIPLE_CODES.contains(&principle.code.as_str()) {
            let message = format!("is not one of {}", PRINCIPLE_CODES.join(", "));
            return Err(invalid(format!("principles.{}", principle.code), message));
        }
        index.insert(principle.code.clone(), principle);
    }
    if index.len() != PRINCIPLE_CODES.len() {
        return Err(invalid(
            "principles",
            "must define each of the four principles once",
        ));
    }
    Ok(index)
}

fn check_matter(
    matter: &Matter,
    kinds: &BTreeMap<String, CertificateKind>,
    principles: &BTreeMap<String, Principle>,
    rule_ids: &mut BTreeSet<String>,
) -> Result<(), PolicyError> {
    let field = format!("matters.{}", matter.code);
    if let Some(kind) = &matter.transitional_kind
        && !kinds.contains_key(kind)
    {
        return Err(invalid(
            field,
            format!("names unknown transitional kind {kind}"),
        ));
    }
    for rule in &matter.rules {
        check_rule(rule, kinds, principles, rule_ids)?;
        for name in rule.when.circumstances.keys() {
            if !matter.circumstances.contains(name) {
                let message = format!(
                    "rule {} reads circumstance {name}, which the matter does not declare",
                    rule.id
                );
                return Err(invalid(field, message));
            }
        }
    }
    // The last rule must apply unconditionally, so that screening always decides.
    match matter.rules.last() {
        Some(rule)
            if rule.when.circumstances.is_empty()
                && rule.when.unit_types.is_empty()
                && rule.when.provincial_rule_requires.is_none() =>
        {
            Ok(())
        }
        _ => Err(invalid(
            field,
            "last rule must have no condition, so that every request is decided",
        )),
    }
}

fn check_rule(
    rule: &Rule,
    kinds: &BTreeMap<String, CertificateKind>,
    principles: &BTreeMap<String, Principle>,
    rule_ids: &mut BTreeSet<String>,
) -> Result<(), PolicyError> {
    let field = format!("rule {}", rule.id);
    if !rule_ids.insert(rule.id.clone()) {
        return Err(invalid(field, "id is used twice"));
    }
    let known_kind = |code: &str| kinds.contains_key(code);
    match &rule.then {
        RuleOutcome::Issue { kind } if !known_kind(kind) => {
            Err(invalid(field, format!("issues unknown kind {kind}")))
        }
        RuleOutcome::Refuse { principle, .. } if !principles.contains_key(principle) => {
            Err(invalid(
                field,
                format!("refuses under unknown principle {principle}"),
            ))
        }
        RuleOutcome::Refuse { referral, .. } | RuleOutcome::UnitVerification { referral }
            if referral.trim().is_empty() =>
        {
            Err(invalid(field, "a refusal needs a referral"))
        }
        RuleOutcome::Refuse {
            transitional_kind: Some(kind),
            ..
        } if !known_kind(kind) => Err(invalid(
            field,
            format!("names unknown transitional kind {kind}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::{Policy, PolicyError, bundled};

    fn load_with(replace: &str, with: &str) -> Result<Policy, PolicyError> {
        assert!(
            bundled::DOCUMENT.contains(replace),
            "test edits text that exists: {replace}"
        );
        Policy::load(
            &bundled::DOCUMENT.replacen(replace, with, 1),
            bundled::CALENDAR_CSV,
        )
    }

    fn invalid_field(result: Result<Policy, PolicyError>) -> String {
        match result {
            Err(PolicyError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid policy, got {other:?}"),
        }
    }

    #[test]
    fn bundled_policy_loads() {
        let policy =
            Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("bundled policy loads");
        assert_eq!(policy.kinds.len(), 9);
        assert_eq!(policy.principles.len(), 4);
        assert!(policy.matters.len() >= 10);
    }

    #[test]
    fn unknown_kind_in_rule_is_rejected() {
        let field = invalid_field(load_with(
            "kind = \"household_item_change\"\n\n[[matters.rules]]",
            "kind = \"passport\"\n\n[[matters.rules]]",
        ));
        assert_eq!(field, "rule id_number_upgrade.sequence_changed");
    }

    #[test]
    fn unknown_principle_code_is_rejected() {
        let field = invalid_field(load_with(
            "code = \"information_exchange\"",
            "code = \"whim\"",
        ));
        assert_eq!(field, "principles.whim");
    }

    #[test]
    fn conditional_last_rule_is_rejected() {
        let edited =
            "id = \"alive_status.outside_duty\"\nwhen = { provincial_rule_requires = true }";
        let field = invalid_field(load_with("id = \"alive_status.outside_duty\"", edited));
        assert_eq!(field, "matters.alive_status");
    }

    #[test]
    fn undeclared_circumstance_is_rejected() {
        let field = invalid_field(load_with(
            "same_household_register = true } }",
            "same_register = true } }",
        ));
        assert_eq!(field, "matters.kinship");
    }

    #[test]
    fn inspector_handling_role_is_rejected() {
        let field = invalid_field(load_with(
            "code = \"kinship\"\nname = \"亲属关系证明\"\nhandling_roles = [\"household_officer\"]",
            "code = \"kinship\"\nname = \"亲属关系证明\"\nhandling_roles = [\"household_officer\", \"inspector\"]",
        ));
        assert_eq!(field, "kinds.kinship");
    }

    #[test]
    fn malformed_toml_is_a_syntax_error() {
        let result = Policy::load("version = ", bundled::CALENDAR_CSV);
        assert!(matches!(result, Err(PolicyError::Syntax(_))));
    }
}
