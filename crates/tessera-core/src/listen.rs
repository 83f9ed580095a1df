//! Where a process's management listener (metrics, health) goes by default.

use std::net::SocketAddr;

/// How far above the public port the management listener sits by default: 7490 for
/// tessera's 7480, 7491 for a gateway on 7481. Instances on one host are set a few
/// ports apart, and their management ports then never collide with one another's
/// public ones as long as those stay within a block of ten.
pub const MANAGEMENT_PORT_OFFSET: u16 = 10;

/// The management listener's default for a process listening on `listen`: the same
/// address, the port + [`MANAGEMENT_PORT_OFFSET`]. Port 0 (any free port, as tests
/// ask) stays 0. `None` when the port + 10 would pass 65535.
pub fn default_management_address(listen: SocketAddr) -> Option<SocketAddr> {
    let port = match listen.port() {
        0 => 0,
        port => port.checked_add(MANAGEMENT_PORT_OFFSET)?,
    };
    Some(SocketAddr::new(listen.ip(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_management_port_is_ten_above_except_for_any_port() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            default_management_address(at("127.0.0.1:7480")),
            Some(at("127.0.0.1:7490"))
        );
        assert_eq!(
            default_management_address(at("[::1]:7481")),
            Some(at("[::1]:7491"))
        );
        assert_eq!(
            default_management_address(at("127.0.0.1:0")),
            Some(at("127.0.0.1:0"))
        );
        assert_eq!(default_management_address(at("0.0.0.0:65530")), None);
    }
}
