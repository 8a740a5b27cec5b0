//! Host ports for jobs that publish network ports (`Network.Ports` with Host or Bridge
//! networking), from `Compute.Network.PortRangeStart..=PortRangeEnd` as upstream allocates them:
//! round-robin through the range, each candidate checked free by binding it, held by one
//! execution until it ends.

use bacalhau_models::task::Port;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Hands out host ports; one per node.
#[derive(Debug)]
pub struct PortAllocator {
    start: u16,
    end: u16,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ports held by running executions.
    held: BTreeSet<u16>,
    /// The last port handed out from the range: the search goes on after it.
    last: Option<u16>,
}

impl PortAllocator {
    /// A range `start..=end`; it must lie in 1024..=65535 with `start < end`.
    pub fn new(start: u16, end: u16) -> Result<Self, String> {
        if start < 1024 || start >= end {
            return Err(format!(
                "invalid port range {start}-{end}: it must lie in 1024-65535 and start below its end"
            ));
        }
        Ok(Self {
            start,
            end,
            state: Mutex::new(State::default()),
        })
    }

    /// Fills each port's `Static` (from the range when it is 0) and, on a bridge network, a
    /// missing `Target` with the same number. All or nothing: on error nothing stays held.
    pub fn allocate(&self, ports: &mut [Port], bridge: bool) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = Vec::new();
        let result = ports.iter_mut().try_for_each(|port| {
            let host_port = if port.r#static == 0 {
                self.next_free(&mut state)?
            } else {
                let wanted = u16::try_from(port.r#static)
                    .map_err(|_| format!("port {} is not a port", port.r#static))?;
                if state.held.contains(&wanted) {
                    return Err(format!("port {wanted} is already in use by another job"));
                }
                if !is_free(wanted) {
                    return Err(format!("port {wanted} is in use"));
                }
                wanted
            };
            state.held.insert(host_port);
            taken.push(host_port);
            port.r#static = u64::from(host_port);
            if bridge && port.target == 0 {
                port.target = u64::from(host_port);
            }
            Ok(())
        });
        if result.is_err() {
            for port in taken {
                state.held.remove(&port);
            }
        }
        result
    }

    /// Gives back the host ports of `ports`.
    pub fn release(&self, ports: &[Port]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for port in ports {
            if let Ok(port) = u16::try_from(port.r#static) {
                state.held.remove(&port);
            }
        }
    }

    fn next_free(&self, state: &mut State) -> Result<u16, String> {
        let size = u32::from(self.end - self.start) + 1;
        let first = state
            .last
            .map_or(0, |last| u32::from(last - self.start) + 1);
        for step in 0..size {
            let offset = (first + step) % size;
            let candidate = self.start + offset as u16;
            if !state.held.contains(&candidate) && is_free(candidate) {
                state.last = Some(candidate);
                return Ok(candidate);
            }
        }
        Err(format!(
            "no available ports in range {}-{}",
            self.start, self.end
        ))
    }
}

/// Whether nothing listens on `port` on any interface.
fn is_free(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, r#static: u64, target: u64) -> Port {
        Port {
            name: name.into(),
            r#static,
            target,
            host_network: String::new(),
        }
    }

    #[test]
    fn ports_come_from_the_range_in_turn_and_are_released() {
        let allocator = PortAllocator::new(40100, 40120).unwrap();
        let mut first = vec![port("web", 0, 0), port("admin", 0, 8080)];
        allocator.allocate(&mut first, true).unwrap();
        let (web, admin) = (first[0].r#static, first[1].r#static);
        assert!((40100..=40120).contains(&web) && (40100..=40120).contains(&admin));
        assert_ne!(web, admin);
        assert_eq!(
            first[0].target, web,
            "a bridge target defaults to the host port"
        );
        assert_eq!(first[1].target, 8080);
        let mut second = vec![port("web", 0, 0)];
        allocator.allocate(&mut second, false).unwrap();
        assert!(second[0].r#static != web && second[0].r#static != admin);
        assert_eq!(second[0].target, 0, "host networking has no target");
        allocator.release(&first);
        let mut again = vec![port("x", web, 0)];
        allocator.allocate(&mut again, false).unwrap();
    }

    #[test]
    fn a_held_or_bound_port_is_refused_and_nothing_leaks() {
        let allocator = PortAllocator::new(40200, 40210).unwrap();
        let listener = TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let busy = u64::from(listener.local_addr().unwrap().port());
        let mut ports = vec![port("a", 40205, 0), port("b", busy, 0)];
        assert!(
            allocator
                .allocate(&mut ports, false)
                .unwrap_err()
                .contains("in use")
        );
        let mut retry = vec![port("a", 40205, 0)];
        allocator.allocate(&mut retry, false).unwrap();
        let mut twice = vec![port("c", 40205, 0)];
        assert!(
            allocator
                .allocate(&mut twice, false)
                .unwrap_err()
                .contains("another job")
        );
        assert!(PortAllocator::new(80, 90).is_err());
        assert!(PortAllocator::new(3000, 2000).is_err());
    }

    #[test]
    fn a_full_range_says_so() {
        // Below Linux's ephemeral ports (32768 and up): a range of two there was once taken
        // by some other process's connection mid-test.
        let allocator = PortAllocator::new(11300, 11301).unwrap();
        let mut ports = vec![port("a", 0, 0), port("b", 0, 0)];
        allocator.allocate(&mut ports, false).unwrap();
        let mut more = vec![port("c", 0, 0)];
        assert_eq!(
            allocator.allocate(&mut more, false).unwrap_err(),
            "no available ports in range 11300-11301"
        );
    }
}
