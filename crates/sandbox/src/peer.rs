//! Who is on the other end of a loopback TCP connection.
//!
//! An instance's Runtime API listens on loopback, where every process of
//! the host can connect. The kernel knows which uid created the connecting
//! socket; the `sock_diag` netlink interface (`NETLINK_SOCK_DIAG`, the one
//! `ss -e` uses) answers that for one exact 4-tuple in a single round trip,
//! so the check costs microseconds per accepted connection and nothing per
//! request on a kept-alive one.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

/// `SOCK_DIAG_BY_FAMILY` from `<linux/sock_diag.h>`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HEADER_LEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, sockid.
const REQUEST_LEN: usize = 8 + SOCKID_LEN;
/// `struct inet_diag_sockid`: sport, dport, src[4], dst[4], if, cookie[2].
const SOCKID_LEN: usize = 48;
/// In `struct inet_diag_msg`: family, state, timer, retrans, sockid, then
/// expires, rqueue, wqueue, uid, inode.
const UID_OFFSET: usize = 4 + SOCKID_LEN + 12;
/// Every TCP state: an exact lookup ignores the mask, but zero is refused.
const ALL_STATES: u32 = 0xffff_ffff;
/// `INET_DIAG_NOCOOKIE`: match on the addresses alone.
const NO_COOKIE: u32 = 0xffff_ffff;

/// The uid owning the socket at `peer` that is connected to our `local`
/// address (both ends on this host). Fails if there is no such socket (the
/// peer already went away) or the kernel cannot say.
pub fn tcp_peer_uid(local: SocketAddr, peer: SocketAddr) -> io::Result<u32> {
    let request = diag_request(local, peer)?;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    sendto(
        fd.as_raw_fd(),
        &request,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut answer = [0u8; 512];
    let len = recv(fd.as_raw_fd(), &mut answer, MsgFlags::empty())?;
    parse_answer(&answer[..len])
}

/// The netlink message asking for the socket whose own address is `peer`
/// and whose remote address is `local`.
fn diag_request(local: SocketAddr, peer: SocketAddr) -> io::Result<Vec<u8>> {
    let family = match (local.ip(), peer.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => nix::libc::AF_INET as u8,
        (IpAddr::V6(_), IpAddr::V6(_)) => nix::libc::AF_INET6 as u8,
        _ => return Err(io::Error::other("mixed address families")),
    };
    let total = NLMSG_HEADER_LEN + REQUEST_LEN;
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    msg.push(family);
    msg.push(nix::libc::IPPROTO_TCP as u8);
    msg.push(0); // no extensions wanted
    msg.push(0);
    msg.extend_from_slice(&ALL_STATES.to_ne_bytes());
    // Ports and addresses are big-endian on the wire.
    msg.extend_from_slice(&peer.port().to_be_bytes());
    msg.extend_from_slice(&local.port().to_be_bytes());
    msg.extend_from_slice(&address_words(peer.ip()));
    msg.extend_from_slice(&address_words(local.ip()));
    msg.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    msg.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    msg.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    debug_assert_eq!(msg.len(), total);
    Ok(msg)
}

/// An address as the four 32-bit words of `inet_diag_sockid` (IPv4 uses the first).
fn address_words(ip: IpAddr) -> [u8; 16] {
    let mut words = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => words[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => words.copy_from_slice(&v6.octets()),
    }
    words
}

fn parse_answer(answer: &[u8]) -> io::Result<u32> {
    let field = |at: usize| -> io::Result<u32> {
        answer
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .ok_or_else(|| io::Error::other("short sock_diag answer"))
    };
    let kind = answer
        .get(4..6)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or_else(|| io::Error::other("short sock_diag answer"))?;
    if kind == NLMSG_ERROR {
        // `struct nlmsgerr` starts with a negative errno.
        let errno = field(NLMSG_HEADER_LEN)? as i32;
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if kind != SOCK_DIAG_BY_FAMILY {
        return Err(io::Error::other(format!(
            "unexpected sock_diag answer type {kind}"
        )));
    }
    field(NLMSG_HEADER_LEN + UID_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn names_the_uid_of_the_connecting_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let uid = tcp_peer_uid(accepted.local_addr().unwrap(), peer).unwrap();
        assert_eq!(uid, nix::unistd::geteuid().as_raw());
        drop(client);
    }

    #[test]
    fn a_peer_that_is_not_there_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(tcp_peer_uid(local, nobody).is_err());
    }

    #[test]
    fn the_request_is_laid_out_like_inet_diag_req_v2() {
        let local: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let peer: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let msg = diag_request(local, peer).unwrap();
        assert_eq!(msg.len(), 72);
        // sport = the peer's port, dport = ours, big-endian.
        assert_eq!(&msg[24..26], &40000u16.to_be_bytes());
        assert_eq!(&msg[26..28], &9001u16.to_be_bytes());
        assert_eq!(&msg[28..32], &[127, 0, 0, 2]);
        assert_eq!(&msg[44..48], &[127, 0, 0, 1]);
    }
}
