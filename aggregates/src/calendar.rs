//! The working-day calendar of the State Council holiday notices.
//!
//! A date is a working day if the calendar lists it as `workday` (a weekend day made a working
//! day, 调休). Otherwise it is not one if the calendar lists it as `holiday`, and an unlisted
//! date is a working day from Monday to Friday. The calendar covers only the years that have at
//! least one row, and any question about another year fails rather than guess.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use chrono::{Datelike, NaiveDate, Weekday};

/// Header the calendar CSV must start with.
const HEADER: [&str; 3] = ["date", "kind", "name"];

/// Reason the calendar failed to load or to classify a date.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A CSV line, 1-based and counting the header as line 1, is malformed.
    #[error(
        "calendar CSV line {line} is invalid because {reason}; correct that line and load the \
         calendar again"
    )]
    InvalidRow { line: u64, reason: String },
    /// The question touches a year for which the calendar has no rows.
    #[error(
        "no working-day calendar for {year}; load the State Council holiday notice for {year} \
         into the policy calendar"
    )]
    YearNotCovered { year: i32 },
}

/// Working days by the State Council holiday notices, for the years the notices cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkingDayCalendar {
    /// Listed dates, each mapped to true for a working day and false for a holiday.
    listed: BTreeMap<NaiveDate, bool>,
    /// Years with at least one listed date.
    years: BTreeSet<i32>,
}

impl WorkingDayCalendar {
    /// Reads the CSV `date,kind,name`, where `date` is YYYY-MM-DD and `kind` is `holiday` or
    /// `workday`. Fields may be quoted and surrounded by spaces, and `name` is free text.
    ///
    /// # Errors
    /// Fails with [`CalendarError::InvalidRow`] on a wrong header, a row that cannot be read or
    /// has the wrong number of fields, a bad date, an unknown kind, or a date listed twice with
    /// different kinds. A date listed twice with the same kind is accepted.
    pub fn from_csv_reader(reader: impl Read) -> Result<Self, CalendarError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let mut record = csv::StringRecord::new();
        let mut listed = BTreeMap::new();
        let mut header_read = false;
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(error) => return Err(unreadable_row(&error, reader.position().line())),
            }
            let line = record.position().map_or(0, csv::Position::line);
            if header_read {
                add_row(&mut listed, &record).map_err(|reason| invalid_row(line, reason))?;
            } else {
                check_header(&record).map_err(|reason| invalid_row(line, reason))?;
                header_read = true;
            }
        }
        if !header_read {
            return Err(invalid_row(
                1,
                "the header date,kind,name is missing".to_string(),
            ));
        }
        let years = listed.keys().map(Datelike::year).collect();
        Ok(WorkingDayCalendar { listed, years })
    }

    /// Reads the calendar from CSV text, as [`WorkingDayCalendar::from_csv_reader`] does.
    ///
    /// # Errors
    /// Fails as [`WorkingDayCalendar::from_csv_reader`] does.
    pub fn from_csv_str(text: &str) -> Result<Self, CalendarError> {
        WorkingDayCalendar::from_csv_reader(text.as_bytes())
    }

    /// Returns the years the calendar covers, in ascending order.
    pub fn covered_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// Returns the last day the calendar covers without a gap from `today`: December 31 of the
    /// last year of the unbroken run of covered years that contains `today`. `None` when the
    /// year of `today` is not covered.
    pub fn covered_until(&self, today: NaiveDate) -> Option<NaiveDate> {
        let mut year = today.year();
        if !self.years.contains(&year) {
            return None;
        }
        while self.years.contains(&(year + 1)) {
            year += 1;
        }
        NaiveDate::from_ymd_opt(year, 12, 31)
    }

    /// Tells whether `date` is a working day.
    ///
    /// # Errors
    /// Fails with [`CalendarError::YearNotCovered`] when the calendar has no rows for the year
    /// of `date`.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        if !self.years.contains(&date.year()) {
            return Err(CalendarError::YearNotCovered { year: date.year() });
        }
        let working = match self.listed.get(&date) {
            Some(working) => *working,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        };
        Ok(working)
    }

    /// Returns the date `days` working days after `start`. The start, the day of receipt, is
    /// day 0 and day 1 is the first working day after it. With `days == 0` it returns `start`
    /// if that is a working day, else the next working day.
    ///
    /// # Errors
    /// Fails with [`CalendarError::YearNotCovered`] when `start` or any date up to the result
    /// lies in a year the calendar does not cover.
    pub fn add_working_days(
        &self,
        start: NaiveDate,
        days: u32,
    ) -> Result<NaiveDate, CalendarError> {
        if days == 0 {
            return self.first_working_day_from(start);
        }
        // The start counts as day 0 whether or not it is a working day, but its year must
        // still be covered.
        self.is_working_day(start)?;
        let mut date = start;
        for _ in 0..days {
            date = self.first_working_day_from(next_day(date)?)?;
        }
        Ok(date)
    }

    /// Returns `date` if it is a working day, else the next working day after it.
    fn first_working_day_from(&self, mut date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        while !self.is_working_day(date)? {
            date = next_day(date)?;
        }
        Ok(date)
    }
}

/// Checks that a header record is exactly `date,kind,name`.
fn check_header(record: &csv::StringRecord) -> Result<(), String> {
    if record.iter().eq(HEADER) {
        return Ok(());
    }
    let found: Vec<&str> = record.iter().collect();
    Err(format!(
        "the header is {:?} but must be date,kind,name",
        found.join(",")
    ))
}

/// Adds one `date,kind,name` row to `listed`, returning the reason if the row is invalid.
fn add_row(
    listed: &mut BTreeMap<NaiveDate, bool>,
    record: &csv::StringRecord,
) -> Result<(), String> {
    let date = parse_date(record.get(0).unwrap_or_default())?;
    let working = parse_kind(record.get(1).unwrap_or_default())?;
    match listed.insert(date, working) {
        Some(before) if before != working => {
            Err(format!("{date} is listed both as holiday and as workday"))
        }
        _ => Ok(()),
    }
}

/// Parses a date written as YYYY-MM-DD.
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("date {text:?} is not a calendar date written as YYYY-MM-DD"))
}

/// Parses a kind, returning true for `workday` and false for `holiday`.
fn parse_kind(text: &str) -> Result<bool, String> {
    match text {
        "workday" => Ok(true),
        "holiday" => Ok(false),
        other => Err(format!("kind {other:?} is neither holiday nor workday")),
    }
}

fn invalid_row(line: u64, reason: String) -> CalendarError {
    CalendarError::InvalidRow { line, reason }
}

/// Converts a CSV read error into an invalid row, at the line the error names if it names one.
fn unreadable_row(error: &csv::Error, current_line: u64) -> CalendarError {
    let line = error.position().map_or(current_line, csv::Position::line);
    let reason = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("the row has {len} fields but must have {expected_len} (date,kind,name)")
        }
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_string(),
        _ => format!("the row could not be read ({error})"),
    };
    invalid_row(line, reason)
}

/// Returns the day after `date`. The last date chrono can represent has no next day, which is
/// reported as the following year not being covered.
fn next_day(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    date.succ_opt().ok_or(CalendarError::YearNotCovered {
        year: date.year() + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> WorkingDayCalendar {
        WorkingDayCalendar::from_csv_str(include_str!("../../policy/holidays-cn.csv")).unwrap()
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn invalid_line(csv: &str) -> u64 {
        match WorkingDayCalendar::from_csv_str(csv) {
            Err(CalendarError::InvalidRow { line, .. }) => line,
            other => panic!("expected an invalid row, got {other:?}"),
        }
    }

    #[test]
    fn monthly_deadline_crosses_spring_festival() {
        // Day 1 Friday 02-13, day 2 Saturday 02-14 (a working day), 02-15..02-23 off, then
        // 02-24, 02-25 and 02-26.
        let deadline = calendar().add_working_days(date("2026-02-12"), 5);
        assert_eq!(deadline, Ok(date("2026-02-26")));
    }

    #[test]
    fn annual_deadline_counts_swap_saturdays() {
        // 10 weekdays to 02-13, Saturday 02-14, 4 weekdays 02-24..02-27, Saturday 02-28, then
        // 03-02..03-05.
        let deadline = calendar().add_working_days(date("2026-01-30"), 20);
        assert_eq!(deadline, Ok(date("2026-03-05")));
    }

    #[test]
    fn plain_weekend_is_skipped() {
        let calendar = calendar();
        assert_eq!(calendar.is_working_day(date("2026-11-07")), Ok(false));
        assert_eq!(calendar.is_working_day(date("2026-11-08")), Ok(false));
        // Friday 2026-11-06 plus one working day is Monday 2026-11-09.
        assert_eq!(
            calendar.add_working_days(date("2026-11-06"), 1),
            Ok(date("2026-11-09"))
        );
    }

    #[test]
    fn national_day_and_swap_saturday() {
        let calendar = calendar();
        assert_eq!(calendar.is_working_day(date("2026-10-05")), Ok(false));
        assert_eq!(calendar.is_working_day(date("2026-10-10")), Ok(true));
        // Wednesday 09-30 is day 0. 10-01..10-07 are off, so day 1 is Thursday 10-08, day 2
        // Friday 10-09, day 3 Saturday 10-10 (a working day), Sunday 10-11 is off, day 4 is
        // Monday 10-12 and day 5 Tuesday 10-13.
        assert_eq!(
            calendar.add_working_days(date("2026-09-30"), 5),
            Ok(date("2026-10-13"))
        );
        assert_eq!(
            calendar.add_working_days(date("2026-09-30"), 3),
            Ok(date("2026-10-10"))
        );
    }

    #[test]
    fn zero_days_on_working_day_is_same_day() {
        assert_eq!(
            calendar().add_working_days(date("2026-02-14"), 0),
            Ok(date("2026-02-14"))
        );
    }

    #[test]
    fn zero_days_on_holiday_is_next_working_day() {
        assert_eq!(
            calendar().add_working_days(date("2026-10-03"), 0),
            Ok(date("2026-10-08"))
        );
    }

    #[test]
    fn start_on_holiday_is_day_zero() {
        // Receipt on holiday 10-03: day 1 is 10-08, the first working day after it.
        assert_eq!(
            calendar().add_working_days(date("2026-10-03"), 1),
            Ok(date("2026-10-08"))
        );
    }

    #[test]
    fn year_2027_is_not_covered() {
        let calendar = calendar();
        let error = CalendarError::YearNotCovered { year: 2027 };
        assert_eq!(
            calendar.is_working_day(date("2027-01-04")),
            Err(error.clone())
        );
        assert_eq!(
            calendar.add_working_days(date("2027-01-04"), 0),
            Err(error.clone())
        );
        // Five working days from 2026-12-30 run into 2027.
        assert_eq!(calendar.add_working_days(date("2026-12-30"), 5), Err(error));
    }

    #[test]
    fn covered_until_is_end_of_unbroken_run() {
        let calendar = calendar();
        assert_eq!(
            calendar.covered_until(date("2026-12-05")),
            Some(date("2026-12-31"))
        );
        assert_eq!(
            calendar.covered_until(date("2015-01-01")),
            Some(date("2026-12-31"))
        );
        assert_eq!(calendar.covered_until(date("2027-01-01")), None);

        let gap = WorkingDayCalendar::from_csv_str(
            "date,kind,name\n2024-01-01,holiday,New Year\n2026-01-01,holiday,New Year\n",
        )
        .expect("calendar loads");
        assert_eq!(
            gap.covered_until(date("2024-06-01")),
            Some(date("2024-12-31"))
        );
    }

    #[test]
    fn year_2014_is_not_covered() {
        let calendar = calendar();
        let error = CalendarError::YearNotCovered { year: 2014 };
        assert_eq!(
            calendar.is_working_day(date("2014-06-03")),
            Err(error.clone())
        );
        // The start must be covered even though it counts as day 0.
        assert_eq!(calendar.add_working_days(date("2014-12-31"), 1), Err(error));
    }

    #[test]
    fn uncovered_year_message_names_year() {
        let message = CalendarError::YearNotCovered { year: 2031 }.to_string();
        assert_eq!(
            message,
            "no working-day calendar for 2031; load the State Council holiday notice for 2031 \
             into the policy calendar"
        );
    }

    #[test]
    fn covers_2015_to_2026() {
        let years: Vec<i32> = calendar().covered_years().collect();
        assert_eq!(years, (2015..=2026).collect::<Vec<_>>());
    }

    #[test]
    fn reader_and_str_agree() {
        let text = include_str!("../../policy/holidays-cn.csv");
        let from_reader = WorkingDayCalendar::from_csv_reader(text.as_bytes()).unwrap();
        assert_eq!(from_reader, calendar());
    }

    #[test]
    fn bad_date_reports_line() {
        let csv = "date,kind,name\n2026-01-01,holiday,x\n2026-13-01,holiday,x\n";
        assert_eq!(invalid_line(csv), 3);
        assert_eq!(invalid_line("date,kind,name\n2026-02-30,holiday,x\n"), 2);
        assert_eq!(invalid_line("date,kind,name\n20260101,holiday,x\n"), 2);
    }

    #[test]
    fn unknown_kind_reports_line() {
        assert_eq!(invalid_line("date,kind,name\n2026-01-01,rest,x\n"), 2);
    }

    #[test]
    fn conflicting_kinds_report_line() {
        let csv =
            "date,kind,name\n2026-01-01,holiday,x\n2026-01-04,workday,y\n2026-01-01,workday,z\n";
        assert_eq!(invalid_line(csv), 4);
    }

    #[test]
    fn same_kind_twice_is_accepted() {
        let csv = "date,kind,name\n2026-01-01,holiday,x\n2026-01-01,holiday,x\n";
        assert!(WorkingDayCalendar::from_csv_str(csv).is_ok());
    }

    #[test]
    fn wrong_field_count_reports_line() {
        assert_eq!(
            invalid_line("date,kind,name\n2026-01-01,holiday,x\n2026-01-02,holiday\n"),
            3
        );
    }

    #[test]
    fn bad_header_is_line_one() {
        assert_eq!(invalid_line("day,kind,name\n2026-01-01,holiday,x\n"), 1);
        assert_eq!(invalid_line(""), 1);
    }

    #[test]
    fn row_reason_is_in_message() {
        let error = WorkingDayCalendar::from_csv_str("date,kind,name\n2026-01-01,rest,x\n");
        let message = error.unwrap_err().to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("\"rest\""), "{message}");
    }

    #[test]
    fn header_only_covers_no_year() {
        let calendar = WorkingDayCalendar::from_csv_str("date,kind,name\n").unwrap();
        assert_eq!(calendar.covered_years().count(), 0);
        let error = CalendarError::YearNotCovered { year: 2026 };
        assert_eq!(calendar.is_working_day(date("2026-03-02")), Err(error));
    }
}
