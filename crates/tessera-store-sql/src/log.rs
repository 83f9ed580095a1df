//! What both backends' imports of another log's entries check (`tessera store
//! migrate`); how each numbers and inserts them stays its own.

use tessera_store::{Revocation, StoreError};

/// The sequences `entries` are imported under, in order, into a log whose counter
/// is at `current`, and the counter's value after them: the highest of those and
/// `latest` (the imported log's own high-water mark). An entry at or below `current`
/// would collide with, or come before, what the log holds: refused, as is a sequence
/// out of the database's range.
pub fn import_sequences(
    entries: &[Revocation],
    latest: u64,
    current: i64,
) -> Result<(Vec<i64>, i64), StoreError> {
    let sequence_of = |sequence: u64| {
        i64::try_from(sequence)
            .map_err(|_| StoreError::Invalid(format!("sequence {sequence} is out of range")))
    };
    let mut top = sequence_of(latest)?;
    let mut sequences = Vec::with_capacity(entries.len());
    for entry in entries {
        let sequence = sequence_of(entry.sequence)?;
        if sequence <= current {
            return Err(StoreError::Invalid(format!(
                "cannot import revocation {sequence}: the log is at {current} already"
            )));
        }
        top = top.max(sequence);
        sequences.push(sequence);
    }
    Ok((sequences, top))
}
