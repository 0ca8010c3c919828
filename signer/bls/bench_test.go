package bls

import (
	"testing"
	"time"
)

// BenchmarkUnsealAll1000 unseals 1,000 keys sealed under a SoftHSM2 token,
// with Workers equal to the HSM's session pool. Run it with
// -bench UnsealAll -benchtime 3x; the store setup (1,000 Puts) is not timed
// but is reported.
func BenchmarkUnsealAll1000(b *testing.B) {
	const keys, sessions = 1000, 4
	sealer := hsmSealers(b, sessions, "bench")[0]
	st, err := NewStore(b.TempDir(), sealer, StoreOptions{Workers: sessions})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range keys {
		secret, _ := newSecret(b)
		if _, err := st.Put(b.Context(), secret); err != nil {
			b.Fatal(err)
		}
		clear(secret)
	}
	b.Logf("setup: %d Puts in %v (%v each)", keys, time.Since(start), time.Since(start)/keys)
	b.ResetTimer()
	for b.Loop() {
		ks, err := st.UnsealAll(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if ks.Len() != keys {
			b.Fatalf("%d keys", ks.Len())
		}
		ks.Zero()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/keys, "µs/key")
}

// BenchmarkSign measures one BLS signature from an unsealed key set.
func BenchmarkSign(b *testing.B) {
	st, err := NewStore(b.TempDir(), newFakeSealer(b), StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	secret, _ := newSecret(b)
	pk, err := st.Put(b.Context(), secret)
	if err != nil {
		b.Fatal(err)
	}
	ks, err := st.UnsealAll(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer ks.Zero()
	var root [32]byte
	for b.Loop() {
		root[0]++
		if _, err := ks.Sign(pk, root); err != nil {
			b.Fatal(err)
		}
	}
}
