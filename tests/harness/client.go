package harness

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// DialFrom connects to addr over TCP from the source address src, such as
// "127.0.0.2", with Dial's timeout; an empty src lets the kernel choose, as
// Dial does. Linux routes all of 127.0.0.0/8 to the loopback interface, so
// a client may take any 127.x.y.z as its own address and a server on
// 0.0.0.0 sees that address as the peer: how a check plays several clients
// for an access list. 127.255.255.255 is refused: binding it succeeds, but
// the server sees the connection come from 127.0.0.1.
func DialFrom(src, addr string) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		ip, err := netip.ParseAddr(src)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("harness: source address %q is not an IPv4 address", src)
		}
		if ip == netip.AddrFrom4([4]byte{127, 255, 255, 255}) {
			return nil, fmt.Errorf("harness: source address %s arrives as 127.0.0.1; take another", src)
		}
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// RoundTripFrom is RoundTrip from the source address src (see DialFrom).
func RoundTripFrom(src, addr, request string, timeout time.Duration) (*Response, []byte, error) {
	c, err := DialFrom(src, addr)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	if _, err := c.Write([]byte(request)); err != nil {
		return nil, nil, err
	}
	raw, err := ReadToClose(c, timeout)
	if err != nil && len(raw) == 0 {
		return nil, raw, fmt.Errorf("no response: %w", err)
	}
	r, perr := ParseResponse(raw)
	if perr != nil {
		return nil, raw, perr
	}
	return r, raw, nil
}
