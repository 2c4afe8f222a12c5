//! Citizen ID numbers under GB 11643-1999.
//!
//! An ID number has 18 characters: a 6-digit address code, the birth date as YYYYMMDD, a
//! 3-digit sequence (odd for men) and a check character computed with ISO 7064 MOD 11-2. The
//! older 15-digit form has a 2-digit year and no check character.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Number of characters in an ID number.
const LENGTH: usize = 18;
/// Number of digits in an ID number of the older form.
const OLD_LENGTH: usize = 15;
/// Weights of the first 17 digits in the check computation.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const CHECK_CHARACTERS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// Earliest birth year an ID number can encode.
const MIN_BIRTH_YEAR: i32 = 1900;
/// First two digits of the address code: the provinces, autonomous regions and municipalities
/// of GB/T 2260, and 81, 82, 83 of the residence permits for Hong Kong, Macao and Taiwan
/// residents.
const PROVINCE_CODES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// A validated 18-character citizen ID number, with the check character `X` in upper case.
///
/// It serializes as the plain string, and deserializing validates it like [`IdNumber::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

/// Reason a text is not a valid ID number. The messages repeat no part of the number, because
/// they reach logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// The text has `found` characters where the form requires `expected`.
    #[error(
        "ID number has {found} characters but must have {expected}; \
         re-read the number from the card"
    )]
    WrongLength { expected: usize, found: usize },
    /// The character at 1-based `position` is not a digit, or is neither a digit nor `X` in the
    /// last place.
    #[error(
        "ID number character {position} is not a digit; only the last of 18 characters \
         may be X, so re-read the number from the card"
    )]
    NotADigit { position: usize },
    /// The first two digits name no province, autonomous region or municipality.
    #[error(
        "ID number characters 1 and 2 name no province of GB/T 2260; \
         re-read the number from the card"
    )]
    UnknownProvince,
    /// The 8 birth-date digits are not a calendar date on or after 1900-01-01.
    #[error(
        "ID number characters 7 to 14 are not a birth date on or after 1900-01-01; \
         re-read the number from the card"
    )]
    ImpossibleBirthDate { digits: String },
    /// The check character differs from the one the first 17 digits require.
    #[error(
        "ID number check character is {found} but the first 17 digits require {expected}; \
         re-read the number from the card"
    )]
    CheckMismatch { expected: char, found: char },
}

impl IdNumber {
    /// Validates an 18-character ID number and stores it with `x` upper-cased to `X`.
    ///
    /// # Errors
    /// Fails on a length other than 18, a non-digit in the first 17 places, or a last
    /// character that is neither a digit nor `X`. It then fails on a birth date that is not a
    /// calendar date on or after 1900-01-01, and only after that on a wrong check character, so
    /// a wrong birth date is reported as such even when the check character matches.
    pub fn parse(text: &str) -> Result<IdNumber, IdNumberError> {
        check_length(text, LENGTH)?;
        check_digits(text, LENGTH - 1)?;
        let text = text.to_ascii_uppercase();
        // The first 17 characters are ASCII digits, so byte 17 starts the last character.
        let (body, found) = text.split_at(LENGTH - 1);
        let found = check_last_character(found)?;
        let province: u8 = body[..2]
            .parse()
            .expect("the first 17 characters are digits");
        if !PROVINCE_CODES.contains(&province) {
            return Err(IdNumberError::UnknownProvince);
        }
        birth_date_of(&body[6..14])?;
        let expected = check_character(body);
        if found != expected {
            return Err(IdNumberError::CheckMismatch { expected, found });
        }
        Ok(IdNumber(text))
    }

    /// Converts a 15-digit number of the older form to 18 characters. The result has `19`
    /// inserted before the 2-digit birth year and the computed check character appended.
    ///
    /// # Errors
    /// Fails on a length other than 15, a non-digit, or a birth date that is not a calendar
    /// date.
    pub fn upgrade_from_15(text: &str) -> Result<IdNumber, IdNumberError> {
        check_length(text, OLD_LENGTH)?;
        check_digits(text, OLD_LENGTH)?;
        let (address, rest) = text.split_at(6);
        let body = format!("{address}19{rest}");
        let check = check_character(&body);
        IdNumber::parse(&format!("{body}{check}"))
    }

    /// Returns the number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the birth date in places 7 to 14.
    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(&self.0[6..14])
            .expect("parse accepts only ID numbers with a valid birth date")
    }

    /// Tells whether the sequence marks a man, which it does with an odd 17th digit.
    pub fn is_male(&self) -> bool {
        let digit = self.0.as_bytes()[16] - b'0';
        digit % 2 == 1
    }

    /// Returns the number with the 8 birth-date characters replaced by `*`, keeping the
    /// address code and the last 4 characters. Logs and reports show only this form.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// Rejects a text whose length in characters is not `expected`.
fn check_length(text: &str, expected: usize) -> Result<(), IdNumberError> {
    let found = text.chars().count();
    if found != expected {
        return Err(IdNumberError::WrongLength { expected, found });
    }
    Ok(())
}

/// Rejects the first of the leading `count` characters that is not an ASCII digit, by its
/// 1-based position.
fn check_digits(text: &str, count: usize) -> Result<(), IdNumberError> {
    match text.chars().take(count).position(|c| !c.is_ascii_digit()) {
        Some(index) => Err(IdNumberError::NotADigit {
            position: index + 1,
        }),
        None => Ok(()),
    }
}

/// Returns the single last character if it is a digit or `X`.
fn check_last_character(text: &str) -> Result<char, IdNumberError> {
    match text.chars().next() {
        Some(c) if c.is_ascii_digit() || c == 'X' => Ok(c),
        _ => Err(IdNumberError::NotADigit { position: LENGTH }),
    }
}

/// Reads 8 ASCII digits as YYYYMMDD, rejecting dates that do not exist or precede 1900.
fn birth_date_of(digits: &str) -> Result<NaiveDate, IdNumberError> {
    let impossible = || IdNumberError::ImpossibleBirthDate {
        digits: digits.to_string(),
    };
    let year: i32 = digits[..4].parse().map_err(|_| impossible())?;
    let month: u32 = digits[4..6].parse().map_err(|_| impossible())?;
    let day: u32 = digits[6..].parse().map_err(|_| impossible())?;
    if year < MIN_BIRTH_YEAR {
        return Err(impossible());
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(impossible)
}

/// Computes the check character of 17 ASCII digits.
fn check_character(digits: &str) -> char {
    let sum: u32 = digits
        .bytes()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
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

    // Every number here is synthetic: a made-up address code, date and sequence with the check
    // character computed for them.

    #[test]
    fn synthetic_numbers_are_valid() {
        for text in [
            "220102199001011239",
            "220104200002290047",
            "11010519491231002X",
        ] {
            let number = IdNumber::parse(text).unwrap();
            assert_eq!(number.as_str(), text);
        }
    }

    #[test]
    fn lowercase_x_is_normalised() {
        let number = IdNumber::parse("11010519491231002x").unwrap();
        assert_eq!(number.as_str(), "11010519491231002X");
        assert_eq!(number, IdNumber::parse("11010519491231002X").unwrap());
    }

    #[test]
    fn wrong_check_character_is_rejected() {
        let error = IdNumber::parse("220102199001011235").unwrap_err();
        assert_eq!(
            error,
            IdNumberError::CheckMismatch {
                expected: '9',
                found: '5'
            }
        );
    }

    #[test]
    fn unknown_province_is_rejected() {
        // Valid check characters, computed for the made-up address codes 000000 and 990102.
        for body in ["00000019900101123", "99010219900101123"] {
            let text = format!("{body}{}", check_character(body));
            assert_eq!(
                IdNumber::parse(&text).unwrap_err(),
                IdNumberError::UnknownProvince
            );
        }
    }

    #[test]
    fn february_thirtieth_is_impossible_date() {
        // The check character 9 is right for these 17 digits, so only the date is wrong.
        assert_eq!(check_character("22010420000230004"), '9');
        let error = IdNumber::parse("220104200002300049").unwrap_err();
        let digits = "20000230".to_string();
        assert_eq!(error, IdNumberError::ImpossibleBirthDate { digits });
    }

    #[test]
    fn birth_before_1900_is_impossible_date() {
        let body = "22010218991231123";
        let text = format!("{body}{}", check_character(body));
        let error = IdNumber::parse(&text).unwrap_err();
        let digits = "18991231".to_string();
        assert_eq!(error, IdNumberError::ImpossibleBirthDate { digits });
    }

    #[test]
    fn month_thirteen_is_impossible_date() {
        let body = "22010219901301123";
        let text = format!("{body}{}", check_character(body));
        let error = IdNumber::parse(&text).unwrap_err();
        let digits = "19901301".to_string();
        assert_eq!(error, IdNumberError::ImpossibleBirthDate { digits });
    }

    #[test]
    fn wrong_length_is_rejected() {
        let cases = [
            ("2201021990010112", 16),
            ("", 0),
            ("2201021990010112390", 19),
        ];
        for (text, found) in cases {
            let error = IdNumber::parse(text).unwrap_err();
            assert_eq!(
                error,
                IdNumberError::WrongLength {
                    expected: 18,
                    found
                }
            );
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // A two-byte character makes 18 characters in 19 bytes, wherever it sits.
        let last = IdNumber::parse("22010219900101123é").unwrap_err();
        assert_eq!(last, IdNumberError::NotADigit { position: 18 });
        let first = IdNumber::parse("é20102199001011239").unwrap_err();
        assert_eq!(first, IdNumberError::NotADigit { position: 1 });
    }

    #[test]
    fn letter_in_digits_is_rejected() {
        let error = IdNumber::parse("2201A2199001011239").unwrap_err();
        assert_eq!(error, IdNumberError::NotADigit { position: 5 });
    }

    #[test]
    fn x_before_last_place_is_rejected() {
        let error = IdNumber::parse("2201021990010112X9").unwrap_err();
        assert_eq!(error, IdNumberError::NotADigit { position: 17 });
    }

    #[test]
    fn letter_in_last_place_is_rejected() {
        let error = IdNumber::parse("22010219900101123A").unwrap_err();
        assert_eq!(error, IdNumberError::NotADigit { position: 18 });
    }

    #[test]
    fn fifteen_digit_form_upgrades() {
        // 2·7 + 2·9 + 0·10 + 1·5 + 0·8 + 2·4 + 1·2 + 9·1 + 9·6 + 0·3 + 0·7 + 1·9 + 0·10 + 1·5
        // + 1·8 + 2·4 + 3·2 = 146, and 146 mod 11 = 3 maps to the check character 9.
        let number = IdNumber::upgrade_from_15("220102900101123").unwrap();
        assert_eq!(number.as_str(), "220102199001011239");
    }

    #[test]
    fn fifteen_digit_form_is_validated() {
        let short = IdNumber::upgrade_from_15("22010290010112").unwrap_err();
        assert_eq!(
            short,
            IdNumberError::WrongLength {
                expected: 15,
                found: 14
            }
        );
        let letter = IdNumber::upgrade_from_15("22010290010112X").unwrap_err();
        assert_eq!(letter, IdNumberError::NotADigit { position: 15 });
        let date = IdNumber::upgrade_from_15("220102900230123").unwrap_err();
        let digits = "19900230".to_string();
        assert_eq!(date, IdNumberError::ImpossibleBirthDate { digits });
    }

    #[test]
    fn birth_date_is_read() {
        let number = IdNumber::parse("220104200002290047").unwrap();
        assert_eq!(
            number.birth_date(),
            NaiveDate::from_ymd_opt(2000, 2, 29).unwrap()
        );
    }

    #[test]
    fn sex_is_read_from_sequence() {
        assert!(IdNumber::parse("220102199001011239").unwrap().is_male());
        assert!(!IdNumber::parse("220104200002290047").unwrap().is_male());
    }

    #[test]
    fn mask_hides_birth_date() {
        let number = IdNumber::parse("220102199001011239").unwrap();
        assert_eq!(number.masked(), "220102********1239");
        let number = IdNumber::parse("11010519491231002x").unwrap();
        assert_eq!(number.masked(), "110105********002X");
    }

    #[test]
    fn messages_do_not_repeat_number() {
        for text in [
            "220102199001011235",
            "220104200002300049",
            "2201A2199001011239",
        ] {
            let message = IdNumber::parse(text).unwrap_err().to_string();
            assert!(!message.contains(text), "{message}");
            assert!(!message.contains(&text[..17]), "{message}");
        }
    }

    #[test]
    fn serializes_as_plain_string() {
        let number = IdNumber::parse("11010519491231002X").unwrap();
        let json = serde_json::to_string(&number).unwrap();
        assert_eq!(json, "\"11010519491231002X\"");
        let back: IdNumber = serde_json::from_str(&json).unwrap();
        assert_eq!(back, number);
    }

    #[test]
    fn deserialization_validates() {
        let parsed = serde_json::from_str::<IdNumber>("\"220102199001011235\"");
        assert!(parsed.is_err());
        let lower: IdNumber = serde_json::from_str("\"11010519491231002x\"").unwrap();
        assert_eq!(lower.as_str(), "11010519491231002X");
    }
}
