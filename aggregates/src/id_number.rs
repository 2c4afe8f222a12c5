//! Citizen ID numbers under GB 11643-1999.
//!
//! 18 characters: a 6-digit address code, the birth date as YYYYMMDD, a 3-digit sequence (odd
//! for men) and a check character computed with ISO 7064 MOD 11-2.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Weights of the first 17 digits in the check computation.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const CHECK_CHARACTERS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// A validated 18-character citizen ID number, with `X` upper-case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

/// Why a text is not a valid ID number. Messages never repeat the number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("ID number has {0} characters; it must have 18 (or 15 for the old form)")]
    WrongLength(usize),
    #[error("ID number character {0} must be a digit")]
    NotADigit(usize),
    #[error("ID number birth date {0} is not a real date; re-read the number from the card")]
    ImpossibleBirthDate(String),
    #[error("ID number check character is {found} but the first 17 digits require {expected}; re-read the number from the card")]
    CheckMismatch { expected: char, found: char },
}

impl IdNumber {
    /// Parses and validates an 18-character ID number; a lower-case `x` is accepted.
    ///
    /// # Errors
    /// Fails on a wrong length, a non-digit, an impossible birth date or a wrong check character.
    pub fn parse(text: &str) -> Result<IdNumber, IdNumberError> {
        let text = text.to_ascii_uppercase();
        let characters: Vec<char> = text.chars().collect();
        if characters.len() != 18 {
            return Err(IdNumberError::WrongLength(characters.len()));
        }
        check_digits(&characters[..17])?;
        birth_date_of(&text[6..14])?;
        let expected = check_character(&text[..17]);
        let found = characters[17];
        if found != expected {
            if !found.is_ascii_digit() && found != 'X' {
                return Err(IdNumberError::NotADigit(18));
            }
            return Err(IdNumberError::CheckMismatch { expected, found });
        }
        Ok(IdNumber(text))
    }

    /// Upgrades an old 15-digit number: `19` goes before the 2-digit year and the check
    /// character is appended.
    ///
    /// # Errors
    /// Fails on a wrong length, a non-digit or an impossible birth date.
    pub fn upgrade_from_15(text: &str) -> Result<IdNumber, IdNumberError> {
        let characters: Vec<char> = text.chars().collect();
        if characters.len() != 15 {
            return Err(IdNumberError::WrongLength(characters.len()));
        }
        check_digits(&characters)?;
        let body = format!("{}19{}", &text[..6], &text[6..]);
        let check = check_character(&body);
        IdNumber::parse(&format!("{body}{check}"))
    }

    /// Returns the number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the birth date the number encodes.
    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(&self.0[6..14]).expect("parse checked the birth date")
    }

    /// Tells whether the sequence digit marks a man (odd).
    pub fn is_male(&self) -> bool {
        let digit = self.0.as_bytes()[16] - b'0';
        digit % 2 == 1
    }

    /// Returns the number with the 8 characters after the address code replaced by `*`, for
    /// logs and reports.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

fn check_digits(characters: &[char]) -> Result<(), IdNumberError> {
    match characters.iter().position(|c| !c.is_ascii_digit()) {
        Some(index) => Err(IdNumberError::NotADigit(index + 1)),
        None => Ok(()),
    }
}

fn birth_date_of(digits: &str) -> Result<NaiveDate, IdNumberError> {
    NaiveDate::parse_from_str(digits, "%Y%m%d")
        .ok()
        .filter(|date| *date >= NaiveDate::from_ymd_opt(1900, 1, 1).expect("1900-01-01 is a date"))
        .ok_or_else(|| IdNumberError::ImpossibleBirthDate(digits.to_string()))
}

/// Computes the check character of 17 digits.
fn check_character(digits: &str) -> char {
    let sum: u32 = digits.bytes().zip(WEIGHTS).map(|(digit, weight)| u32::from(digit - b'0') * weight).sum();
    CHECK_CHARACTERS[(sum % 11) as usize]
}

impl TryFrom<String> for IdNumber {
    type Error = IdNumberError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        IdNumber::parse(&text)
    }
}

impl From<IdNumber> for String {
    fn from(number: IdNumber) -> String {
        number.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_numbers_are_valid() {
        for text in ["220102199001011239", "220104200002290047", "11010519491231002X"] {
            assert_eq!(IdNumber::parse(text).map(|number| number.as_str().to_string()), Ok(text.to_string()));
        }
    }

    #[test]
    fn lowercase_x_is_normalised() {
        let number = IdNumber::parse("11010519491231002x").expect("valid");
        assert_eq!(number.as_str(), "11010519491231002X");
    }

    #[test]
    fn wrong_check_character_is_rejected() {
        let error = IdNumber::parse("220102199001011235").unwrap_err();
        assert_eq!(error, IdNumberError::CheckMismatch { expected: '9', found: '5' });
    }

    #[test]
    fn february_thirtieth_is_impossible() {
        let error = IdNumber::parse("220104200002300049").unwrap_err();
        assert_eq!(error, IdNumberError::ImpossibleBirthDate("20000230".into()));
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert_eq!(IdNumber::parse("2201021990010112"), Err(IdNumberError::WrongLength(16)));
        assert_eq!(IdNumber::parse(""), Err(IdNumberError::WrongLength(0)));
    }

    #[test]
    fn letter_in_digits_is_rejected() {
        assert_eq!(IdNumber::parse("2201A2199001011239"), Err(IdNumberError::NotADigit(5)));
    }

    #[test]
    fn fifteen_digit_form_upgrades() {
        let number = IdNumber::upgrade_from_15("220102900101123").expect("valid old number");
        assert_eq!(&number.as_str()[..17], "22010219900101123");
        assert_eq!(number.as_str(), "220102199001011239");
    }

    #[test]
    fn birth_date_and_sex_are_read() {
        let number = IdNumber::parse("220102199001011239").expect("valid");
        assert_eq!(number.birth_date(), NaiveDate::from_ymd_opt(1990, 1, 1).expect("date"));
        assert!(number.is_male());
        assert!(!IdNumber::parse("220104200002290047").expect("valid").is_male());
    }

    #[test]
    fn mask_hides_birth_date() {
        let number = IdNumber::parse("220102199001011239").expect("valid");
        assert_eq!(number.masked(), "220102********1239");
    }

    #[test]
    fn deserialization_validates() {
        let parsed: Result<IdNumber, _> = serde_json::from_str("\"220102199001011235\"");
        assert!(parsed.is_err());
    }
}
