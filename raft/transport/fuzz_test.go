package transport

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

// FuzzParseAdvertise: the advertise-address parser never panics, refuses
// with a sentinel, and accepts only dialable host:port strings, unchanged.
func FuzzParseAdvertise(f *testing.F) {
	for _, s := range []string{"dc1:7000", "127.0.0.1:7000", "[::1]:7000", ":7000", "0.0.0.0:1",
		"[::]:1", "dc1:0", "dc1:65536", "dc1", "", "[fe80::1%eth0]:7000", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAdvertise(s)
		if err != nil {
			if !errors.Is(err, ErrBadConfig) && !errors.Is(err, ErrNotAdvertisable) {
				t.Fatalf("parseAdvertise(%q): %v wraps no sentinel", s, err)
			}
			if a != nil {
				t.Fatalf("parseAdvertise(%q) returned an address with an error", s)
			}
			return
		}
		if a.String() != s || a.Network() != "tcp" {
			t.Fatalf("parseAdvertise(%q) = %s/%s", s, a.Network(), a)
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			t.Fatalf("accepted %q without a host", s)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			t.Fatalf("accepted unspecified %q", s)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			t.Fatalf("accepted port %q", port)
		}
	})
}
