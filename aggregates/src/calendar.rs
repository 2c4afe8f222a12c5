//! The working-day calendar from the State Council holiday notices.
//!
//! A date is a working day if the calendar lists it as `workday` (a weekend day made a working
//! day, 调休), not one if it lists it as `holiday`, and otherwise Monday to Friday are working
//! days. The calendar covers only the years it has rows for; any other year fails closed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};

/// Why the calendar could not answer or load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar line {line} is invalid: {reason}")]
    InvalidRow { line: usize, reason: String },
    #[error("no working-day calendar for {year}; load the State Council holiday notice for {year} into the policy calendar")]
    YearNotCovered { year: i32 },
}

/// Working days by the State Council's holiday notices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkingDayCalendar {
    /// Dates listed in the file: true for a working day, false for a holiday.
    listed: BTreeMap<NaiveDate, bool>,
    years: BTreeSet<i32>,
}

impl WorkingDayCalendar {
    /// Parses the CSV `date,kind,name`, where kind is `holiday` or `workday`.
    ///
    /// # Errors
    /// Fails on a bad date, an unknown kind, or a date listed twice with different kinds.
    pub fn from_csv_str(text: &str) -> Result<WorkingDayCalendar, CalendarError> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
        let mut listed = BTreeMap::new();
        for (index, record) in reader.records().enumerate() {
            // Line 1 is the header.
            let line = index + 2;
            let invalid = |reason: String| CalendarError::InvalidRow { line, reason };
            let record = record.map_err(|error| invalid(error.to_string()))?;
            let date = record.get(0).unwrap_or_default();
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| invalid(format!("{date:?} is not a date as YYYY-MM-DD")))?;
            let working = match record.get(1).unwrap_or_default() {
                "workday" => true,
                "holiday" => false,
                other => return Err(invalid(format!("kind {other:?} is neither holiday nor workday"))),
            };
            if listed.insert(date, working).is_some_and(|before| before != working) {
                return Err(invalid(format!("{date} is listed both as holiday and as workday")));
            }
        }
        let years = listed.keys().map(|date| date.year()).collect();
        Ok(WorkingDayCalendar { listed, years })
    }

    /// Returns the years the calendar covers, in order.
    pub fn covered_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// Tells whether `date` is a working day.
    ///
    /// # Errors
    /// Fails when the calendar does not cover the year of `date`.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        if !self.years.contains(&date.year()) {
            return Err(CalendarError::YearNotCovered { year: date.year() });
        }
        Ok(match self.listed.get(&date) {
            Some(working) => *working,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        })
    }

    /// Returns the date `days` working days after `start`, the day of receipt counting as day 0.
    /// With `days == 0` it returns `start` if that is a working day, else the next working day.
    ///
    /// # Errors
    /// Fails when a date it steps over lies in a year the calendar does not cover.
    pub fn add_working_days(&self, start: NaiveDate, days: u32) -> Result<NaiveDate, CalendarError> {
        let mut date = start;
        if days == 0 {
            while !self.is_working_day(date)? {
                date = next_day(date)?;
            }
            return Ok(date);
        }
        self.is_working_day(start)?;
        let mut counted = 0;
        while counted < days {
            date = next_day(date)?;
            if self.is_working_day(date)? {
                counted += 1;
            }
        }
        Ok(date)
    }
}

fn next_day(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    date.succ_opt().ok_or(CalendarError::YearNotCovered { year: date.year() + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> WorkingDayCalendar {
        WorkingDayCalendar::from_csv_str(include_str!("../../policy/holidays-cn.csv")).expect("bundled calendar parses")
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
    }

    #[test]
    fn monthly_deadline_crosses_spring_festival() {
        assert_eq!(calendar().add_working_days(date("2026-02-12"), 5), Ok(date("2026-02-26")));
    }

    #[test]
    fn annual_deadline_counts_swap_saturdays() {
        assert_eq!(calendar().add_working_days(date("2026-01-30"), 20), Ok(date("2026-03-05")));
    }

    #[test]
    fn plain_weekend_is_skipped() {
        // Friday 2026-11-06 plus one working day is Monday 2026-11-09.
        assert_eq!(calendar().add_working_days(date("2026-11-06"), 1), Ok(date("2026-11-09")));
    }

    #[test]
    fn national_day_and_swap_saturday() {
        // 10-01..10-07 are holidays; Saturday 10-10 is a working day; 10-08 and 10-09 work.
        let calendar = calendar();
        assert_eq!(calendar.is_working_day(date("2026-10-10")), Ok(true));
        assert_eq!(calendar.is_working_day(date("2026-10-05")), Ok(false));
        assert_eq!(calendar.add_working_days(date("2026-09-30"), 3), Ok(date("2026-10-10")));
    }

    #[test]
    fn zero_days_on_a_holiday_is_next_working_day() {
        assert_eq!(calendar().add_working_days(date("2026-10-03"), 0), Ok(date("2026-10-08")));
    }

    #[test]
    fn uncovered_years_fail_closed() {
        let calendar = calendar();
        assert_eq!(calendar.is_working_day(date("2027-01-04")), Err(CalendarError::YearNotCovered { year: 2027 }));
        assert_eq!(calendar.is_working_day(date("2014-06-03")), Err(CalendarError::YearNotCovered { year: 2014 }));
        assert_eq!(calendar.add_working_days(date("2026-12-30"), 5), Err(CalendarError::YearNotCovered { year: 2027 }));
    }

    #[test]
    fn bad_rows_report_line_numbers() {
        let bad_date = WorkingDayCalendar::from_csv_str("date,kind,name\n2026-01-01,holiday,x\n2026-13-01,holiday,x\n");
        assert!(matches!(bad_date, Err(CalendarError::InvalidRow { line: 3, .. })));
        let bad_kind = WorkingDayCalendar::from_csv_str("date,kind,name\n2026-01-01,rest,x\n");
        assert!(matches!(bad_kind, Err(CalendarError::InvalidRow { line: 2, .. })));
        let twice = WorkingDayCalendar::from_csv_str("date,kind,name\n2026-01-01,holiday,x\n2026-01-01,workday,y\n");
        assert!(matches!(twice, Err(CalendarError::InvalidRow { line: 3, .. })));
    }

    #[test]
    fn covers_2015_to_2026() {
        let years: Vec<i32> = calendar().covered_years().collect();
        assert_eq!(years, (2015..=2026).collect::<Vec<_>>());
    }
}
