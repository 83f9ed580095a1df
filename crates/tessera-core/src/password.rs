use std::fmt;

use zeroize::Zeroizing;

/// A password as the user typed it: 8 to 1024 bytes of UTF-8, kept byte for byte
/// (no normalisation, so what was set is exactly what must be typed). Wiped from memory
/// on drop; never printed.
pub struct Password(Zeroizing<String>);

pub const PASSWORD_MIN_BYTES: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {PASSWORD_MIN_BYTES} bytes")]
    TooShort,
    #[error("password must be at most {PASSWORD_MAX_BYTES} bytes")]
    TooLong,
}

impl Password {
    pub fn parse(input: String) -> Result<Self, PasswordError> {
        let input = Zeroizing::new(input);
        if input.len() < PASSWORD_MIN_BYTES {
            return Err(PasswordError::TooShort);
        }
        if input.len() > PASSWORD_MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(input))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds_are_in_bytes() {
        assert_eq!(
            Password::parse("1234567".into()).err(),
            Some(PasswordError::TooShort)
        );
        assert!(Password::parse("12345678".into()).is_ok());
        // four two-byte characters are eight bytes
        assert!(Password::parse("éééé".into()).is_ok());
        assert!(Password::parse("x".repeat(1024)).is_ok());
        assert_eq!(
            Password::parse("x".repeat(1025)).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let p = Password::parse("correct horse battery".into()).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }

    proptest! {
        #[test]
        fn accepted_iff_length_in_range(input in ".{0,600}") {
            let len = input.len();
            let ok = Password::parse(input).is_ok();
            prop_assert_eq!(ok, (PASSWORD_MIN_BYTES..=PASSWORD_MAX_BYTES).contains(&len));
        }
    }
}
