//! The value formats of population-register fields, shared by the register loader and the
//! subject batches that claim values against it.

use chrono::NaiveDate;

use crate::id_number::IdNumber;

/// Maximum length of a free-text value, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

/// Checks a value of register `field` and returns it in the stored form, or the reason it is
/// invalid.
///
/// * `id_number`: a valid 18-character citizen ID number, with `X` upper-cased.
/// * `sex`: `male` or `female`. `registration_status`: `active`, `cancelled` or `deceased`.
///   `criminal_record`: `none` or `recorded`. These are lower-cased.
/// * `date_of_birth`: YYYY-MM-DD.
/// * `former_name` and `household_moves` may be empty, and other fields are non-empty text.
pub fn normalize_value(field: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(format!(
            "{field} is longer than {MAX_VALUE_CHARS} characters"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} contains a control character"));
    }
    let one_of = |allowed: &[&str]| {
        let lower = value.to_ascii_lowercase();
        if allowed.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(format!(
                "{field} is {value:?} but must be one of {}",
                allowed.join(", ")
            ))
        }
    };
    match field {
        "id_number" => IdNumber::parse(value)
            .map(|number| number.as_str().to_string())
            .map_err(|error| error.to_string()),
        "sex" => one_of(&["male", "female"]),
        "registration_status" => one_of(&["active", "cancelled", "deceased"]),
        "criminal_record" => one_of(&["none", "recorded"]),
        "date_of_birth" => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(|date| date.format("%Y-%m-%d").to_string())
            .map_err(|_| format!("date_of_birth {value:?} is not a date written as YYYY-MM-DD")),
        "former_name" | "household_moves" => Ok(value.to_string()),
        _ if value.is_empty() => Err(format!("{field} is empty")),
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_value;

    #[test]
    fn sex_is_lower_cased() {
        assert_eq!(normalize_value("sex", " Female "), Ok("female".to_string()));
    }

    #[test]
    fn unknown_status_is_rejected() {
        let reason = normalize_value("registration_status", "moved").unwrap_err();
        assert!(reason.contains("active, cancelled, deceased"), "{reason}");
    }

    #[test]
    fn impossible_birth_date_is_rejected() {
        assert!(normalize_value("date_of_birth", "2000-02-30").is_err());
    }

    #[test]
    fn bad_check_character_is_rejected() {
        assert!(normalize_value("id_number", "220102199001011235").is_err());
        assert!(normalize_value("id_number", "220102199001011239").is_ok());
    }

    #[test]
    fn empty_name_is_rejected() {
        assert!(normalize_value("name", " ").is_err());
        assert_eq!(normalize_value("former_name", ""), Ok(String::new()));
    }
}
