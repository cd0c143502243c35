//! What a set of windows produced.

use std::collections::BTreeMap;

use crate::observe::{Metrics, WindowCounts};

/// Dead letters quoted as examples in a summary (the rest are counted by reason).
pub(super) const DEAD_LETTER_EXAMPLES: usize = 3;

/// What a set of windows produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Windows published.
    pub windows: u64,
    /// Rows fetched from Gladly.
    pub rows: u64,
    /// Records produced (tombstones included).
    pub records: u64,
    /// Tombstones produced.
    pub tombstones: u64,
    /// Records not published because their key's last record already said the same
    /// (`pipeline.publish = "changes"`).
    pub suppressed: u64,
    /// Dead letters produced.
    pub dead_letters: u64,
    /// Dead letters by reason label (see [`crate::observe::reason_label`]).
    pub dead_letter_reasons: BTreeMap<String, u64>,
    /// The first few dead letters (`line <n>: <reason>`), for logs.
    pub dead_letter_examples: Vec<String>,
    /// Windows split because they reached the row cap.
    pub splits: u64,
    /// Window attempts that failed and were retried.
    pub retries: u64,
    /// Conversations published with the windows (`[conversations]`).
    pub conversations: ConversationSummary,
    /// Of `windows`, those of re-read tier passes.
    pub reread_windows: u64,
    /// Re-read tier passes completed (one with nothing to re-read included).
    pub reread_passes: u64,
}

impl Summary {
    /// The dead letters in one line: counts by reason, then the first few, e.g.
    /// `2 malformed row, 1 column \`within_sla\`; first: line 3: …`.
    pub fn dead_letter_line(&self) -> String {
        let counts: Vec<String> = self
            .dead_letter_reasons
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        format!(
            "{}; first: {}",
            counts.join(", "),
            self.dead_letter_examples.join(" | ")
        )
    }

    /// The counts the metrics keep of a committed window.
    pub fn counts(&self) -> WindowCounts<'_> {
        WindowCounts {
            rows: self.rows,
            records: self.records,
            tombstones: self.tombstones,
            suppressed: self.suppressed,
            dead_letter_reasons: &self.dead_letter_reasons,
        }
    }

    /// Adds `o`'s counts to this one's.
    pub fn add(&mut self, o: &Summary) {
        self.windows += o.windows;
        self.rows += o.rows;
        self.records += o.records;
        self.tombstones += o.tombstones;
        self.suppressed += o.suppressed;
        self.dead_letters += o.dead_letters;
        for (reason, n) in &o.dead_letter_reasons {
            *self.dead_letter_reasons.entry(reason.clone()).or_default() += n;
        }
        let room = DEAD_LETTER_EXAMPLES.saturating_sub(self.dead_letter_examples.len());
        self.dead_letter_examples
            .extend(o.dead_letter_examples.iter().take(room).cloned());
        self.conversations.add(&o.conversations);
        self.splits += o.splits;
        self.retries += o.retries;
        self.reread_windows += o.reread_windows;
        self.reread_passes += o.reread_passes;
    }
}

/// What publishing a window's conversations did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConversationSummary {
    /// Conversations asked for (one `conversation()` call each; a 301 costs a second GET).
    pub fetched: u64,
    /// Records published, tombstones included.
    pub records: u64,
    /// Tombstones (deleted conversations).
    pub tombstones: u64,
    /// Conversations sent to the dead-letter topic.
    pub dead_letters: u64,
}

impl ConversationSummary {
    /// Adds another window's.
    pub fn add(&mut self, o: &ConversationSummary) {
        self.fetched += o.fetched;
        self.records += o.records;
        self.tombstones += o.tombstones;
        self.dead_letters += o.dead_letters;
    }

    /// Counts one conversation's outcome.
    pub(crate) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Found => self.records += 1,
            Outcome::Deleted => {
                self.records += 1;
                self.tombstones += 1;
            }
            Outcome::DeadLetter => self.dead_letters += 1,
        }
    }

    /// Counts a committed window's conversations by outcome (an aborted window's count for
    /// nothing, like its records).
    pub fn count_committed(&self, metrics: &Metrics) {
        for (outcome, n) in [
            (Outcome::Found, self.records - self.tombstones),
            (Outcome::Deleted, self.tombstones),
            (Outcome::DeadLetter, self.dead_letters),
        ] {
            if n > 0 {
                metrics.count(
                    "gladly_kafka_conversations_fetched_total",
                    &[("outcome", outcome.name())],
                    n as f64,
                );
            }
        }
    }
}

/// What became of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Found,
    Deleted,
    DeadLetter,
}

impl Outcome {
    /// Its `outcome` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::Deleted => "deleted",
            Outcome::DeadLetter => "dead_letter",
        }
    }
}
