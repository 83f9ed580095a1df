//! Filling in the confusable skeletons of accounts from before they were kept: the
//! decision every backend's migration makes the same way, apart from its SQL.

use std::collections::HashMap;

use tessera_core::Username;

/// What to write for the accounts that have no skeleton yet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SkeletonBackfill {
    /// (account id, skeleton): the account holds its name's look.
    pub holds: Vec<(String, String)>,
    /// (account id, id of the older account holding the look): both keep working,
    /// and no third look-alike can register.
    pub looks_like: Vec<(String, String)>,
}

/// Decides, oldest first, which of `pending` (id and stored username, ordered by
/// creation) take their skeleton and which look like an account that holds it:
/// one already in `holders` (skeleton → id and username), or an older one of
/// `pending`. Every look-alike, and every stored name that no longer parses, is
/// logged: an operator may want to disable one of two look-alikes.
pub fn backfill_skeletons(
    pending: impl IntoIterator<Item = (String, String)>,
    mut holders: HashMap<String, (String, String)>,
) -> SkeletonBackfill {
    let mut backfill = SkeletonBackfill::default();
    for (id, stored) in pending {
        let Ok(username) = Username::parse(&stored) else {
            // Reading it fails anyway, as corrupt; nothing here can mend it.
            tracing::warn!(id = %id, "a stored username is malformed; it gets no look-alike key");
            continue;
        };
        let skeleton = username.skeleton();
        match holders.get(&skeleton) {
            Some((holder_id, holder_name)) => {
                tracing::warn!(
                    username = %username,
                    looks_like = %holder_name,
                    "two existing accounts have usernames that look alike; both keep \
                     working, the older one keeps the name's look (no third look-alike can \
                     register); consider disabling the one that should not be there"
                );
                backfill.looks_like.push((id, holder_id.clone()));
            }
            None => {
                holders.insert(skeleton.clone(), (id.clone(), username.to_string()));
                backfill.holds.push((id, skeleton));
            }
        }
    }
    backfill
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_oldest_holds_the_look_and_a_holder_from_before_wins() {
        let held = HashMap::from([(
            Username::parse("bob").unwrap().skeleton(),
            ("b".to_owned(), "bob".to_owned()),
        )]);
        let pending = [
            ("1", "\u{430}dmin"),
            ("2", "admin"),
            ("3", "b\u{43e}b"),
            ("4", "carol"),
            ("5", "bad name"),
        ]
        .map(|(id, name)| (id.to_owned(), name.to_owned()));
        let backfill = backfill_skeletons(pending, held);
        let skeleton = |name: &str| Username::parse(name).unwrap().skeleton();
        assert_eq!(
            backfill,
            SkeletonBackfill {
                holds: vec![
                    ("1".into(), skeleton("\u{430}dmin")),
                    ("4".into(), skeleton("carol")),
                ],
                looks_like: vec![("2".into(), "1".into()), ("3".into(), "b".into())],
            }
        );
    }
}
