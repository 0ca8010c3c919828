package limiter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func TestNewRefusesBadConfig(t *testing.T) {
	rows := []struct {
		name string
		cfg  Config
	}{
		{"zero rate", Config{Rate: 0, Burst: 1}},
		{"negative rate", Config{Rate: -1, Burst: 1}},
		{"NaN rate", Config{Rate: nan(), Burst: 1}},
		{"zero burst", Config{Rate: 1, Burst: 0}},
		{"negative max keys", Config{Rate: 1, Burst: 1, MaxKeys: -1}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			if l, err := New(row.cfg); !errors.Is(err, ErrConfig) || l != nil {
				t.Fatalf("got %v, %v", l, err)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestDefaultsAreValid(t *testing.T) {
	if _, err := New(Config{Rate: DefaultRate, Burst: DefaultBurst}); err != nil {
		t.Fatal(err)
	}
}

func TestBucket(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	l, err := New(Config{Rate: 2, Burst: 3, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if !l.Allow("a") {
			t.Fatalf("call %d of the burst refused", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("call beyond the burst allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another identity shares the bucket")
	}
	c.now = c.now.Add(500 * time.Millisecond) // one token at 2/s
	if !l.Allow("a") || l.Allow("a") {
		t.Fatal("refill is not one token per half second")
	}
	c.now = c.now.Add(time.Hour)
	for i := range 3 {
		if !l.Allow("a") {
			t.Fatalf("after a long pause call %d refused", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("bucket grew beyond its burst")
	}
}

// A brute-force reference: for every identity and every pair of calls, the
// allowed calls between them number at most Burst + Rate·Δt. Sequences mix
// many identities with a small MaxKeys so eviction and the overflow bucket
// are exercised.
func TestPropertyWindowBound(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 7))
		rate := float64(1 + r.IntN(5))
		burst := 1 + r.IntN(4)
		c := &clock{now: time.Unix(0, 0)}
		l, err := New(Config{Rate: rate, Burst: burst, MaxKeys: 1 + r.IntN(4), Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		allowed := map[string][]time.Time{}
		for range 300 {
			c.now = c.now.Add(time.Duration(r.IntN(400)) * time.Millisecond)
			key := fmt.Sprint("id", r.IntN(6))
			if l.Allow(key) {
				allowed[key] = append(allowed[key], c.now)
			}
			if n := l.Buckets(); n > l.cfg.MaxKeys {
				t.Fatalf("seed %d: %d buckets, max keys %d", seed, n, l.cfg.MaxKeys)
			}
		}
		for key, ts := range allowed {
			for i := range ts {
				for j := i; j < len(ts); j++ {
					n := j - i + 1
					bound := float64(burst) + rate*ts[j].Sub(ts[i]).Seconds() + 1e-9
					if float64(n) > bound {
						t.Fatalf("seed %d: %s got %d calls in %v (rate %v, burst %d)", seed, key, n, ts[j].Sub(ts[i]), rate, burst)
					}
				}
			}
		}
	}
}

func withCert(role, name string) context.Context {
	u, _ := url.Parse("regent://" + role + "/" + name)
	cert := &x509.Certificate{URIs: []*url.URL{u}}
	return peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
	})
}

func TestPeerIdentity(t *testing.T) {
	rows := []struct {
		name    string
		ctx     context.Context
		key     string
		limited bool
	}{
		{"operator", withCert("operator", "alice"), "operator/alice", true},
		{"client", withCert("client", "vc-1"), "client/vc-1", true},
		{"node exempt", withCert("node", "dc1"), "", false},
		{"no identity", peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}}), "peer/10.0.0.1:1", true},
		{"no peer", context.Background(), "unknown-peer", true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			key, limited := PeerIdentity(row.ctx)
			if key != row.key || limited != row.limited {
				t.Fatalf("got %q %v", key, limited)
			}
		})
	}
}

func TestLimitRefusesWithSentinelAndExemptsNodes(t *testing.T) {
	c := &clock{now: time.Unix(0, 0)}
	l, err := New(Config{Rate: 1, Burst: 1, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	op := withCert("operator", "alice")
	if err := l.Limit(op); err != nil {
		t.Fatal(err)
	}
	if err := l.Limit(op); !errors.Is(err, ErrLimited) {
		t.Fatalf("second call: %v", err)
	}
	node := withCert("node", "dc2")
	for range 10 {
		if err := l.Limit(node); err != nil {
			t.Fatalf("node limited: %v", err)
		}
	}
}

func TestFullTableRefusesNewIdentitiesUntilABucketRefills(t *testing.T) {
	c := &clock{now: time.Unix(0, 0)}
	l, err := New(Config{Rate: 1, Burst: 2, MaxKeys: 1, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Allow("a") {
		t.Fatal("first identity refused")
	}
	if l.Allow("b") {
		t.Fatal("second identity allowed while the only bucket is in use")
	}
	c.now = c.now.Add(time.Second) // a's bucket is full again
	if !l.Allow("b") || l.Buckets() != 1 {
		t.Fatalf("after a refilled: b refused or %d buckets", l.Buckets())
	}
}
