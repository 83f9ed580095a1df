//! Authentication context class references (`acr`): how strongly the person
//! behind a token proved who they are, as tessera names it. Ordered: a value
//! later in [`ACR_VALUES`] meets every requirement an earlier one does.

/// One factor (a password).
pub const ACR_ONE_FACTOR: &str = "1";
/// Two factors of different kinds (a password and a one-time code or a key).
pub const ACR_TWO_FACTORS: &str = "2";
/// Every `acr` tessera issues, weakest first (discovery's `acr_values_supported`).
pub const ACR_VALUES: [&str; 2] = [ACR_ONE_FACTOR, ACR_TWO_FACTORS];

/// Whether a token's `acr` meets a `required` one: by tessera's order for its
/// own values, by equality for any other.
pub fn meets(acr: &str, required: &str) -> bool {
    let rank = |value: &str| ACR_VALUES.iter().position(|v| *v == value);
    match (rank(acr), rank(required)) {
        (Some(have), Some(need)) => have >= need,
        _ => acr == required,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_factors_meet_one_and_not_the_other_way() {
        assert!(meets("2", "1") && meets("2", "2") && meets("1", "1"));
        assert!(!meets("1", "2"));
        assert!(meets("urn:x", "urn:x") && !meets("2", "urn:x") && !meets("urn:x", "1"));
    }
}
