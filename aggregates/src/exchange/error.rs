//! Errors of the exchange aggregates.

/// A rejected exchange command. Nothing is recorded for it.
///
/// Each variant carries a stable machine-readable `code`; variants with a `field` name the
/// request field to correct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Malformed or invalid input (HTTP 400).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: String,
        message: String,
    },
    /// The officer may not run the command (HTTP 403).
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        field: String,
        message: String,
    },
    /// The aggregate the command names was never recorded (HTTP 404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The current state forbids the command (HTTP 409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The command breaks a rule of the policy or the exchange procedure (HTTP 422).
    #[error("{message}")]
    Rejected {
        code: &'static str,
        field: String,
        message: String,
    },
}

impl ExchangeError {
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn rejected(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Rejected {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Returns the stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Rejected { code, .. } => code,
        }
    }

    /// Returns the request field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. }
            | Self::Forbidden { field, .. }
            | Self::Rejected { field, .. } => Some(field),
            Self::NotFound { .. } | Self::Conflict { .. } => None,
        }
    }
}

/// Result of handling an exchange command.
pub type Result<T> = std::result::Result<T, ExchangeError>;
