//! What a set of windows produced.

use std::collections::BTreeMap;

use super::conversations::ConversationSummary;
use crate::observe::WindowCounts;

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
