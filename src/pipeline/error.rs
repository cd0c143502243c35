//! Why a report stopped ([`PipelineError`], [`SetupError`]) and why one window attempt failed
//! ([`Failure`], internal: the retry loop decides what to do with it).

use crate::gladly::GladlyError;
use crate::kafka::access::AccessError;
use crate::kafka::admin::TopicError;
use crate::kafka::reader::ReadError;
use crate::kafka::registry::RegistryError;
use crate::kafka::SinkError;
use crate::report::DimensionList;
use crate::report::Report;

use super::checkpoint::CheckpointError;

/// Why a report stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Gladly refused in a way retrying cannot fix (credentials, permissions, bad request).
    #[error("{report}: Gladly refused the request: {source}")]
    Gladly {
        /// The report.
        report: Report,
        /// Gladly's answer.
        source: GladlyError,
    },
    /// Another instance took over the transactional id.
    #[error("{report}: {source}")]
    Fenced {
        /// The report.
        report: Report,
        /// The sink error.
        source: SinkError,
    },
    /// A window kept failing.
    #[error("{report}: window {window} failed {attempts} times; last error: {last}. The checkpoint did not move: the next cycle retries it")]
    Exhausted {
        /// The report.
        report: Report,
        /// The window.
        window: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The smallest window the report can request reached the row cap.
    #[error("{report}: window {window} returned {rows} rows, the suspected row cap (pipeline.row_cap = {cap}); Gladly may have truncated it and {smallest} cannot be split further. Raise pipeline.row_cap if your org's cap is higher")]
    CapReached {
        /// The report.
        report: Report,
        /// The window.
        window: String,
        /// Rows seen.
        rows: u64,
        /// The cap.
        cap: u64,
        /// What the window is, in words ("a single day", "a one-minute work-session window").
        smallest: &'static str,
    },
    /// Startup failed (registry, topics, producer, checkpoints).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A dimension list could not be refreshed.
    #[error("dimensions: {0}")]
    Dimensions(#[from] DimensionError),
    /// The events feed stopped: a range kept failing, or (`fatal`) Gladly refused in a way
    /// retrying cannot fix or another instance took over its transactional id.
    #[error("events: {message}")]
    Events {
        /// What happened, with the range.
        message: String,
        /// True when the process must stop.
        fatal: bool,
    },
    /// A shutdown was requested.
    #[error("shutting down")]
    Shutdown,
}

impl PipelineError {
    /// True for errors after which the whole process must stop.
    pub fn is_fatal(&self) -> bool {
        match self {
            PipelineError::Dimensions(e) => e.is_fatal(),
            PipelineError::Events { fatal, .. } => *fatal,
            _ => matches!(
                self,
                PipelineError::Fenced { .. }
                    | PipelineError::Gladly { .. }
                    | PipelineError::Setup(_)
            ),
        }
    }
}

/// Why a list could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum DimensionError {
    /// Gladly failed past the retries, refused the credentials, or answered something else than
    /// a list.
    #[error("{list}: GET failed: {source}")]
    Gladly {
        /// The list.
        list: DimensionList,
        /// Gladly's answer.
        source: GladlyError,
    },
    /// Kafka refused or could not be reached; the refresh's transaction was aborted.
    #[error("{list}: publishing failed: {source}")]
    Sink {
        /// The list.
        list: DimensionList,
        /// The producer's error.
        source: SinkError,
    },
    /// The checkpoint topic could not be read.
    #[error(transparent)]
    Checkpoints(#[from] CheckpointError),
    /// A list kept failing.
    #[error("{list}: failed {attempts} times; last error: {last}")]
    Exhausted {
        /// The list.
        list: DimensionList,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// A shutdown was requested.
    #[error("shutting down")]
    Shutdown,
}

impl DimensionError {
    /// True when retrying cannot help: refused credentials, or another instance holds the
    /// transactional id.
    pub fn is_fatal(&self) -> bool {
        match self {
            DimensionError::Gladly { source, .. } => source.is_credentials(),
            DimensionError::Sink { source, .. } => source.is_fenced(),
            _ => false,
        }
    }
}

/// What failed while connecting to Gladly, the registry or Kafka, or opening a report.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The Gladly client could not be built (settings).
    #[error("Gladly client: {0}")]
    Gladly(GladlyError),
    /// The brokers refused this client (a wrong `kafka.*` key) or did not answer.
    #[error("{0}")]
    Kafka(AccessError),
    /// The schema registry refused or could not be reached. Its message holds the causes, so
    /// it is not also a `source` (a `{:#}` chain would repeat them).
    #[error("schema registry: {0}")]
    Registry(RegistryError),
    /// A topic could not be created or has the wrong configuration. (Transparent: `{:#}`
    /// would print the message twice, as this error's and as its source's.)
    #[error(transparent)]
    Topics(#[from] TopicError),
    /// The checkpoint topic could not be read.
    #[error(transparent)]
    Checkpoints(#[from] CheckpointError),
    /// The checkpoint the report would resume from is there but cannot be read: resuming
    /// from `start` instead would publish the report's history again.
    #[error("checkpoint `{key}` in topic `{topic}` cannot be read ({error}); the report stops rather than start again from its configured start and publish its history again: {fix}")]
    UnreadableCheckpoint {
        /// The checkpoint's key (`run/work_sessions`).
        key: String,
        /// The checkpoint topic.
        topic: String,
        /// Why it cannot be read.
        error: String,
        /// The command that writes a new one over it.
        fix: String,
    },
    /// The report topic could not be read back to remember what it holds.
    #[error("reading back what the report topic holds (pipeline.publish = \"changes\"): {0}")]
    ReadBack(ReadError),
    /// A report's producer could not be created or initialised.
    #[error("{report}: {source}")]
    Producer {
        /// The report.
        report: Report,
        /// Why.
        source: SinkError,
    },
    /// A job was asked for with a re-read tier's scope: tiers run in the poll loop's job.
    #[error("{0}: a re-read tier has no job of its own; its passes run in the poll loop's job (Pipeline::cycle)")]
    RereadScope(Report),
    /// A report was asked for that is not enabled.
    #[error("report {0} is not enabled in [reports.{0}]")]
    NotEnabled(Report),
    /// The events feed's producer could not be created or initialised.
    #[error("events: {0}")]
    Events(String),
    /// A task of the service panicked.
    #[error("{task} panicked: {message}")]
    Panicked {
        /// Which task.
        task: &'static str,
        /// The panic's message.
        message: String,
    },
}

impl From<RegistryError> for SetupError {
    fn from(e: RegistryError) -> Self {
        SetupError::Registry(e)
    }
}

impl SetupError {
    /// A task's `JoinError` (a panic, or cancellation at shutdown).
    pub(crate) fn joined(task: &'static str, e: tokio::task::JoinError) -> Self {
        SetupError::Panicked {
            task,
            message: e.to_string(),
        }
    }
}

/// Why one attempt at a window failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Gladly answered with an error, or the body broke off.
    Gladly(GladlyError),
    /// Kafka refused or could not be reached (including creating the producer).
    Sink(SinkError),
    /// The task reading the window's rows panicked: a bug, retried like a transient error.
    ReaderPanicked(String),
    /// The registry refused or missed a new version of a derived value schema.
    Registry(RegistryError),
    /// A shutdown was requested.
    Shutdown,
}

impl Failure {
    /// What retrying cannot help, taken out of the failure: Gladly refused (credentials,
    /// permissions, a bad request) or another instance took over the transactional id.
    /// Anything else comes back as it was, to be retried.
    pub(crate) fn refusal(self) -> Result<Refusal, Failure> {
        match self {
            Failure::Gladly(e) if !e.is_retryable() => Ok(Refusal::Gladly(e)),
            Failure::Sink(e) if e.is_fenced() => Ok(Refusal::Fenced(e)),
            other => Err(other),
        }
    }
}

/// A failure retrying cannot fix.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Gladly refused: credentials, permissions, a bad request, a redirect.
    Gladly(GladlyError),
    /// Another instance took over the transactional id.
    Fenced(SinkError),
}

impl Refusal {
    /// The error that stops `report`.
    pub(crate) fn into_report_error(self, report: Report) -> PipelineError {
        match self {
            Refusal::Gladly(source) => PipelineError::Gladly { report, source },
            Refusal::Fenced(source) => PipelineError::Fenced { report, source },
        }
    }

    /// True when the whole process must stop: refused credentials, or fenced.
    pub(crate) fn stops_the_process(&self) -> bool {
        match self {
            Refusal::Gladly(e) => e.is_credentials(),
            Refusal::Fenced(_) => true,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Gladly(e) => e.fmt(f),
            Refusal::Fenced(e) => e.fmt(f),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Gladly(e) => e.fmt(f),
            Failure::Sink(e) => e.fmt(f),
            Failure::ReaderPanicked(m) => write!(f, "the window's reader panicked: {m}"),
            Failure::Registry(e) => write!(f, "schema registry: {e}"),
            Failure::Shutdown => f.write_str("shutting down"),
        }
    }
}

/// Why [`drive`] stopped before its last unit.
#[derive(Debug)]
pub(crate) enum Stop<U> {
    /// A shutdown was requested.
    Shutdown,
    /// A failure retrying cannot fix (refused credentials, a fenced producer).
    Refused {
        /// The unit it happened to.
        unit: U,
        /// What happened.
        refusal: Refusal,
    },
    /// A unit kept failing.
    Exhausted {
        /// The unit.
        unit: U,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// A unit too big for one transaction that cannot be split.
    TooBig {
        /// The unit.
        unit: U,
        /// Rows read when it stopped.
        rows: u64,
    },
}

/// Why the driver stopped at a list, as the refresh's error.
impl From<Stop<DimensionList>> for DimensionError {
    fn from(stop: Stop<DimensionList>) -> Self {
        match stop {
            Stop::Shutdown => DimensionError::Shutdown,
            Stop::Refused {
                unit: list,
                refusal: Refusal::Gladly(source),
            } => DimensionError::Gladly { list, source },
            Stop::Refused {
                unit: list,
                refusal: Refusal::Fenced(source),
            } => DimensionError::Sink { list, source },
            Stop::Exhausted {
                unit: list,
                attempts,
                last,
            } => DimensionError::Exhausted {
                list,
                attempts,
                last,
            },
            Stop::TooBig { unit: list, rows } => DimensionError::Exhausted {
                list,
                attempts: 1,
                last: format!("{rows} items do not fit in one transaction"),
            },
        }
    }
}

/// The pipeline error for a sink error outside a window: fenced stops the report, anything
/// else is a setup failure.
pub(crate) fn sink_failure(report: Report, e: SinkError) -> PipelineError {
    if e.is_fenced() {
        PipelineError::Fenced { report, source: e }
    } else {
        SetupError::Producer { report, source: e }.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_minute_says_it_is_a_minute_not_a_day() {
        let e = PipelineError::CapReached {
            report: Report::WORK_SESSIONS,
            window: "[2024-03-14T10:00:00Z, 2024-03-14T10:01:00Z]".into(),
            rows: 1000,
            cap: 1000,
            smallest: "a one-minute work-session window",
        };
        let m = e.to_string();
        assert!(
            m.contains("a one-minute work-session window cannot be split further"),
            "{m}"
        );
        assert!(
            !m.contains("day") && m.contains("pipeline.row_cap = 1000"),
            "{m}"
        );
    }
}
