//! tessera's wire vocabulary: the one place the wire format is defined.
//!
//! The issuer (`tessera-server`), the verifier (`tessera-verify`), the gateway
//! (`tessera-gateway`) and the CLI (`tessera`) all speak to one another through
//! what this crate names: signing algorithms, the revocation feed's events, the
//! token and introspection answers, the server metadata, token-type URNs and token
//! prefixes, scope names, and the OAuth error codes with the error body. Each side uses these definitions rather
//! than its own copy, so a change to the contract fails to compile (or fails the
//! tests here, which pin the JSON shapes) instead of drifting on one side.
//!
//! Nothing else redefines what is here. The types are data only: they say what is
//! sent, not how strictly it is read. Parsing rules (the verifier's refusals, for
//! one) stay with the side that applies them. The crate depends on `serde` alone
//! and does no I/O.

pub mod acr;
pub mod algorithm;
pub mod audit;
pub mod confirmation;
pub mod error;
pub mod feed;
pub mod introspection;
pub mod metadata;
pub mod scope;
pub mod token;
pub mod token_type;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use audit::{AuditEventBody, AuditPage, EventKind, Outcome};
pub use confirmation::Confirmation;
pub use error::ErrorBody;
pub use feed::{Heartbeat, RevocationEntry, RevocationKind};
pub use introspection::{Introspection, OneOrMany};
pub use metadata::ServerMetadata;
pub use token::TokenResponse;
