// Package loopport picks loopback TCP ports for listeners that another
// process, or a later call, will bind: the demo's extra brokers, the
// embedded etcd, the tests' process clusters.
//
// A port taken with 127.0.0.1:0 and closed comes from the kernel's
// ephemeral range, the same range the kernel draws from for the local end
// of every outgoing connection; until the listener binds it, any connect
// on the machine may take it, and the bind fails with "address already in
// use". Pick draws from below that range instead, where only explicit
// binds go.
package loopport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the lowest port Pick draws; below it sit the well-known and
// commonly configured services.
const lowest = 10000

// tries bounds the draws per port before Pick gives up on the range and
// lets the kernel choose.
const tries = 64

// Pick returns n distinct loopback addresses ("127.0.0.1:PORT") whose
// ports were free when picked, each drawn at random below the ephemeral
// range (from /proc/sys/net/ipv4/ip_local_port_range; 32768 when it
// cannot be read). The ports are held together while they are picked, so
// none is handed out twice.
func Pick(n int) ([]string, error) {
	hi := ephemeralStart()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	out := make([]string, 0, n)
	for range n {
		ln, err := listenBelow(hi)
		if err != nil {
			return nil, fmt.Errorf("loopport: %w", err)
		}
		held = append(held, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// listenBelow listens on a random free loopback port in [lowest, hi), or
// on one the kernel chooses if the range is empty or every draw was taken.
func listenBelow(hi int) (net.Listener, error) {
	for i := 0; hi > lowest && i < tries; i++ {
		port := lowest + rand.IntN(hi-lowest)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// ephemeralStart is the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	lo, err := parseRange(string(b))
	if err != nil {
		return 32768
	}
	return lo
}

// parseRange reads the first port of "LOW\tHIGH\n".
func parseRange(s string) (int, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, errors.New("want two ports")
	}
	return strconv.Atoi(f[0])
}
