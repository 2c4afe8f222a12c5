//! Errors of application commands.

/// A rejected application command. Nothing is recorded for it.
///
/// Each variant carries a stable machine-readable `code`; variants with a `field` name the
/// request field to correct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationError {
    /// Malformed or invalid input (HTTP 400).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: String,
        message: String,
    },
    /// The officer's role or station does not allow the command (HTTP 403).
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        field: String,
        message: String,
    },
    /// No application with this id was submitted (HTTP 404).
    #[error("application not found; check the application id")]
    NotFound,
    /// The application's current state forbids the command (HTTP 409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The command breaks a rule of the policy (HTTP 422).
    #[error("{message}")]
    Rejected {
        code: &'static str,
        field: String,
        message: String,
    },
}

impl ApplicationError {
    pub(crate) fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn rejected(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::Rejected {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The application's stored history fails hash-chain verification, so no command may
    /// append to it until an inspector has examined it (HTTP 409).
    pub fn history_damaged(found: &crate::chain::ChainBreak) -> Self {
        Self::conflict("history_damaged", found.refusal())
    }

    /// Returns the stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. }
            | Self::Rejected { code, .. } => code,
            Self::NotFound => "application_not_found",
        }
    }

    /// Returns the request field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. }
            | Self::Forbidden { field, .. }
            | Self::Rejected { field, .. } => Some(field),
            Self::NotFound | Self::Conflict { .. } => None,
        }
    }
}

/// Result of handling an application command.
pub type Result<T> = std::result::Result<T, ApplicationError>;
