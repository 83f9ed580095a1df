//! The token endpoint's throughput with DPoP (issue 17): client-credentials
//! requests with a fresh DPoP proof each, against the same requests without one
//! and against hello world, on the same server with the same client code (closed
//! loop, keep-alive connections, as `wrk` measures).
//!
//! Proofs are signed before their phase starts (each is good once, so each
//! request needs its own), so the load generator's signatures do not take the
//! server's CPU during the measurement; a phase ends early when they run out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tessera_keys::{Algorithm, SigningKey, generate};

use crate::code_flow::{Connection, split, timed};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The token endpoint, exactly as proofs name it (`htu`).
    #[arg(long)]
    token_url: String,
    #[arg(long)]
    hello_url: String,
    /// A confidential client allowed the client_credentials grant.
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The proofs' algorithm: ES256 (what browsers' WebCrypto and most clients
    /// use) or EdDSA.
    #[arg(long, default_value = "ES256")]
    proof_alg: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Hello,
    Bearer,
    Dpop,
}

/// The client's key and the proofs made with it.
struct Prover {
    key: SigningKey,
    header: Vec<u8>,
    made: AtomicU64,
}

impl Prover {
    fn new(algorithm: Algorithm) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8(algorithm, &generate(algorithm)?)?;
        let full = serde_json::to_value(key.public_jwk())?;
        let mut jwk = serde_json::Map::new();
        for member in ["kty", "crv", "x", "y"] {
            if let Some(value) = full.get(member) {
                jwk.insert(member.to_owned(), value.clone());
            }
        }
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": algorithm.as_str(), "jwk": jwk})
            .to_string()
            .into_bytes();
        Ok(Self {
            key,
            header,
            made: AtomicU64::new(0),
        })
    }

    /// `count` proofs for POST on `url`, signed on two threads.
    fn proofs(self: &Arc<Self>, url: &str, count: usize) -> anyhow::Result<Vec<String>> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let halves: Vec<_> = [count / 2, count - count / 2]
            .into_iter()
            .map(|n| {
                let (prover, url) = (self.clone(), url.to_owned());
                std::thread::spawn(move || {
                    (0..n)
                        .map(|_| {
                            let jti = prover.made.fetch_add(1, Ordering::Relaxed);
                            let claims = serde_json::json!({
                                "jti": format!("bench-{jti}"),
                                "htm": "POST",
                                "htu": url,
                                "iat": now,
                            });
                            prover
                                .key
                                .sign_jws(&prover.header, claims.to_string().as_bytes())
                                .map_err(anyhow::Error::from)
                        })
                        .collect::<anyhow::Result<Vec<String>>>()
                })
            })
            .collect();
        let mut proofs = Vec::with_capacity(count);
        for half in halves {
            proofs.extend(
                half.join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??,
            );
        }
        Ok(proofs)
    }
}

/// Runs `phase` on every connection for the configured time (or until `proofs`
/// run out): requests per second.
async fn measure(
    args: &Args,
    basic: &str,
    phase: Phase,
    proofs: Vec<String>,
) -> anyhow::Result<f64> {
    let url = match phase {
        Phase::Hello => &args.hello_url,
        Phase::Bearer | Phase::Dpop => &args.token_url,
    };
    let (authority, path) = split(url)?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let body = "grant_type=client_credentials".to_owned();
    let mut tasks = Vec::new();
    // Each connection its own share of the proofs: a lock shared by every
    // connection would cost the load generator more in this phase than in the
    // others, and so lower the figure for a reason of the client's own.
    let mut shares: Vec<Vec<String>> = (0..args.connections).map(|_| Vec::new()).collect();
    for (at, proof) in proofs.into_iter().enumerate() {
        shares[at % args.connections.max(1)].push(proof);
    }
    for mut proofs in shares {
        let (stop, done) = (stop.clone(), done.clone());
        let (authority, path, basic, body) = (
            authority.clone(),
            path.clone(),
            basic.to_owned(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(&authority).await?;
            while !stop.load(Ordering::Relaxed) {
                let (status, _, answer) = match phase {
                    Phase::Hello => {
                        connection
                            .send(hyper::Method::GET, &path, &[], None)
                            .await?
                    }
                    Phase::Bearer => {
                        connection
                            .send(
                                hyper::Method::POST,
                                &path,
                                &[("authorization", &basic)],
                                Some(body.clone()),
                            )
                            .await?
                    }
                    Phase::Dpop => {
                        let Some(proof) = proofs.pop() else {
                            break;
                        };
                        connection
                            .send(
                                hyper::Method::POST,
                                &path,
                                &[("authorization", &basic), ("dpop", &proof)],
                                Some(body.clone()),
                            )
                            .await?
                    }
                };
                anyhow::ensure!(
                    status == 200,
                    "{path} answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
                if phase == Phase::Dpop {
                    anyhow::ensure!(
                        answer.windows(15).any(|w| w == b"\"token_type\":\"D"),
                        "not a DPoP token: {}",
                        String::from_utf8_lossy(&answer)
                    );
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    timed(tasks, &stop, &done, args.seconds).await
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    use base64::Engine;
    let encode =
        |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(&args.client_id),
            encode(&args.client_secret)
        ))
    );
    let algorithm = match args.proof_alg.as_str() {
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        other => anyhow::bail!("--proof-alg {other}: ES256 or EdDSA"),
    };
    let prover = Arc::new(Prover::new(algorithm).context("a client key")?);
    let mut rates: [(&str, Vec<f64>); 3] = [
        ("hello", Vec::new()),
        ("bearer", Vec::new()),
        ("dpop", Vec::new()),
    ];
    let mut last_bearer = 0.0_f64;
    for _ in 0..args.rounds {
        for (index, phase) in [Phase::Hello, Phase::Bearer, Phase::Dpop]
            .into_iter()
            .enumerate()
        {
            let proofs = if phase == Phase::Dpop {
                // Enough for the phase at the bearer rate, and half as many again.
                let count = (last_bearer * args.seconds as f64 * 1.5).ceil() as usize + 1000;
                let url = args.token_url.clone();
                let prover = prover.clone();
                tokio::task::spawn_blocking(move || prover.proofs(&url, count)).await??
            } else {
                Vec::new()
            };
            let rate = measure(&args, &basic, phase, proofs).await?;
            if phase == Phase::Bearer {
                last_bearer = rate;
            }
            rates[index].1.push(rate);
        }
    }
    let mut out = serde_json::Map::new();
    for (name, list) in &rates {
        let mean = list.iter().sum::<f64>() / list.len().max(1) as f64;
        out.insert(
            format!("{name}_per_second"),
            serde_json::json!(mean.round()),
        );
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// A DPoP token request's own cryptography per second on `threads` threads: the
/// check of one proof's signature (`algorithm`, a key parsed once, as the server
/// keeps a client's key) and one Ed25519 signature over an access token's signing
/// input (tessera's default access-token key), with aws-lc-rs as tessera does
/// both. With hello world's rate it bounds the token endpoint with DPoP: a request
/// that did nothing but these and hello world's HTTP would reach
/// `1 / (1/hello + 1/rate)` per second.
pub fn dpop_crypto_rate(algorithm: &str, threads: usize, seconds: u64) -> anyhow::Result<f64> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair, UnparsedPublicKey,
    };
    let unspecified = |_: aws_lc_rs::error::Unspecified| anyhow::anyhow!("aws-lc-rs refused");
    let rng = SystemRandom::new();
    // A proof's signing input is its header (with the key) and claims: ~300 bytes.
    let proof_input = vec![b'p'; 300];
    let (public, signature): (UnparsedPublicKey<Vec<u8>>, Vec<u8>) = match algorithm {
        "ES256" => {
            let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(unspecified)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref())
                .map_err(|_| anyhow::anyhow!("aws-lc-rs refused its own key"))?;
            let signature = pair.sign(&rng, &proof_input).map_err(unspecified)?;
            (
                UnparsedPublicKey::new(
                    &ECDSA_P256_SHA256_FIXED,
                    pair.public_key().as_ref().to_vec(),
                ),
                signature.as_ref().to_vec(),
            )
        }
        "EdDSA" => {
            let pair = Ed25519KeyPair::generate().map_err(unspecified)?;
            let signature = pair.sign(&proof_input);
            (
                UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec()),
                signature.as_ref().to_vec(),
            )
        }
        other => anyhow::bail!("--proof-alg {other}: ES256 or EdDSA"),
    };
    let access = Arc::new(Ed25519KeyPair::generate().map_err(unspecified)?);
    let shared = Arc::new((public, signature, proof_input));
    let access_token = vec![b'a'; 400];
    Ok(crate::code_flow::rate(threads, seconds, move || {
        let (shared, access, access_token) = (shared.clone(), access.clone(), access_token.clone());
        move || {
            let (public, signature, proof_input) = &*shared;
            let checked = public.verify(proof_input, signature).is_ok();
            let _ = access.sign(&access_token);
            checked
        }
    }))
}
