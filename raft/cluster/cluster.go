package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Sentinel errors.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("cluster: invalid config")
	// ErrDurableWrite marks a failed write to the log or stable store.
	ErrDurableWrite = errors.New("cluster: durable write failed")
)

// Peer is one voter of the static configuration.
type Peer struct {
	ID      string // region name, e.g. dc1
	Address string // host:port of its Raft transport
}

// Config configures a node.
type Config struct {
	NodeID  string
	DataDir string
	// Peers are the voters, this node included.
	Peers []Peer

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	// MaxAppendEntries bounds entries per AppendEntries RPC and per FSM batch.
	MaxAppendEntries int

	// Logger receives Raft's logs. Nil discards them.
	Logger *slog.Logger
	// Fatal is called when a durable write fails. Nil panics.
	Fatal func(error)
}

// DefaultConfig returns production tuning for regions a few tens of
// milliseconds apart.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotInterval:   120 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		MaxAppendEntries:   256,
	}
}

// TestConfig returns tuning for tests on loopback: fast elections.
func TestConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 2 * time.Millisecond
	return c
}

// Validate checks the config, including cross-field rules.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("%w: node id is required", ErrConfig)
	case c.DataDir == "":
		return fmt.Errorf("%w: data dir is required", ErrConfig)
	case len(c.Peers) == 0:
		return fmt.Errorf("%w: peers are required", ErrConfig)
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("%w: leader lease timeout %v exceeds heartbeat timeout %v", ErrConfig, c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	seenID := map[string]bool{}
	seenAddr := map[string]bool{}
	self := false
	for _, p := range c.Peers {
		if p.ID == "" || p.Address == "" {
			return fmt.Errorf("%w: peer %q has an empty id or address", ErrConfig, p.ID)
		}
		if seenID[p.ID] || seenAddr[p.Address] {
			return fmt.Errorf("%w: peer %q (%s) listed twice", ErrConfig, p.ID, p.Address)
		}
		seenID[p.ID], seenAddr[p.Address] = true, true
		self = self || p.ID == c.NodeID
	}
	if !self {
		return fmt.Errorf("%w: node %q is not among the peers", ErrConfig, c.NodeID)
	}
	return nil
}

// Node is a running Raft node.
type Node struct {
	Raft  *raft.Raft
	store *raftboltdb.BoltStore
}

// Open starts a node over transport t applying to f. It bootstraps the
// static configuration when the data directory holds no Raft state.
func Open(cfg Config, f raft.FSM, t raft.Transport) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { panic(err) }
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: data dir: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("cluster: open bolt store: %w", err)
	}
	logOut := io.Discard
	if cfg.Logger != nil {
		logOut = slogWriter{cfg.Logger}
	}
	snaps, err := raft.NewFileSnapshotStore(cfg.DataDir, 3, logOut)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("cluster: snapshot store: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	if cfg.MaxAppendEntries > 0 {
		rc.MaxAppendEntries = cfg.MaxAppendEntries
	}
	rc.BatchApplyCh = true
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: logOut, Level: hclog.Info, JSONFormat: true})

	logs := &failStopLogStore{LogStore: store, fatal: cfg.Fatal}
	stable := &failStopStableStore{StableStore: store, fatal: cfg.Fatal}
	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("cluster: inspect state: %w", err)
	}
	if !has {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address), Suffrage: raft.Voter})
		}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, t, raft.Configuration{Servers: servers}); err != nil {
			store.Close()
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, f, logs, stable, snaps, t)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	return &Node{Raft: r, store: store}, nil
}

// Close shuts Raft down and closes the stores.
func (n *Node) Close() error {
	err := n.Raft.Shutdown().Error()
	if cerr := n.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// failStopLogStore stops the node when a log write fails.
type failStopLogStore struct {
	raft.LogStore
	fatal func(error)
}

func (s *failStopLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s *failStopLogStore) StoreLogs(ls []*raft.Log) error {
	if err := s.LogStore.StoreLogs(ls); err != nil {
		err = fmt.Errorf("%w: log store: %w", ErrDurableWrite, err)
		s.fatal(err)
		return err
	}
	return nil
}

// failStopStableStore stops the node when a term/vote write fails.
type failStopStableStore struct {
	raft.StableStore
	fatal func(error)
}

func (s *failStopStableStore) Set(k, v []byte) error {
	if err := s.StableStore.Set(k, v); err != nil {
		err = fmt.Errorf("%w: stable store: %w", ErrDurableWrite, err)
		s.fatal(err)
		return err
	}
	return nil
}

func (s *failStopStableStore) SetUint64(k []byte, v uint64) error {
	if err := s.StableStore.SetUint64(k, v); err != nil {
		err = fmt.Errorf("%w: stable store: %w", ErrDurableWrite, err)
		s.fatal(err)
		return err
	}
	return nil
}

// slogWriter forwards Raft's JSON log lines to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Info("raft", "line", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
