use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A user's stable identifier: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(uuid::Uuid);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    pub fn parse(input: &str) -> Option<Self> {
        uuid::Uuid::try_parse(input).ok().map(Self)
    }

    /// The id's 16 bytes (a WebAuthn user handle).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0.hyphenated())
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a user may do beyond managing their own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (known roles: admin)")]
pub struct RoleError(pub String);

impl Role {
    /// Every role there is, for a form that offers them.
    pub const ALL: [Role; 1] = [Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            other => Err(RoleError(other.to_owned())),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A set of roles, stored as a space-separated list (the shape OAuth uses for scopes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Roles(Vec<Role>);

impl Roles {
    pub fn new(mut roles: Vec<Role>) -> Self {
        roles.sort();
        roles.dedup();
        Self(roles)
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn from_stored(stored: &str) -> Result<Self, RoleError> {
        stored
            .split_whitespace()
            .map(Role::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_storage() {
        let roles = Roles::new(vec![Role::Admin, Role::Admin]);
        assert_eq!(roles.to_stored(), "admin");
        assert_eq!(Roles::from_stored("admin").unwrap(), roles);
        assert_eq!(Roles::from_stored("").unwrap(), Roles::default());
        assert!(Roles::from_stored("root").is_err());
    }

    #[test]
    fn user_ids_parse_back() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()), Some(id));
        assert_eq!(UserId::parse("not-a-uuid"), None);
    }
}
