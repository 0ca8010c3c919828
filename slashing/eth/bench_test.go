package eth

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// benchKeys returns n distinct pubkeys.
func benchKeys(n int) []Pubkey {
	keys := make([]Pubkey, n)
	for i := range keys {
		binary.BigEndian.PutUint32(keys[i][:4], uint32(i))
		keys[i][47] = 0xb1
	}
	return keys
}

// BenchmarkRecordAttestation10k records one attestation per operation,
// round-robin over 10,000 keys, each key voting (epoch-1, epoch) for
// increasing epochs, as a large operator's FSM would every epoch. Every
// record is accepted.
func BenchmarkRecordAttestation10k(b *testing.B) {
	const nKeys = 10_000
	keys := benchKeys(nKeys)
	s := newTestState(b, Options{})
	// Warm up: every key has some history.
	for e := uint64(1); e <= 8; e++ {
		for _, k := range keys {
			s.RecordAttestation(testGVR, k, e-1, e, Root{byte(e)})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := keys[i%nKeys]
		e := uint64(9 + i/nKeys)
		if res := s.RecordAttestation(testGVR, k, e-1, e, Root{byte(e)}); !res.Accepted() {
			b.Fatalf("refused: %s", res.Reason)
		}
		i++
	}
}

// BenchmarkCheckAttestationDeepHistory checks votes against a key holding
// the full default cap of 4096 votes (binary search + neighbours): an
// acceptable vote, and a refused one (which also formats its reason).
func BenchmarkCheckAttestationDeepHistory(b *testing.B) {
	s := newTestState(b, Options{})
	k := pk(1)
	for e := uint64(1); e <= DefaultMaxAttestations; e++ {
		s.RecordAttestation(testGVR, k, e-1, e, Root{1})
	}
	b.Run("accepted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res := s.CheckAttestation(testGVR, k, DefaultMaxAttestations, DefaultMaxAttestations+1, Root{2}); !res.Accepted() {
				b.Fatal(res.Reason)
			}
		}
	})
	b.Run("denied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res := s.CheckAttestation(testGVR, k, 2000, 2001, Root{2}); res.Accepted() {
				b.Fatal("double vote accepted")
			}
		}
	})
}

// TestMemoryPerKey reports the heap used per key by 10,000 keys that each
// hold 64 votes and 4 blocks (about two epochs of pruned history plus
// slack), and fails if it exceeds a generous bound. It is a guard against
// accidental per-key maps or pointer-heavy records, not a precise figure.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~50 MB")
	}
	const nKeys = 10_000
	keys := benchKeys(nKeys)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newTestState(t, Options{})
	for e := uint64(1); e <= 64; e++ {
		for _, k := range keys {
			s.RecordAttestation(testGVR, k, e-1, e, Root{byte(e)})
		}
	}
	for slot := uint64(1); slot <= 4; slot++ {
		for _, k := range keys {
			s.RecordBlock(testGVR, k, slot, Root{byte(slot)})
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / nKeys
	t.Logf("heap per key with 64 votes + 4 blocks: %d bytes (records alone: %d)", perKey, 64*56+4*48)
	if perKey > 12_000 {
		t.Fatalf("heap per key %d bytes, want <= 12000", perKey)
	}
	runtime.KeepAlive(s)
}
