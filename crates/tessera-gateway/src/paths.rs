//! Request paths: which route a path matches, the path sent upstream, and the check
//! of that path.
//!
//! Everything here works on the raw, percent-encoded path, because that is what
//! the upstream gets. The check runs on the path as it will be sent (after
//! `strip_prefix` and the join with the upstream's base path): the gateway makes
//! no promise about a path it did not check, so checking the request path and
//! then sending another one would check nothing.

/// Why a path is not forwarded (a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A `.` or `..` segment, in any reading an upstream might make of the path.
    DotSegment,
    /// `%2e`, `%2f`, `%5c` or a raw `\` on a route without `allow_encoded_slashes`.
    Encoded,
}

impl Refusal {
    pub fn description(self) -> &'static str {
        match self {
            Self::DotSegment => "the path has a . or .. segment (also encoded, or after ;)",
            Self::Encoded => {
                "the path has an encoded . / or \\ (%2e, %2f, %5c) or a \\, which this route does not allow"
            }
        }
    }
}

/// What follows `prefix` in `path` when the prefix matches on a segment boundary:
/// `""` or something starting with `/`. A trailing `/` on the prefix makes no
/// difference, so that `/orders` never matches `/ordersx` and `/orders/` matches
/// `/orders` too (a request for the directory itself belongs to that route, not
/// to whatever broader route would otherwise catch it).
fn after_prefix<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    // A request target that is not a path (`*`, an authority) is no route's.
    if !path.starts_with('/') {
        return None;
    }
    let rest = path.strip_prefix(prefix.trim_end_matches('/'))?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Whether `prefix` matches `path` (on a segment boundary).
pub fn matches(prefix: &str, path: &str) -> bool {
    after_prefix(prefix, path).is_some()
}

/// The path sent upstream for `path` on a route of `prefix`: the upstream's
/// `base` path, then the request path, less the prefix with `strip_prefix`.
/// `None` if the prefix does not match the path.
pub fn upstream_path(prefix: &str, strip_prefix: bool, base: &str, path: &str) -> Option<String> {
    let rest = if strip_prefix {
        after_prefix(prefix, path)?
    } else {
        after_prefix(prefix, path).map(|_| path)?
    };
    Some(match (base.is_empty(), rest.is_empty()) {
        // `/orders` stripped of `/orders` is the base itself, or `/`: an HTTP
        // request target cannot be empty.
        (true, true) => "/".to_owned(),
        (false, true) => base.to_owned(),
        _ => format!("{base}{rest}"),
    })
}

/// Checks a path about to be sent upstream (or a configured prefix or base path).
///
/// Always refused: a `.` or `..` segment in any reading of the path an upstream
/// might make, that is splitting on `/` and `\`, raw or percent-encoded, decoding
/// `%2e`, and cutting `;` parameters (`..;` is `..` to Tomcat). An upstream that
/// resolved such a segment would serve a path outside the route's, or another
/// route's without its checks.
///
/// Refused unless `allow_encoded_slashes`: any `%2e`, `%2f`, `%5c` (either case)
/// and a raw `\`. No client needs to encode a dot, and upstreams disagree on
/// whether an encoded `/` or a `\` separates segments, which is exactly the
/// ambiguity an attacker uses to make the gateway and the upstream see different
/// paths. With `allow_encoded_slashes` they pass through as they are, since the
/// dot-segment rule above already covers every way of reading them.
///
/// Decoding is one level, as an upstream's is: `%252e` is the literal text `%2e`
/// and passes; an upstream that decoded twice would be broken beyond what the
/// gateway can repair.
pub fn check(path: &str, allow_encoded_slashes: bool) -> Result<(), Refusal> {
    let lower = path.to_ascii_lowercase();
    // Each pattern is `%` and two hex digits and each replacement is `/` or `.`,
    // so no replacement creates or breaks another pattern: this is one decoding.
    let readings = lower
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace('\\', "/")
        .replace("%2e", ".");
    let dot_segment = readings.split('/').any(|segment| {
        let name = segment.split(';').next().unwrap_or(segment);
        name == "." || name == ".."
    });
    if dot_segment {
        return Err(Refusal::DotSegment);
    }
    let encoded = lower.contains('\\') || ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e));
    if encoded && !allow_encoded_slashes {
        return Err(Refusal::Encoded);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        for prefix in ["/orders", "/orders/"] {
            for path in [
                "/orders",
                "/orders/",
                "/orders/1",
                "/orders//x",
                "/orders/..",
            ] {
                assert!(matches(prefix, path), "{prefix} {path}");
            }
            for path in [
                "/ordersx",
                "/orders../secret",
                "/orders%2e%2e/secret",
                "/orders%2fx",
                "/order",
                "/",
                "",
                "*",
                "orders",
                "/x/orders",
            ] {
                assert!(!matches(prefix, path), "{prefix} {path}");
            }
        }
        for path in ["/", "/x", "/x/y"] {
            assert!(matches("/", path), "{path}");
        }
        for path in ["", "*", "x"] {
            assert!(!matches("/", path), "{path}");
        }
        assert!(matches("/a/b", "/a/b/c"));
        assert!(!matches("/a/b", "/a/bc"));
        assert!(!matches("/a/b", "/a"));
    }

    #[test]
    fn upstream_paths_join_the_base_and_the_rest() {
        let cases = [
            // prefix, base, strip, request path, upstream path
            ("/s", "/base", true, "/s/x", Some("/base/x")),
            ("/s", "/base", true, "/s", Some("/base")),
            ("/s", "/base", true, "/s/", Some("/base/")),
            ("/s", "", true, "/s", Some("/")),
            ("/s", "", true, "/s/x/y", Some("/x/y")),
            ("/s", "/base", false, "/s/x", Some("/base/s/x")),
            ("/s", "", false, "/s", Some("/s")),
            ("/", "/base", true, "/x", Some("/base/x")),
            ("/", "/base", false, "/", Some("/base/")),
            ("/", "", true, "/", Some("/")),
            // The attack this was written for: no match, so nothing to send.
            ("/s", "/base", true, "/s../secret", None),
            ("/s", "/base", true, "/sx/y", None),
            ("/s", "/base", false, "/sx/y", None),
            // What the request path carries reaches the joined path, to be checked.
            ("/s", "/base", true, "/s/../secret", Some("/base/../secret")),
            ("/s", "/base", true, "/s/a%2fb", Some("/base/a%2fb")),
        ];
        for (prefix, base, strip, path, expected) in cases {
            let got = upstream_path(prefix, strip, base, path);
            assert_eq!(got.as_deref(), expected, "{prefix} {base} {strip} {path}");
        }
    }

    #[test]
    fn dot_segments_are_refused_in_every_reading() {
        for allow in [false, true] {
            for path in [
                "/a/../b",
                "/a/./b",
                "/a/..",
                "/a/.",
                "/..",
                "/base/../secret",
                "/a/..;/b",
                "/a/.;jsessionid=1/b",
                "/a/..\\b",
                "/a\\..\\b",
                "/%2e%2e/x",
                "/%2E%2e/x",
                "/.%2e/x",
                "/%2e./x",
                "/a/%2E",
                "/a%2f..%2fb",
                "/a%2F%2e%2e%2Fb",
                "/a%5c..%5cb",
                "/a%5C.%5Cb",
                "/a/%2e%2e;x/b",
            ] {
                assert_eq!(
                    check(path, allow),
                    Err(Refusal::DotSegment),
                    "{path} {allow}"
                );
            }
        }
    }

    #[test]
    fn encoded_dots_and_slashes_and_backslashes_need_the_route_to_allow_them() {
        for path in [
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a%5Cb",
            "/a\\b",
            "/a%2eb",
            "/a%2Eb",
            "/.well-known%2ex",
            "/a/%2e%2e%2e",
        ] {
            assert_eq!(check(path, false), Err(Refusal::Encoded), "{path}");
            assert_eq!(check(path, true), Ok(()), "{path}");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for allow in [false, true] {
            for path in [
                "/",
                "/a/b",
                "/a/..b",
                "/a/b..",
                "/s../secret",
                "/a/...",
                "/a/.well-known/x",
                "/a//b",
                "/a;b=c/d",
                "/caf%C3%A9",
                "/a%20b",
                // One decoding: these are the texts %2e, %2f and %5c to the upstream.
                "/a/%252e%252e/b",
                "/a%252fb",
                "/a%255cb",
                "",
            ] {
                assert_eq!(check(path, allow), Ok(()), "{path} {allow}");
            }
        }
    }
}
