//! The harness's own check: both servers start, answer on loopback, and stop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;

use tessera_testkit::{Postgres, Redis};

fn redis_command(port: u16, command: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(command.as_bytes()).unwrap();
    let mut buffer = [0u8; 64];
    let n = stream.read(&mut buffer).unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[test]
fn redis_starts_answers_and_keeps_appended_writes_across_a_restart() {
    let mut redis = Redis::start_with(true);
    assert_eq!(redis_command(redis.port(), "PING\r\n"), "+PONG\r\n");
    assert_eq!(redis_command(redis.port(), "SET k v\r\n"), "+OK\r\n");
    redis.restart();
    assert_eq!(redis_command(redis.port(), "GET k\r\n"), "$1\r\nv\r\n");
    redis.kill();
    assert!(TcpStream::connect(("127.0.0.1", redis.port())).is_err());
}

#[test]
fn postgres_starts_with_a_tessera_database_and_stops() {
    let postgres = Postgres::start();
    assert!(postgres.url().starts_with("postgres://tessera@127.0.0.1:"));
    let ready = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "PATH=$PATH:$(ls -d /usr/lib/postgresql/*/bin | tail -1) \
             psql -h 127.0.0.1 -p {} -U tessera -d tessera -tAc 'select 40 + 2'",
            postgres.port()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ready.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    postgres.stop();
    assert!(TcpStream::connect(("127.0.0.1", postgres.port())).is_err());
    postgres.start_again();
    assert!(TcpStream::connect(("127.0.0.1", postgres.port())).is_ok());
}
