//! Throughput of the OpenID Connect code flow for a signed-in user whose consent
//! is remembered, measured the way `wrk` measures (closed loop, keep-alive
//! connections, as fast as each answers), against a baseline on the same server
//! with the same client code: hello world (`--hello-url`).
//!
//! Phases, alternated `rounds` times: hello world; authorize (`GET` the request with
//! the session cookie, a `302`/`303` with a code, which is kept); exchange (`POST`
//! each kept code to the token endpoint); userinfo (`GET` with the last access
//! token); the whole flow (authorize then exchange, one flow per iteration). The
//! same run works against any provider (panva's `oidc-provider` in
//! `scripts/bench-oidc`): only URLs, the cookie and the client change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::Mutex;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The authorization request, complete (client, redirect URI, scope, S256
    /// challenge of `--verifier`).
    #[arg(long)]
    authorize_url: String,
    #[arg(long)]
    token_url: String,
    /// `Cookie` header value of a signed-in browser; several: connection `i` uses
    /// the `i`-th (round robin), for a provider whose session does not bear
    /// concurrent requests.
    #[arg(long = "cookie", required = true)]
    cookies: Vec<String>,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    #[arg(long)]
    redirect_uri: String,
    #[arg(long)]
    verifier: String,
    #[arg(long)]
    hello_url: Option<String>,
    #[arg(long)]
    userinfo_url: Option<String>,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Only the whole flow: for a provider whose store forgets codes minted ahead
    /// (oidc-provider's development adapter is an LRU of limited size).
    #[arg(long)]
    flow_only: bool,
}

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl Connection {
    pub(crate) async fn open(authority: &str) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self {
            sender,
            authority: authority.to_owned(),
        })
    }

    /// Status, `Location`, body.
    pub(crate) async fn send(
        &mut self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> anyhow::Result<(u16, Option<String>, Bytes)> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.authority.as_str());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                Full::new(Bytes::from(body))
            }
            None => Full::new(Bytes::new()),
        };
        self.sender.ready().await?;
        let response = self.sender.send_request(request.body(body)?).await?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, location, body))
    }
}

pub(crate) fn split(url: &str) -> anyhow::Result<(String, String)> {
    let uri: hyper::Uri = url.parse()?;
    let authority = uri
        .authority()
        .context("a URL needs host:port")?
        .to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((authority, path))
}

fn code_of(location: Option<&str>) -> anyhow::Result<String> {
    let location = location.context("no Location")?;
    url::Url::parse(location)?
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .with_context(|| format!("no code in {location}"))
}

struct Shared {
    args: Args,
    basic: String,
    codes: Mutex<Vec<String>>,
    last_token: Mutex<Option<String>>,
}

impl Shared {
    fn exchange_body(&self, code: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.args.redirect_uri)
            .append_pair("code_verifier", &self.args.verifier)
            .finish()
    }

    async fn authorize(
        &self,
        connection: &mut Connection,
        path: &str,
        cookie: &str,
    ) -> anyhow::Result<String> {
        let (status, location, _) = connection
            .send(hyper::Method::GET, path, &[("cookie", cookie)], None)
            .await?;
        anyhow::ensure!(
            status == 302 || status == 303,
            "authorize answered {status} ({location:?})"
        );
        code_of(location.as_deref())
    }

    async fn exchange(
        &self,
        connection: &mut Connection,
        path: &str,
        code: &str,
    ) -> anyhow::Result<()> {
        let (status, _, body) = connection
            .send(
                hyper::Method::POST,
                path,
                &[("authorization", self.basic.as_str())],
                Some(self.exchange_body(code)),
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "the token endpoint answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let answer: serde_json::Value = serde_json::from_slice(&body)?;
        anyhow::ensure!(answer.get("id_token").is_some(), "no id_token: {answer}");
        if let Some(token) = answer["access_token"].as_str() {
            *self.last_token.lock().await = Some(token.to_owned());
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Hello,
    Authorize,
    Exchange,
    UserInfo,
    Flow,
}

/// Runs `phase` on every connection for the configured time: requests per second.
async fn measure(shared: &Arc<Shared>, phase: Phase) -> anyhow::Result<f64> {
    let args = &shared.args;
    let url = match phase {
        Phase::Hello => args.hello_url.clone().context("--hello-url")?,
        Phase::Authorize | Phase::Flow => args.authorize_url.clone(),
        Phase::Exchange => args.token_url.clone(),
        Phase::UserInfo => args.userinfo_url.clone().context("--userinfo-url")?,
    };
    let (authority, path) = split(&url)?;
    let (_, token_path) = split(&args.token_url)?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let bearer = match phase {
        Phase::UserInfo => Some(format!(
            "Bearer {}",
            shared
                .last_token
                .lock()
                .await
                .clone()
                .context("no access token yet")?
        )),
        _ => None,
    };
    let mut tasks = Vec::new();
    for index in 0..args.connections {
        let cookie = args.cookies[index % args.cookies.len()].clone();
        let (shared, stop, done) = (shared.clone(), stop.clone(), done.clone());
        let (authority, path, token_path, bearer) = (
            authority.clone(),
            path.clone(),
            token_path.clone(),
            bearer.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(&authority).await?;
            let mut minted = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match phase {
                    Phase::Hello => {
                        let (status, _, _) = connection
                            .send(hyper::Method::GET, &path, &[], None)
                            .await?;
                        anyhow::ensure!(status == 200, "hello world answered {status}");
                    }
                    Phase::Authorize => {
                        minted.push(shared.authorize(&mut connection, &path, &cookie).await?)
                    }
                    Phase::Exchange => {
                        let Some(code) = shared.codes.lock().await.pop() else {
                            break;
                        };
                        shared.exchange(&mut connection, &path, &code).await?;
                    }
                    Phase::UserInfo => {
                        let bearer = bearer.as_deref().unwrap_or_default();
                        let (status, _, _) = connection
                            .send(
                                hyper::Method::GET,
                                &path,
                                &[("authorization", bearer)],
                                None,
                            )
                            .await?;
                        anyhow::ensure!(status == 200, "userinfo answered {status}");
                    }
                    Phase::Flow => {
                        let code = shared.authorize(&mut connection, &path, &cookie).await?;
                        shared.exchange(&mut connection, &token_path, &code).await?;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            shared.codes.lock().await.extend(minted);
            anyhow::Ok(())
        }));
    }
    // The exchange phase ends early when the codes run out.
    timed(tasks, &stop, &done, args.seconds).await
}

/// Lets `tasks` (one a connection, each counting in `done` and stopping when
/// `stop` is set) run for `seconds`, or until all of them ended on their own
/// (their work ran out): requests per second.
pub(crate) async fn timed(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    stop: &AtomicBool,
    done: &AtomicU64,
    seconds: u64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    use base64::Engine;
    // RFC 6749 §2.3.1: each part form-encoded, then Basic.
    let encode =
        |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    let credentials = format!(
        "{}:{}",
        encode(&args.client_id),
        encode(&args.client_secret)
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    let shared = Arc::new(Shared {
        args: args.clone(),
        basic,
        codes: Mutex::new(Vec::new()),
        last_token: Mutex::new(None),
    });
    let mut rates: Vec<(&str, Vec<f64>)> = vec![
        ("hello", Vec::new()),
        ("authorize", Vec::new()),
        ("exchange", Vec::new()),
        ("userinfo", Vec::new()),
        ("flow", Vec::new()),
    ];
    for _ in 0..args.rounds {
        for (name, phase) in [
            ("hello", Phase::Hello),
            ("authorize", Phase::Authorize),
            ("exchange", Phase::Exchange),
            ("userinfo", Phase::UserInfo),
            ("flow", Phase::Flow),
        ] {
            if (phase == Phase::Hello && args.hello_url.is_none())
                || (phase == Phase::UserInfo && args.userinfo_url.is_none())
                || (args.flow_only && phase != Phase::Flow && phase != Phase::Hello)
            {
                continue;
            }
            if phase == Phase::Exchange {
                // Codes are spent as minted; a round exchanges those of its own
                // authorize phase (and never runs longer than they last).
                anyhow::ensure!(
                    !shared.codes.lock().await.is_empty(),
                    "no codes to exchange"
                );
            }
            let rate = measure(&shared, phase).await?;
            if let Some((_, list)) = rates.iter_mut().find(|(n, _)| *n == name) {
                list.push(rate);
            }
            if phase == Phase::Exchange {
                shared.codes.lock().await.clear();
            }
        }
    }
    let mean = |list: &[f64]| {
        if list.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!((list.iter().sum::<f64>() / list.len() as f64).round())
        }
    };
    let mut out = serde_json::Map::new();
    for (name, list) in &rates {
        out.insert(format!("{name}_per_second"), mean(list));
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second with the library tessera signs
/// with (aws-lc-rs), on `threads` threads, over a message the size of a token's
/// signing input: the ceiling of RS256 ID tokens per second on these cores.
pub fn rsa_sign_rate(threads: usize, seconds: u64) -> anyhow::Result<f64> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pair =
        Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("keygen"))?);
    let message = vec![b'a'; 600];
    Ok(rate(threads, seconds, move || {
        let (pair, message, rng) = (pair.clone(), message.clone(), SystemRandom::new());
        let mut signature = vec![0; pair.public_modulus_len()];
        move || {
            pair.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature)
                .is_ok()
        }
    }))
}

/// The two signatures of an exchange, per second, on `threads` threads: the ID
/// token's (`id_token_alg`: ECDSA P-256 or RSA-2048 PKCS#1 v1.5, over an ID token's
/// signing input) and the access token's Ed25519 one (tessera's default
/// access-token key), with aws-lc-rs as tessera signs. With hello world's rate it
/// bounds the exchange: a request that did nothing but these two signatures and
/// hello world's HTTP would reach `1 / (1/hello + 1/pairs)` per second.
pub fn token_pair_sign_rate(
    id_token_alg: &str,
    threads: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    };
    enum IdTokenKey {
        Es256(EcdsaKeyPair),
        Rs256(RsaKeyPair),
    }
    let rng = SystemRandom::new();
    fn keygen(_: aws_lc_rs::error::Unspecified) -> anyhow::Error {
        anyhow::anyhow!("keygen")
    }
    let id_token_key = match id_token_alg {
        "ES256" => IdTokenKey::Es256(
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(keygen)
                .and_then(|der| {
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref())
                        .map_err(|_| anyhow::anyhow!("keygen"))
                })?,
        ),
        "RS256" => IdTokenKey::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).map_err(keygen)?),
        other => anyhow::bail!("--id-token-alg is ES256 or RS256, not {other}"),
    };
    let ed25519 = Ed25519KeyPair::generate().map_err(keygen)?;
    let pair = Arc::new((id_token_key, ed25519));
    let (id_token, access_token) = (vec![b'a'; 600], vec![b'a'; 400]);
    Ok(rate(threads, seconds, move || {
        let (pair, id_token, access_token) = (pair.clone(), id_token.clone(), access_token.clone());
        let rng = SystemRandom::new();
        let mut rsa_signature = vec![0; 256];
        move || {
            let signed = match &pair.0 {
                IdTokenKey::Es256(key) => key.sign(&rng, &id_token).is_ok(),
                IdTokenKey::Rs256(key) => key
                    .sign(&RSA_PKCS1_SHA256, &rng, &id_token, &mut rsa_signature)
                    .is_ok(),
            };
            let _ = pair.1.sign(&access_token);
            signed
        }
    }))
}

/// How often per second `threads` threads together complete the work each gets from
/// `worker` (true when one unit succeeded), over `seconds`.
pub(crate) fn rate<W, F>(threads: usize, seconds: u64, worker: W) -> f64
where
    W: Fn() -> F,
    F: FnMut() -> bool + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, done, mut work) = (stop.clone(), done.clone(), worker());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if work() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for worker in workers {
        let _ = worker.join();
    }
    done.load(Ordering::Relaxed) as f64 / elapsed
}
