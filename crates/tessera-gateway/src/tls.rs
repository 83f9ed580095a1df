//! The upstream connector: plain TCP for `http://`, rustls for `https://` with the
//! system's trusted roots (loaded only when some route needs them, so a gateway
//! with only `http://` upstreams starts on a machine without a CA bundle).

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::error::StartError;

pub fn connector(
    http: HttpConnector,
    needs_tls: bool,
) -> Result<HttpsConnector<HttpConnector>, StartError> {
    let mut roots = rustls::RootCertStore::empty();
    if needs_tls {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "cannot read some of the system's trusted certificates");
        }
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(StartError::Tls(
                "an https:// upstream needs trusted root certificates, and none were found \
                 on this system (install ca-certificates)"
                    .to_owned(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}
