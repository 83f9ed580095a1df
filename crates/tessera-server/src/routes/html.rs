//! What tessera's pages for people share: one stylesheet, the frame around a page,
//! and the headers that keep a page from being framed, scripted or leaking its URL.
//! `/login`, the consent page and the authorization error page are made with it.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

const STYLE: &str = "\
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f3f4f6;\
color:#111827;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
main{box-sizing:border-box;width:min(23rem,calc(100vw - 2rem));margin:1rem;padding:2rem;\
background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.08),0 10px 30px rgba(0,0,0,.06)}\
h1{margin:0 0 1.25rem;font-size:1.5rem;font-weight:650}\
p{margin:0 0 1rem}\
label{display:block;margin:1rem 0 .35rem;font-size:.9rem;font-weight:600}\
input,textarea{box-sizing:border-box;width:100%;padding:.6rem .75rem;font:inherit;color:inherit;\
background:#fff;border:1px solid #d1d5db;border-radius:.45rem}\
textarea{min-height:4.5rem}\
fieldset{margin:1rem 0 0;padding:.25rem 1rem 1rem;border:1px solid #e5e7eb;border-radius:.45rem}\
legend{padding:0 .25rem;font-size:.9rem;font-weight:600}\
input:focus,textarea:focus{outline:2px solid #2563eb;outline-offset:1px;border-color:#2563eb}\
input[readonly]{color:#4b5563;background:#f3f4f6}\
button{width:100%;margin-top:1.5rem;padding:.65rem;font:inherit;font-weight:600;color:#fff;\
background:#2563eb;border:0;border-radius:.45rem;cursor:pointer}\
button:hover{background:#1d4ed8}\
button:focus-visible{outline:2px solid #1e3a8a;outline-offset:2px}\
button.secondary{color:#111827;background:#fff;border:1px solid #d1d5db}\
button.secondary:hover{background:#f9fafb}\
.choices{display:flex;gap:.75rem}.choices button{margin-top:1.25rem}\
ul.scopes{margin:0 0 1rem;padding:0 0 0 1.25rem}ul.scopes li{margin:.3rem 0}\
.muted{color:#4b5563;font-size:.9rem}\
.error{padding:.65rem .8rem;color:#991b1b;background:#fef2f2;border:1px solid #fecaca;border-radius:.45rem}\
.notice{padding:.65rem .8rem;color:#065f46;background:#ecfdf5;border:1px solid #a7f3d0;border-radius:.45rem}\
body.wide{display:block}\
main.wide{width:min(52rem,calc(100vw - 2rem));margin:1rem auto;padding:1.5rem 2rem}\
header.bar{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;\
margin:0 0 1rem;padding-bottom:1rem;border-bottom:1px solid #e5e7eb}\
header.bar strong{font-size:1.1rem}header.bar nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center}\
a{color:#1d4ed8}\
section{margin:1.75rem 0 0}h2{margin:0 0 .75rem;font-size:1.15rem;font-weight:650}\
ul.items{list-style:none;margin:0;padding:0}\
ul.items li{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;\
padding:.75rem 0;border-top:1px solid #e5e7eb}\
ul.items li:last-child{border-bottom:1px solid #e5e7eb}\
.item-main{flex:1 1 18rem}.item-main p{margin:0}\
.badge{display:inline-block;margin-left:.4rem;padding:0 .45rem;font-size:.8rem;font-weight:600;\
color:#065f46;background:#d1fae5;border-radius:1rem}\
button.inline{width:auto;margin:0;padding:.4rem .8rem}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:0 1.25rem}\
.check{display:flex;gap:.5rem;align-items:center;margin:1rem 0 0;font-weight:400}\
.check input{width:auto}\
form.inline{margin:0}form+p{margin-top:1rem}button.spaced{margin-top:1rem}\
.row{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end}.row input,.row select{width:auto;min-width:12rem}\
select{padding:.55rem .6rem;font:inherit;color:inherit;background:#fff;border:1px solid #d1d5db;border-radius:.45rem}\
.actions{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:1.25rem 0 0}\
button.danger{background:#b91c1c}button.danger:hover{background:#991b1b}\
.badge.off{color:#7f1d1d;background:#fee2e2}\
.stat{padding:1rem 0}.stat p{margin:0}.figure{font-size:2.25rem;font-weight:700;line-height:1.2}\
svg.chart{width:100%;height:auto}svg .success{fill:#2563eb}svg .failure{fill:#dc2626}svg .online{fill:#0f766e}\
svg .axis{font-size:11px;fill:#4b5563}svg .grid{stroke:#e5e7eb}\
.legend{font-size:.9rem;color:#374151}.key{display:inline-block;width:.8rem;height:.8rem;border-radius:.15rem}\
.key.success{background:#2563eb}.key.failure{background:#dc2626}.key.online{background:#0f766e}\
.key.second{margin-left:.75rem}\
.scroll{overflow-x:auto}table{width:100%;border-collapse:collapse;font-size:.9rem}\
th,td{padding:.45rem .5rem;text-align:left;border-bottom:1px solid #e5e7eb;vertical-align:top}\
th{color:#374151;font-weight:600}tr.failure td{background:#fef2f2}code{font-size:.85rem;word-break:break-all}\
.qr svg{display:block;width:12rem;height:12rem;margin:0 0 1rem}\
ol.codes{columns:2;margin:0 0 1rem;padding-left:1.75rem}ol.codes li{margin:.2rem 0}ol.codes code{font-size:1rem}\
.or{text-align:center;margin:1.25rem 0 0;color:#4b5563}[data-passkey]{margin-bottom:1.25rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{color:#4b5563}dd{margin:0}";

/// The one stylesheet, allowed by its hash: with no `'unsafe-inline'`, markup that
/// ever slipped past escaping could not bring styles of its own either.
static STYLE_SOURCE: LazyLock<String> = LazyLock::new(|| hash_source(STYLE));

/// The one script: the passkey buttons (WebAuthn has no form-post equivalent).
const PASSKEY_SCRIPT: &str = include_str!("passkeys.js");

/// The script, allowed by its hash the same way: nothing else runs.
static SCRIPT_SOURCE: LazyLock<String> = LazyLock::new(|| hash_source(PASSKEY_SCRIPT));

fn hash_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The passkey script, for a page with a `data-passkey` part.
pub fn passkey_script() -> Markup {
    html! { script { (PreEscaped(PASSKEY_SCRIPT)) } }
}

/// No script but ours (the passkey buttons), which may talk to tessera alone;
/// only our stylesheet; never framed. Forms post only to tessera,
/// but browsers hold the redirects that follow a form post to `form-action` too, so
/// each place a form's answer may lead (a `return_to`, a client's redirect URI) is
/// listed in `leads_to` as a CSP source, or the browser stops on tessera.
fn csp(leads_to: &[String]) -> HeaderValue {
    let mut form_action = String::from("'self'");
    for source in leads_to {
        form_action.push(' ');
        form_action.push_str(source);
    }
    let policy = format!(
        "default-src 'none'; style-src {}; script-src {}; connect-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
        *STYLE_SOURCE, *SCRIPT_SOURCE
    );
    // Sources are ASCII-serialised origins or schemes, so this always is a valid
    // header value.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'")
    })
}

/// The CSP source a URL's answer leads to: its origin, or for a native app's
/// private-use scheme (which has no origin) the scheme alone.
pub fn csp_source(url: &url::Url) -> String {
    match url.origin() {
        origin @ url::Origin::Tuple(..) => origin.ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", url.scheme()),
    }
}

/// An HTML page titled `title`, whose forms may lead to `leads_to` (CSP sources): a
/// card in the middle of the screen, as for signing in.
pub fn page(status: StatusCode, title: &str, leads_to: &[String], body: Markup) -> Response {
    document(status, title, leads_to, None, body)
}

/// A page of the full width a person's account or the console needs.
pub fn wide_page(status: StatusCode, title: &str, body: Markup) -> Response {
    document(status, title, &[], Some("wide"), body)
}

fn document(
    status: StatusCode,
    title: &str,
    leads_to: &[String],
    class: Option<&str>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body class=[class] { main class=[class] { (body) } }
        }
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, csp(leads_to)),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // Not `no-referrer`: with it, browsers send `Origin: null` on a form's
            // own POST, which the origin check rightly refuses. `same-origin` still
            // tells other sites (where the forms lead among them) nothing.
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// `text` (an `otpauth://` link, for an authenticator app to scan) as a QR code
/// drawn inline in SVG: no image request, nothing the page's policy must allow,
/// and crisp at any size. `None` if the text is too long for a QR code. Medium
/// error correction, as apps' own enrolment codes use; `label` names it for
/// screen readers, which cannot read it.
pub fn qr_code(text: &str, label: &str) -> Option<Markup> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // The renderer writes an XML declaration first, which inline SVG does not take.
    let svg = svg.split_once("<svg").map(|(_, rest)| {
        format!(
            "<svg role=\"img\" aria-label=\"{}\"{rest}",
            maud::html! { (label) }.into_string()
        )
    })?;
    Some(PreEscaped(svg))
}

/// A base32 key in groups of four, as authenticator apps show them.
pub fn spaced_key(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Recovery codes just made, shown this once (after setting up an authenticator
/// app, on the account page or while signing in), then on to `next`.
pub fn recovery_codes_body(
    codes: &[tessera_core::RecoveryCode],
    next: &str,
    first: bool,
) -> Markup {
    html! {
        h1 { "Your recovery codes" }
        @if first {
            p.notice role="status" { "Two-step sign-in is on." }
        }
        p {
            "If you lose your authenticator app, each of these codes lets you sign in once \
             in its place. Keep them somewhere safe, apart from your phone: this page is \
             the only time they are shown."
        }
        ol.codes {
            @for code in codes {
                li { code { (code.expose()) } }
            }
        }
        p { a href=(next) { "Continue" } }
    }
}

/// A page of the full width that says what went wrong (`why`, a sentence) and
/// leads back (`back`: the address and its words): a form of `/account` or
/// `/admin` refused, or a request the service could not answer.
pub fn problem_page(status: StatusCode, title: &str, why: &str, back: (&str, &str)) -> Response {
    wide_page(
        status,
        title,
        html! {
            h1 { (title) }
            p.error role="alert" { (why) }
            p { a href=(back.0) { (back.1) } }
        },
    )
}

/// An API error description (`invalid username or password`) as a sentence for a
/// person: capitalised, with a full stop.
pub fn sentence(description: &str) -> String {
    let mut chars = description.trim().chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The hidden inputs that carry a request (`params`, form-encoded) and the session's
/// CSRF token through a page's form, back to tessera.
pub fn carried(params: &impl serde::Serialize, csrf: &str) -> Markup {
    let encoded = serde_urlencoded::to_string(params).unwrap_or_default();
    html! {
        @for (name, value) in url::form_urlencoded::parse(encoded.as_bytes()) {
            input type="hidden" name=(name) value=(value);
        }
        input type="hidden" name="csrf" value=(csrf);
    }
}

/// `303 See Other` to `location`, or to `/login` should it not be a header value.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/login"))],
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qr_code_is_inline_svg_named_for_screen_readers() {
        let link =
            "otpauth://totp/tessera:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=tessera";
        let svg = qr_code(link, "Scan \"this\" <code>").unwrap().into_string();
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"Scan &quot;this&quot; &lt;code&gt;\" "),
            "{svg}"
        );
        assert!(!svg.contains("<?xml"));
        assert!(svg.contains("viewBox") || svg.contains("width=\""), "{svg}");
        assert!(svg.contains("#000000") && svg.ends_with("</svg>"), "{svg}");
        // The same text gives the same drawing; another text another one.
        assert_eq!(
            svg,
            qr_code(link, "Scan \"this\" <code>").unwrap().into_string()
        );
        assert_ne!(
            svg,
            qr_code("otpauth://totp/x", "Scan \"this\" <code>")
                .unwrap()
                .into_string()
        );
        // Beyond what a QR code holds.
        assert!(qr_code(&"x".repeat(4000), "too long").is_none());
        if let Some(out) = std::env::var_os("TESSERA_QR_SAMPLE") {
            std::fs::write(
                out,
                format!("<!doctype html><body style=\"width:240px\">{svg}</body>"),
            )
            .unwrap();
        }
    }
}
