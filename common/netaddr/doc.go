// Package netaddr holds the address utilities the course hands over in
// xps_utils: port validation, IPv4 resolution for stream sockets, the peer's
// address as text, and switching a socket to non-blocking mode.
//
// Everything here works on raw file descriptors and unix.Sockaddr values,
// because the stages drive sockets through epoll themselves rather than
// through package net's connections.
package netaddr
