//! Socket addresses: [`ToSocketAddrs`] and [`lookup_host`] (DNS on the blocking pool).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::blocking::spawn_blocking;

pub(crate) mod sealed {
    use std::net::SocketAddr;

    /// What an address argument needs: nothing, or a lookup.
    pub enum Resolve {
        /// Already numeric.
        Ready(Vec<SocketAddr>),
        /// A `"host:port"` string (or `(host, port)`) for the system resolver.
        Lookup(String),
    }

    pub trait Sealed {
        fn resolve_parts(&self) -> Resolve;
    }
}

use sealed::Resolve;

/// Anything that names one or more socket addresses: a [`SocketAddr`], `(ip, port)`,
/// `"ip:port"`, a host name as `"host:port"` or `(host, port)`, or a slice of
/// addresses.
///
/// Numeric addresses are used as they are; host names are resolved by the system
/// resolver on the blocking pool (see [`lookup_host`]), so a slow DNS server never
/// stalls the runtime. The trait is sealed.
///
/// ```
/// use scope_runtime::io::lookup_host;
/// use std::net::SocketAddr;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
///     assert_eq!(lookup_host(a).await.unwrap(), vec![a]);
///     assert_eq!(lookup_host(("127.0.0.1", 80)).await.unwrap(), vec![a]);
///     assert_eq!(lookup_host("127.0.0.1:80").await.unwrap(), vec![a]);
/// });
/// ```
pub trait ToSocketAddrs: sealed::Sealed {}

macro_rules! numeric {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {
            fn resolve_parts(&self) -> Resolve {
                Resolve::Ready(vec![SocketAddr::from(*self)])
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}

numeric!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for str {
    fn resolve_parts(&self) -> Resolve {
        match self.parse::<SocketAddr>() {
            Ok(a) => Resolve::Ready(vec![a]),
            Err(_) => Resolve::Lookup(self.to_owned()),
        }
    }
}
impl ToSocketAddrs for str {}

impl sealed::Sealed for String {
    fn resolve_parts(&self) -> Resolve {
        self.as_str().resolve_parts()
    }
}
impl ToSocketAddrs for String {}

impl sealed::Sealed for (&str, u16) {
    fn resolve_parts(&self) -> Resolve {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Resolve::Ready(vec![SocketAddr::new(ip, self.1)]),
            // Brackets keep an IPv6-looking host parseable by the resolver.
            Err(_) => Resolve::Lookup(format!("{}:{}", self.0, self.1)),
        }
    }
}
impl ToSocketAddrs for (&str, u16) {}

impl sealed::Sealed for (String, u16) {
    fn resolve_parts(&self) -> Resolve {
        (self.0.as_str(), self.1).resolve_parts()
    }
}
impl ToSocketAddrs for (String, u16) {}

impl sealed::Sealed for [SocketAddr] {
    fn resolve_parts(&self) -> Resolve {
        Resolve::Ready(self.to_vec())
    }
}
impl ToSocketAddrs for [SocketAddr] {}

impl sealed::Sealed for Vec<SocketAddr> {
    fn resolve_parts(&self) -> Resolve {
        Resolve::Ready(self.clone())
    }
}
impl ToSocketAddrs for Vec<SocketAddr> {}

impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn resolve_parts(&self) -> Resolve {
        (**self).resolve_parts()
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

/// Resolves `addr` into socket addresses. Numeric addresses return at once; host
/// names go to the system resolver (`getaddrinfo`) on the blocking pool.
///
/// A checkpoint: a cancelled caller gets `Cancelled` (as an `io::Error`) at once, and a
/// cancellation that arrives during the lookup returns at once too — the lookup
/// finishes in the background and its result is dropped. An empty answer is an error
/// (`"could not resolve to any addresses"`).
///
/// ```
/// use scope_runtime::io::lookup_host;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let addrs = lookup_host("localhost:8080").await.unwrap();
///     assert!(addrs.iter().all(|a| a.port() == 8080 && a.ip().is_loopback()));
///     assert!(lookup_host("no port here").await.is_err());
/// });
/// ```
pub async fn lookup_host(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    crate::check_cancelled()?;
    let addrs = match addr.resolve_parts() {
        Resolve::Ready(v) => v,
        Resolve::Lookup(host) => {
            let job = spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&host).map(Vec::from_iter)
            });
            job.await??
        }
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(addrs)
}
