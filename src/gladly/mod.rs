//! The source: Gladly HTTP client (auth, pacing, retry), report requests, streaming CSV rows.
