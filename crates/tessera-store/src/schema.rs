//! The rolling-upgrade rule both SQL backends apply when they open a store whose
//! schema is newer than the binary's: the store records the oldest schema version
//! that still fits (`oldest_compatible`), which only a migration that takes
//! something away raises (tessera-store-sql/tests/upgrades.rs holds them to it).

/// Whether a tessera of schema version `known` runs on a store at `found`
/// (newer) whose oldest compatible version is `oldest_compatible`: yes while the
/// newer migrations only added, which it logs; no once one took away what it uses.
pub fn runs_on_newer_schema(found: i64, known: i64, oldest_compatible: i64) -> bool {
    if oldest_compatible > known {
        return false;
    }
    tracing::info!(
        found,
        known,
        "the store's schema is newer than this tessera's, and only added to what it uses: \
         running on it (a rolling upgrade)"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_fits_until_it_says_otherwise() {
        assert!(runs_on_newer_schema(18, 17, 1));
        assert!(runs_on_newer_schema(18, 17, 17));
        assert!(!runs_on_newer_schema(18, 17, 18));
    }
}
