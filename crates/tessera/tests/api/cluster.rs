//! Several tessera instances on one PostgreSQL database and one Redis are one
//! service: any instance serves any request, and what happens on one is seen on all.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tessera_testkit::{Postgres, Redis};

use crate::feed::{EventReader, feed_token, open_feed};
use crate::harness::{Browser, PASSWORD, TestServer, browser_from, error_of, eventually};
use crate::tokens::{access_token, add_client, client_credentials};

/// The issuer every instance shares, as behind one load balancer.
const ISSUER: &str = "http://tessera.cluster.test";

pub(crate) struct Cluster {
    pub(crate) nodes: Vec<TestServer>,
    // Dropped last: the instances go first.
    postgres: Postgres,
    redis: Redis,
}

impl Cluster {
    pub(crate) async fn start(instances: usize) -> Self {
        Self::start_with(instances, &[]).await
    }

    /// PostgreSQL, Redis with its append-only file on, and `instances` servers.
    pub(crate) async fn start_with(instances: usize, extra: &[(&str, &str)]) -> Self {
        let postgres = Postgres::start();
        let redis = Redis::start_with(true);
        let (database, cache) = (postgres.url(), redis.url());
        let mut env = vec![
            ("TESSERA_DATABASE", database.as_str()),
            ("TESSERA_REDIS", cache.as_str()),
            ("TESSERA_TOKENS__ISSUER", ISSUER),
            // The issuer is not on loopback; sealing is not what these tests check.
            ("TESSERA_KEYS__ALLOW_UNSEALED", "true"),
            ("TESSERA_TOKENS__FEED_HEARTBEAT", "200ms"),
        ];
        env.extend_from_slice(extra);
        let mut nodes = Vec::new();
        for _ in 0..instances {
            nodes.push(TestServer::start_with(&env).await);
        }
        Self {
            nodes,
            postgres,
            redis,
        }
    }
}

async fn jwks(node: &TestServer) -> Value {
    node.client
        .get(node.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn same_jwks_everywhere(cluster: &Cluster) -> Value {
    let first = jwks(&cluster.nodes[0]).await;
    for node in &cluster.nodes[1..] {
        if jwks(node).await != first {
            return Value::Null;
        }
    }
    first
}

#[tokio::test]
async fn three_instances_on_one_database_are_one_service() {
    let cluster = Cluster::start(3).await;
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    a.add_user("alice", &[]);
    b.add_user("bob", &[]);

    // One first key per algorithm, not one per instance; the same JWKS everywhere.
    let keys = same_jwks_everywhere(&cluster).await;
    let mut algorithms: Vec<_> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    algorithms.sort_unstable();
    assert_eq!(algorithms, ["ES256", "EdDSA", "RS256"], "{keys}");

    // A token from one instance is good on the others; feeds open on all three.
    let feed = feed_token(a, "revocations").await;
    let mut feeds = Vec::new();
    for node in [a, b, c] {
        feeds.push(EventReader::new(open_feed(node, &feed, None).await));
    }

    // Log in on A, use on B and C, log out on C: refused on A and B too.
    let alice = a.login("alice").await;
    assert_eq!(b.session_status(&alice).await, 200);
    assert_eq!(c.session_status(&alice).await, 200);
    assert_eq!(a.session_status(&alice).await, 200);
    let logout = c
        .unsafe_as(Method::POST, "/v1/logout", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    for node in [a, b, c] {
        eventually("a logout on C is seen by every instance", || async {
            node.session_status(&alice).await == 401
        })
        .await;
    }
    for feed in &mut feeds {
        let event = feed.next_revocation().await;
        assert_eq!(event.data["kind"], "session");
        assert_eq!(event.data["id"], alice.session_id.as_str());
    }

    // Kick Bob through B's admin API; his session on A and his cut-off reach all.
    let bob = a.login("bob").await;
    // A token minted by one instance serves on another.
    let ops_client = add_client(
        c,
        "ops",
        &["--grant", "client_credentials", "--scope", "admin"],
    );
    let ops = access_token(client_credentials(b, &ops_client, &[("scope", "admin")]).await)
        .await
        .1;
    let bob_id = b.login("bob").await.login["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kicked = b
        .client
        .post(b.url(&format!("/admin/v1/users/{bob_id}/kick")))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 200);
    for node in [a, b, c] {
        eventually("a kick on B ends Bob's sessions everywhere", || async {
            node.session_status(&bob).await == 401
        })
        .await;
    }
    for feed in &mut feeds {
        let mut kinds = Vec::new();
        while !kinds.contains(&"user".to_owned()) {
            let event = feed.next_revocation().await;
            kinds.push(event.data["kind"].as_str().unwrap().to_owned());
        }
    }

    // Who is online is the same answer from every instance.
    let carol = {
        c.add_user("carol", &[]);
        c.login("carol").await
    };
    assert_eq!(a.session_status(&carol).await, 200);
    for node in [a, b, c] {
        eventually("every instance counts Carol online", || async {
            let online: Value = node
                .client
                .get(node.url("/admin/v1/online?window=60"))
                .bearer_auth(&ops)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // Alice logged out and Bob was kicked: only Carol's session counts.
            online["users"] == 1 && online["sessions"] == 1
        })
        .await;
    }

    // A rotation by the CLI: one new signer, published by every instance.
    let out = a.cli(&["keys", "rotate", "--now", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    eventually("every instance publishes the rotated key", || async {
        let keys = same_jwks_everywhere(&cluster).await;
        keys["keys"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k["kid"] == rotated["kid"]))
    })
    .await;
}

#[tokio::test]
async fn an_instance_killed_mid_load_loses_no_acknowledged_session() {
    let mut cluster = Cluster::start(2).await;
    cluster.nodes[0].add_user("alice", &[]);
    let target = cluster.nodes[0].url("/v1/login");
    let client = cluster.nodes[0].client.clone();
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<Browser>::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, target, acknowledged) = (client.clone(), target.clone(), acknowledged.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let sent = client
                    .post(&target)
                    .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        let browser = browser_from(response).await;
                        acknowledged.lock().unwrap().push(browser);
                    }
                    Ok(_) => {}
                    Err(_) => return, // the instance is gone
                }
            }
        }));
    }
    eventually("logins are flowing", || async {
        acknowledged.lock().unwrap().len() >= 20
    })
    .await;
    let pid = cluster.nodes[0].pid().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let survivor = &cluster.nodes[1];
    for browser in &acknowledged {
        assert_eq!(
            survivor.session_status(browser).await,
            200,
            "session {} was acknowledged, then lost",
            browser.session_id
        );
    }
    // And the killed instance, started again, serves them too.
    cluster.nodes[0].kill_and_restart();
    assert_eq!(cluster.nodes[0].session_status(&acknowledged[0]).await, 200);
}

#[tokio::test]
async fn a_database_outage_answers_503_writes_nothing_and_heals_without_a_restart() {
    let cluster = Cluster::start_with(1, &[("TESSERA_SESSION__CACHE_STALENESS", "1s")]).await;
    let node = &cluster.nodes[0];
    node.add_user("alice", &[]);
    let before = node.login("alice").await;
    assert_eq!(
        node.client
            .get(node.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    cluster.postgres.stop();
    let ready = node.client.get(node.url("/readyz")).send().await.unwrap();
    assert_eq!(
        error_of(ready).await,
        (503, "temporarily_unavailable".into())
    );
    let login = node.try_login("alice", PASSWORD).await;
    assert_eq!(login.status(), 503);
    assert!(login.headers().contains_key("retry-after"));
    assert_eq!(error_of(login).await.1, "temporarily_unavailable");
    // Past the staleness bound, a cached session is not trusted either: it may have
    // been ended on another instance that this one cannot hear.
    eventually("cached sessions stop answering once stale", || async {
        node.session_status(&before).await == 503
    })
    .await;

    cluster.postgres.start_again();
    eventually("the service heals by itself", || async {
        node.client
            .get(node.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    eventually("logins work again", || async {
        node.try_login("alice", PASSWORD).await.status() == 200
    })
    .await;
    assert_eq!(node.session_status(&before).await, 200);
    let out = node.cli(&["sessions", "list", "alice", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    // the first session and the one after recovery; nothing from the outage
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test]
async fn login_throttling_counts_across_instances() {
    let cluster = Cluster::start_with(
        3,
        &[
            ("TESSERA_THROTTLE__ACCOUNT_BURST", "3"),
            ("TESSERA_THROTTLE__ACCOUNT_PER_MINUTE", "1"),
        ],
    )
    .await;
    cluster.nodes[0].add_user("alice", &[]);
    // One wrong guess on each instance uses up the shared burst...
    for node in &cluster.nodes {
        let response = node.try_login("alice", "wrong password!").await;
        assert_eq!(error_of(response).await.0, 401);
    }
    // ...so the next attempt is refused wherever it lands, even with the password.
    for node in &cluster.nodes {
        let response = node.try_login("alice", PASSWORD).await;
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(error_of(response).await, (429, "too_many_requests".into()));
    }
}

#[tokio::test]
async fn a_redis_outage_answers_503_and_with_its_append_only_file_sessions_survive_it() {
    let mut cluster = Cluster::start_with(1, &[("TESSERA_SESSION__CACHE_STALENESS", "1s")]).await;
    let node = &cluster.nodes[0];
    node.add_user("alice", &[]);
    let before = node.login("alice").await;
    assert_eq!(node.session_status(&before).await, 200);

    cluster.redis.kill();
    let node = &cluster.nodes[0];
    eventually("readiness reports the outage", || async {
        node.client
            .get(node.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 503
    })
    .await;
    let login = node.try_login("alice", PASSWORD).await;
    assert_eq!(
        error_of(login).await,
        (503, "temporarily_unavailable".into())
    );
    eventually(
        "the cached session stops answering past the bound",
        || async { node.session_status(&before).await == 503 },
    )
    .await;

    cluster.redis.restart();
    let node = &cluster.nodes[0];
    eventually("the service heals by itself", || async {
        node.client
            .get(node.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    // The session written before the outage came back with Redis's append-only file.
    eventually("the session from before the outage works again", || async {
        node.session_status(&before).await == 200
    })
    .await;
    assert_eq!(node.try_login("alice", PASSWORD).await.status(), 200);
}

/// The list of a person's sessions that an instance shows (kept up to a second,
/// for a page reloaded): a session signed out on another instance is gone from it
/// as soon as the feed says so, and one begun elsewhere shows within a second.
#[tokio::test]
async fn a_session_list_follows_the_other_instances() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    a.add_user("alice", &[]);
    let laptop = a.login("alice").await;
    let phone = b.login("alice").await;
    async fn listed(node: &TestServer, browser: &Browser) -> usize {
        let body: Value = node
            .get_as("/v1/sessions", browser)
            .await
            .json()
            .await
            .unwrap();
        body["sessions"].as_array().map_or(0, Vec::len)
    }
    eventually("a lists the session begun on b", || async {
        listed(a, &laptop).await == 2
    })
    .await;
    let ended = b
        .unsafe_as(Method::POST, "/v1/logout", &phone)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    eventually("a no longer lists the session ended on b", || async {
        listed(a, &laptop).await == 1
    })
    .await;
    let tablet = b.login("alice").await;
    eventually("a lists a session begun on b within a second", || async {
        listed(a, &laptop).await == 2
    })
    .await;
    drop(tablet);
}

/// With a database and Redis the banner names them (never a password) instead of
/// a data dir nobody uses, and says how to create the first admin there.
#[tokio::test]
async fn the_banner_names_the_database_and_redis_never_a_password() {
    use std::io::BufRead;
    let postgres = Postgres::start();
    let redis = Redis::start();
    // The test database trusts loopback: the password is never checked, only shown.
    let database = postgres
        .url()
        .replace("tessera@", "tessera:hunter2-secret@");
    let mut child = std::process::Command::new(crate::harness::binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_DATABASE", &database)
        .env("TESSERA_REDIS", redis.url())
        .env("TESSERA_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .take(11)
        .map(Result::unwrap)
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    let banner = lines.join("\n");
    assert!(
        banner.contains(&format!(
            "  database    {}",
            database.replace("hunter2-secret", "<redacted>")
        )),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("  redis       {}", redis.url())),
        "{banner}"
    );
    assert!(!banner.contains("hunter2"), "{banner}");
    assert!(!banner.contains("data dir"), "{banner}");
    assert!(
        banner.contains("registration closed (open it with"),
        "{banner}"
    );
    assert!(
        banner.contains("--database \"$TESSERA_DATABASE\""),
        "{banner}"
    );
}

/// A balancer for the rolling restart: each request goes to the next instance in
/// turn; one that cannot take it (refused, or closed before answering) is skipped
/// and the request, whose body is held, goes to the next, as nginx's
/// `proxy_next_upstream error` does.
struct Balancer {
    base: String,
    backends: Arc<std::sync::RwLock<Vec<String>>>,
}

impl Balancer {
    async fn start(backends: Vec<String>) -> Self {
        use axum::body::{Body, Bytes};
        use axum::extract::{Request, State};
        use axum::response::Response;

        type Shared = (
            Arc<std::sync::RwLock<Vec<String>>>,
            Arc<std::sync::atomic::AtomicUsize>,
            reqwest::Client,
        );
        async fn forward(
            State((backends, next, client)): State<Shared>,
            request: Request,
        ) -> Response {
            let (parts, body) = request.into_parts();
            let body: Bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let list = backends.read().unwrap().clone();
            let start = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for i in 0..list.len() * 2 {
                let backend = &list[(start + i) % list.len()];
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let mut sent = client
                    .request(parts.method.clone(), format!("{backend}{path}"))
                    .body(body.clone());
                for (name, value) in &parts.headers {
                    if name != reqwest::header::HOST {
                        sent = sent.header(name, value);
                    }
                }
                if let Ok(answer) = sent.send().await {
                    let mut response = Response::builder().status(answer.status());
                    for (name, value) in answer.headers() {
                        response = response.header(name, value);
                    }
                    let bytes = answer.bytes().await.unwrap_or_default();
                    return response.body(Body::from(bytes)).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Response::builder().status(502).body(Body::empty()).unwrap()
        }

        let backends = Arc::new(std::sync::RwLock::new(backends));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let app = axum::Router::new().fallback(forward).with_state((
            backends.clone(),
            Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            client,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, backends }
    }
}

/// Three instances behind a balancer are restarted one after another (SIGTERM,
/// then started again) while a client keeps using its session through the
/// balancer: no request fails, the session lives on, and each instance stops in
/// under 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_a_balancer_loses_no_request_and_no_session() {
    let mut cluster = Cluster::start(3).await;
    cluster.nodes[0].add_user("alice", &[]);
    let balancer = Balancer::start(cluster.nodes.iter().map(|n| n.base.clone()).collect()).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let login = http
        .post(format!("{}/v1/login", balancer.base))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let alice = browser_from(login).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, http, base, cookie) = (
            stop.clone(),
            http.clone(),
            balancer.base.clone(),
            alice.cookie.clone(),
        );
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match http
                    .get(format!("{base}/v1/session"))
                    .header(reqwest::header::COOKIE, &cookie)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };

    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let node = &mut cluster.nodes[i];
        let old = node.base.clone();
        let started = std::time::Instant::now();
        let status = tokio::task::block_in_place(|| node.terminate());
        let took = started.elapsed();
        assert!(status.success(), "{status:?}");
        assert!(
            took < Duration::from_secs(2),
            "instance {i} took {took:?} to stop"
        );
        node.kill_and_restart();
        let new = node.base.clone();
        let mut backends = balancer.backends.write().unwrap();
        for backend in backends.iter_mut() {
            if *backend == old {
                *backend = new.clone();
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok > 50, "only {ok} requests in the run");
    // The session is the same on every restarted instance.
    for node in &cluster.nodes {
        assert_eq!(node.session_status(&alice).await, 200);
    }
}

#[tokio::test]
async fn a_two_step_sign_in_begun_on_one_instance_finishes_on_another() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    a.add_user("alice", &[]);
    let browser = a.login("alice").await;
    let (key, recovery, _) = crate::second_factor::enrol_with(a, &browser).await;

    // the password on one instance, the code on the other; the sign-in is taken
    // once (Redis), so the other instance cannot finish it again
    let pending = crate::second_factor::first_step(a, "alice").await;
    let done =
        crate::second_factor::second_step(b, &pending, &crate::second_factor::code(&key, 1)).await;
    assert_eq!(done.status(), 200);
    let again = crate::second_factor::second_step(a, &pending, &recovery[0]).await;
    assert_eq!(error_of(again).await, (401, "sign_in_expired".into()));
    // a recovery code spent through one instance is spent on both
    let pending = crate::second_factor::first_step(b, "alice").await;
    let first = crate::second_factor::second_step(a, &pending, &recovery[1]).await;
    assert_eq!(first.status(), 200);
    let pending = crate::second_factor::first_step(a, "alice").await;
    let reused = crate::second_factor::second_step(b, &pending, &recovery[1]).await;
    assert_eq!(error_of(reused).await, (401, "invalid_code".into()));
}

#[tokio::test]
async fn a_passkey_ceremony_begun_on_one_instance_finishes_on_another() {
    use crate::passkeys::*;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    // One public URL for both, as behind one load balancer: the relying party.
    let public = "http://localhost:7999";
    let cluster = Cluster::start_with(2, &[("TESSERA_PUBLIC_URL", public)]).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let origin = url::Url::parse(public).unwrap();
    a.add_user("alice", &[]);
    let alice_id = a.user_id("alice");
    let browser = a.login("alice").await;
    let mut key = authenticator();

    // registered: the challenge from one instance, the answer to the other
    let (ceremony, options) = registration_options(a, &browser, "Laptop").await;
    let credential = key.do_registration(origin.clone(), options).unwrap();
    let added = finish_registration(b, &browser, &ceremony, &credential).await;
    assert_eq!(added.status(), 201);
    let id = added.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // signed in the same way; the challenge is taken once, so the first
    // instance cannot accept the answer again
    let (ceremony, options) = discoverable_challenge(b).await;
    let answer = discoverable_answer(&origin, &mut key, options, &id, &alice_id);
    assert_eq!(sign_in_with(a, &ceremony, &answer).await.status(), 200);
    let (status, error) = error_of(sign_in_with(b, &ceremony, &answer).await).await;
    assert_eq!((status, error.as_str()), (400, "ceremony_expired"));
}
