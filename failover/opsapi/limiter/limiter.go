package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/regent-signer/regent/raft/pki"
)

// ErrLimited is wrapped by every refusal.
var ErrLimited = errors.New("limiter: rate limit exceeded")

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("limiter: invalid config")

// Defaults of the gRPC listener: generous for people and scripts (a
// `regentctl handover watch` polls a few times a second), tight enough
// that a runaway loop cannot saturate a region.
const (
	DefaultRate    = 50.0
	DefaultBurst   = 200
	DefaultMaxKeys = 4096
)

// Config configures a Limiter.
type Config struct {
	// Rate is the refill in tokens per second; must be > 0.
	Rate float64
	// Burst is the bucket size; must be ≥ 1.
	Burst int
	// MaxKeys bounds the buckets kept; zero means DefaultMaxKeys.
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Key names the bucket of a call, or returns limited=false for a call
	// that is never limited. Nil means PeerIdentity.
	Key func(ctx context.Context) (key string, limited bool)
}

// Limiter implements go-grpc-middleware's ratelimit.Limiter. It is safe
// for concurrent use.
type Limiter struct {
	cfg     Config
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New validates cfg and returns a limiter.
func New(cfg Config) (*Limiter, error) {
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) || cfg.Burst < 1 || cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("%w: rate %v, burst %d, max keys %d (want rate > 0, burst ≥ 1, max keys ≥ 0)", ErrConfig, cfg.Rate, cfg.Burst, cfg.MaxKeys)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Key == nil {
		cfg.Key = PeerIdentity
	}
	return &Limiter{cfg: cfg, buckets: make(map[string]*bucket)}, nil
}

// Default returns the listener's limiter: DefaultRate, DefaultBurst, per
// certificate identity, region nodes exempt.
func Default() *Limiter {
	l, err := New(Config{Rate: DefaultRate, Burst: DefaultBurst})
	if err != nil {
		panic(err) // the defaults are valid; a test pins them
	}
	return l
}

// Limit implements ratelimit.Limiter: nil lets the call through, an error
// wrapping ErrLimited refuses it (the interceptor answers
// ResourceExhausted).
func (l *Limiter) Limit(ctx context.Context) error {
	key, limited := l.cfg.Key(ctx)
	if !limited {
		return nil
	}
	if !l.Allow(key) {
		return fmt.Errorf("%w: %s may make %v calls per second (burst %d); retry later", ErrLimited, key, l.cfg.Rate, l.cfg.Burst)
	}
	return nil
}

// Allow takes one token from key's bucket and reports whether there was
// one.
func (l *Limiter) Allow(key string) bool {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.cfg.MaxKeys {
			l.evictFull(now)
		}
		if len(l.buckets) >= l.cfg.MaxKeys {
			return false
		}
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(float64(l.cfg.Burst), b.tokens+el.Seconds()*l.cfg.Rate)
		b.last = now
	}
}

// evictFull drops buckets that refilled to Burst: a fresh bucket would be
// the same, so dropping one changes no decision.
func (l *Limiter) evictFull(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.cfg.Burst) {
			delete(l.buckets, k)
		}
	}
}

// Buckets returns how many buckets are kept (tests, metrics).
func (l *Limiter) Buckets() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// PeerIdentity keys a call by the regent identity of the caller's TLS
// certificate ("operator/alice"). Region nodes are not limited. A call
// without a certificate identity (which the authentication interceptor
// refuses anyway) is keyed by its peer address.
func PeerIdentity(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown-peer", true
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		if role, name, err := pki.Identity(ti.State.PeerCertificates[0]); err == nil {
			if role == pki.RoleNode {
				return "", false
			}
			return role.String() + "/" + name, true
		}
	}
	if p.Addr != nil {
		return "peer/" + p.Addr.String(), true
	}
	return "unknown-peer", true
}
