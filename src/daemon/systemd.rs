//! systemd's notify protocol, for a daemon run as a `Type=notify` service: one
//! datagram per message to the socket named by `NOTIFY_SOCKET` (a path, or an
//! abstract name written `@name`): `READY=1` once it serves, `WATCHDOG=1` on
//! the interval `WATCHDOG_USEC` asks for (half of it) while the store answers,
//! `STOPPING=1` when it starts to drain. Without `NOTIFY_SOCKET`, nothing.

use std::time::Duration;

/// Where notifications go, read once from the environment.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: String,
    /// How often to say the daemon is alive, when the service has a watchdog.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (a watchdog
    /// meant for another process is not ours).
    pub fn from_env() -> Option<Notifier> {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())?;
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(|u| Duration::from_micros(u / 2));
        Some(Notifier { socket, watchdog })
    }

    /// Sends one message; a failure is logged, never fatal (systemd may have
    /// gone, the daemon has not).
    pub fn send(&self, message: &str) {
        if let Err(e) = self.try_send(message) {
            tracing::warn!(error = %e, socket = %self.socket, "systemd notification not sent");
        }
    }

    #[cfg(unix)]
    fn try_send(&self, message: &str) -> std::io::Result<()> {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        match self.socket.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            Some(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                sock.send_to_addr(message.as_bytes(), &addr)?;
            }
            _ => {
                sock.send_to(message.as_bytes(), &self.socket)?;
            }
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn try_send(&self, _message: &str) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        let n = Notifier {
            socket: path.to_string_lossy().into_owned(),
            watchdog: None,
        };
        n.send("READY=1\nSTATUS=serving");
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=serving");
    }
}
