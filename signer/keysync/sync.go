package keysync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/hsm"
)

// keyEntry is what a pass needs of one registry key, copied out of the
// state.
type keyEntry struct {
	pubkey     []byte
	scheme     commandpb.Scheme
	disabled   bool
	hasWrapped bool
	wrapped    []byte
	wrapKeyID  []byte
}

func (e keyEntry) hexKey() string { return hex.EncodeToString(e.pubkey) }

// SyncOnce runs one sync pass now and returns its first error (every error
// is also logged and counted). A pass: make sure the wrapping key exists;
// register it if the state does not hold it for this region; install every
// enabled key wrapped for this region that is not held here (unwrap in the
// HSM, then seal into the store or import into the HSM, then zero the
// plaintext); delete the local copy of every disabled key. Keys that fail
// are retried with back-off by later passes.
func (m *Manager) SyncOnce(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	err := m.pass(ctx)
	m.mu.Lock()
	close(m.passDone)
	m.passDone = make(chan struct{})
	m.mu.Unlock()
	return err
}

func (m *Manager) pass(ctx context.Context) error {
	m.passes.Add(1)
	now := m.cfg.Now()
	m.passed = true
	m.nextFull = now.Add(m.cfg.FullSyncInterval)
	der, myID, err := m.wrapIdentity(ctx)
	if err != nil {
		m.localReadFailures.Add(1)
		m.regAttempts++
		delay := m.backoff(m.regAttempts)
		m.regNext = now.Add(delay) // makes the next pass due
		m.log.Warn("key sync: wrapping key unavailable; nothing can be installed here", "err", err, "retry_in", delay.String())
		return err
	}

	var (
		keys       []keyEntry
		registered bool
		hasEd      bool
	)
	m.cfg.State.View(func(s *leader.State, applied uint64) {
		m.lastApplied = applied
		if r, ok := s.Region(m.cfg.Region); ok && bytes.Equal(r.WrapKeyID, myID) {
			registered = true
		}
		for _, k := range s.Keys() {
			if k.Scheme != commandpb.Scheme_SCHEME_BLS12381 && k.Scheme != commandpb.Scheme_SCHEME_ED25519 {
				continue
			}
			e := keyEntry{pubkey: bytes.Clone(k.Pubkey), scheme: k.Scheme, disabled: k.Disabled}
			if w, ok := k.WrappedFor(m.cfg.Region); ok {
				e.hasWrapped, e.wrapped, e.wrapKeyID = true, bytes.Clone(w.Ciphertext), bytes.Clone(w.WrapKeyId)
			}
			hasEd = hasEd || k.Scheme == commandpb.Scheme_SCHEME_ED25519
			keys = append(keys, e)
		}
	})
	if registered {
		m.regAttempts, m.regNext = 0, time.Time{}
	} else {
		m.register(ctx, der, myID, now)
	}

	local, err := m.readLocal(ctx, hasEd)
	if err != nil {
		m.localReadFailures.Add(1)
		m.log.Warn("key sync: cannot list the keys held here", "err", err)
		return err
	}

	g := ManagerStats{Registered: registered}
	clear(m.notedNow)
	var (
		firstErr   error
		blsChanged bool
		known      = make(map[string]bool, len(keys))
	)
	for _, e := range keys {
		known[string(e.pubkey)] = true
		held := local.has(e.pubkey)
		if e.disabled {
			if held {
				if r := m.retries[string(e.pubkey)]; r != nil && now.Before(r.next) {
					continue
				}
				if err := m.remove(ctx, e); err != nil {
					attempt, delay := m.retryLater(e, err, now)
					m.log.Warn("cannot delete the local copy of a disabled key; will retry", "pubkey", e.hexKey(),
						"attempt", attempt, "retry_in", delay.String(), "err", err)
					firstErr = cmpErr(firstErr, err)
					continue
				}
				m.clearRetry(e)
				local.drop(e.pubkey)
				blsChanged = blsChanged || e.scheme == commandpb.Scheme_SCHEME_BLS12381
			}
			continue
		}
		if held {
			m.clearRetry(e)
			continue
		}
		switch {
		case !e.hasWrapped:
			g.NotWrapped++
			m.noteOnce(e, "not-wrapped", "key has no wrapped secret for this region: it cannot sign here until re-wrapped for this region's key")
			continue
		case !bytes.Equal(e.wrapKeyID, myID):
			g.WrongWrapKey++
			if m.noteOnce(e, "wrong-wrap-key:"+hex.EncodeToString(e.wrapKeyID),
				"key is wrapped to a wrapping key that is not this region's current one; skipped",
				"wrap_key_id", hex.EncodeToString(e.wrapKeyID), "region_wrap_key_id", hex.EncodeToString(myID)) {
				m.wrongWrapTotal.Add(1)
			}
			continue
		}
		g.Pending++
		if r := m.retries[string(e.pubkey)]; r != nil && now.Before(r.next) {
			continue
		}
		if err := m.install(ctx, e); err != nil {
			m.syncFailures.Add(1)
			attempt, delay := m.retryLater(e, err, now)
			m.log.Warn("key sync failed; will retry", "pubkey", e.hexKey(), "scheme", e.scheme.String(),
				"attempt", attempt, "retry_in", delay.String(), "err", err)
			firstErr = cmpErr(firstErr, err)
			continue
		}
		g.Pending--
		m.synced.Add(1)
		m.clearRetry(e)
		local.add(e.pubkey)
		blsChanged = blsChanged || e.scheme == commandpb.Scheme_SCHEME_BLS12381
		m.log.Info("key installed in this region", "pubkey", e.hexKey(), "scheme", e.scheme.String())
	}
	for pk := range local.bls {
		if !known[string(pk[:])] {
			g.Orphans++
			m.noteOnce(keyEntry{pubkey: bytes.Clone(pk[:]), scheme: commandpb.Scheme_SCHEME_BLS12381}, "orphan",
				"sealed key is not in the registry (kept: a lagging state looks the same)")
		}
	}
	for label := range local.ed {
		pub, _ := hex.DecodeString(label)
		if !known[string(pub)] {
			g.Orphans++
			m.noteOnce(keyEntry{pubkey: pub, scheme: commandpb.Scheme_SCHEME_ED25519}, "orphan",
				"HSM key is not in the registry (kept: a lagging state looks the same)")
		}
	}
	// Forget retries of keys that left the registry, and conditions that
	// no longer hold (so they are logged again if they come back).
	for k := range m.retries {
		if !known[k] {
			delete(m.retries, k)
		}
	}
	for k := range m.noted {
		if !m.notedNow[k] {
			delete(m.noted, k)
		}
	}

	m.mu.Lock()
	m.local = local
	m.gauges = g
	m.mu.Unlock()
	if blsChanged && m.cfg.Guard != nil {
		m.cfg.Guard.Refresh()
	}
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// register proposes RegisterRegion, with back-off between failures.
func (m *Manager) register(ctx context.Context, der, id []byte, now time.Time) {
	if now.Before(m.regNext) {
		return
	}
	tok := m.cfg.HSM.Token()
	desc := fmt.Sprintf("%s %s serial %s token %q", tok.Manufacturer, tok.Model, tok.Serial, tok.Label)
	pctx, cancel := context.WithTimeout(ctx, m.cfg.ProposeTimeout)
	resp, err := m.cfg.Proposer.Propose(pctx, commandpb.CommandType_REGISTER_REGION,
		&commandpb.RegisterRegion{Region: m.cfg.Region, WrapPublicKey: der, HsmToken: desc})
	cancel()
	if err != nil {
		m.registerFailures.Add(1)
		m.regAttempts++
		delay := m.backoff(m.regAttempts)
		m.regNext = now.Add(delay)
		m.log.Warn("region registration failed; will retry", "err", err, "attempt", m.regAttempts, "retry_in", delay.String())
		return
	}
	// Give a forwarded write time to reach this node's state before a pass
	// proposes it again (re-registering the same key is harmless).
	m.regAttempts, m.regNext = 0, now.Add(m.cfg.ProposeTimeout)
	m.log.Info("region registered its wrapping key", "wrap_key_id", hex.EncodeToString(id), "index", resp.Index, "hsm_token", desc)
}

func (m *Manager) backoff(attempts int) time.Duration {
	d := m.cfg.Interval
	for i := 1; i < attempts && d < m.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, m.cfg.RetryMax)
}

// retryLater schedules the next attempt for e after a failure.
func (m *Manager) retryLater(e keyEntry, err error, now time.Time) (attempts int, delay time.Duration) {
	r := m.retries[string(e.pubkey)]
	if r == nil {
		r = &retry{}
		m.retries[string(e.pubkey)] = r
	}
	r.attempts++
	delay = m.backoff(r.attempts)
	r.next = now.Add(delay)
	m.mu.Lock()
	m.lastErr[string(e.pubkey)] = err
	m.mu.Unlock()
	return r.attempts, delay
}

func (m *Manager) clearRetry(e keyEntry) {
	delete(m.retries, string(e.pubkey))
	m.mu.Lock()
	delete(m.lastErr, string(e.pubkey))
	m.mu.Unlock()
}

// noteOnce logs a condition of a key the first time a pass sees it and
// reports whether it was new.
func (m *Manager) noteOnce(e keyEntry, cond, msg string, args ...any) bool {
	m.notedNow[string(e.pubkey)] = true
	if m.noted[string(e.pubkey)] == cond {
		return false
	}
	m.noted[string(e.pubkey)] = cond
	m.log.Warn(msg, append([]any{"pubkey", e.hexKey(), "scheme", e.scheme.String()}, args...)...)
	return true
}

// readLocal lists the BLS keys sealed here and, when the registry has
// Ed25519 keys, the Ed25519 keys in the HSM.
func (m *Manager) readLocal(ctx context.Context, withEd bool) (localSet, error) {
	l := localSet{bls: map[bls.PublicKey]bool{}, ed: map[string]bool{}}
	pks, err := m.cfg.Store.List()
	if err != nil {
		return l, fmt.Errorf("sealed store: %w", err)
	}
	for _, pk := range pks {
		l.bls[pk] = true
	}
	if !withEd {
		return l, nil
	}
	infos, err := m.cfg.HSM.Keys(ctx)
	if err != nil {
		return l, fmt.Errorf("%w: list keys: %w", ErrHSM, err)
	}
	for _, ki := range infos {
		if ki.Algorithm == hsm.Ed25519 && isEdLabel(ki.Label) {
			l.ed[ki.Label] = true
		}
	}
	return l, nil
}

// Pass-local copies are mutated only before publication.
func (l localSet) add(pubkey []byte) {
	switch len(pubkey) {
	case bls.PublicKeySize:
		l.bls[bls.PublicKey(pubkey)] = true
	case ed25519.PublicKeySize:
		l.ed[EdLabel(pubkey)] = true
	}
}

func (l localSet) drop(pubkey []byte) {
	switch len(pubkey) {
	case bls.PublicKeySize:
		delete(l.bls, bls.PublicKey(pubkey))
	case ed25519.PublicKeySize:
		delete(l.ed, EdLabel(pubkey))
	}
}

// install unwraps e's secret in the HSM and stores it here; the plaintext
// is zeroed before returning.
func (m *Manager) install(ctx context.Context, e keyEntry) error {
	secret, err := m.cfg.HSM.Unwrap(ctx, m.cfg.WrapKeyLabel, e.wrapped)
	if err != nil {
		return fmt.Errorf("%w: unwrap: %w", ErrHSM, err)
	}
	defer clear(secret)
	switch e.scheme {
	case commandpb.Scheme_SCHEME_BLS12381:
		pk, err := blsPublic(secret)
		if err != nil {
			return err
		}
		if !bytes.Equal(pk[:], e.pubkey) {
			return fmt.Errorf("%w: opens to BLS key %s", ErrWrappedMismatch, pk)
		}
		if _, err := m.cfg.Store.Put(ctx, secret); err != nil && !errors.Is(err, bls.ErrKeyExists) {
			return fmt.Errorf("seal: %w", err)
		}
		return nil
	case commandpb.Scheme_SCHEME_ED25519:
		if len(secret) != ed25519.SeedSize {
			return fmt.Errorf("%w: Ed25519 seed of %d bytes", ErrWrappedMismatch, len(secret))
		}
		priv := ed25519.NewKeyFromSeed(secret)
		same := bytes.Equal(priv[32:], e.pubkey)
		clear(priv)
		if !same {
			return fmt.Errorf("%w: Ed25519 seed of another public key", ErrWrappedMismatch)
		}
		label := EdLabel(e.pubkey)
		_, err := m.cfg.HSM.ImportKey(ctx, label, hsm.Ed25519, secret)
		if errors.Is(err, hsm.ErrKeyExists) {
			pub, perr := m.cfg.HSM.PublicKey(ctx, label)
			if perr == nil && bytes.Equal(pub.Bytes, e.pubkey) {
				return nil
			}
			return fmt.Errorf("%w: label %s is taken by another object: %w", ErrHSM, label, errors.Join(err, perr))
		}
		if err != nil {
			return fmt.Errorf("%w: import: %w", ErrHSM, err)
		}
		return nil
	}
	return fmt.Errorf("%w: scheme %v", ErrInvalidInput, e.scheme)
}

// remove deletes the local copy of a disabled key.
func (m *Manager) remove(ctx context.Context, e keyEntry) error {
	var err error
	switch e.scheme {
	case commandpb.Scheme_SCHEME_BLS12381:
		err = m.cfg.Store.Delete(bls.PublicKey(e.pubkey))
		if errors.Is(err, bls.ErrKeyNotFound) {
			err = nil
		}
	case commandpb.Scheme_SCHEME_ED25519:
		err = m.cfg.HSM.DeleteKey(ctx, EdLabel(e.pubkey))
		if errors.Is(err, hsm.ErrKeyNotFound) {
			err = nil
		}
	}
	if err != nil {
		m.removeFailures.Add(1)
		return err
	}
	m.removed.Add(1)
	m.log.Info("local copy of a disabled key deleted", "pubkey", e.hexKey(), "scheme", e.scheme.String())
	return nil
}

// blsPublic validates a BLS secret key and returns its public key.
func blsPublic(secret []byte) (bls.PublicKey, error) {
	var pk bls.PublicKey
	if len(secret) != bls.SecretKeySize {
		return pk, fmt.Errorf("%w: BLS secret of %d bytes", ErrWrappedMismatch, len(secret))
	}
	var sk blst.SecretKey
	defer sk.Zeroize()
	if sk.Deserialize(secret) == nil {
		return pk, fmt.Errorf("%w: not a BLS12-381 secret key", ErrWrappedMismatch)
	}
	copy(pk[:], new(blst.P1Affine).From(&sk).Compress())
	return pk, nil
}
