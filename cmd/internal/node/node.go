package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/hashicorp/go-hclog"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/regent-signer/regent/cmd/internal/client"
	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/opsapi"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/metrics"
	"github.com/regent-signer/regent/leader/nodeapi"
	"github.com/regent-signer/regent/raft/cluster"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/raft/transport"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/keysync"
	"github.com/regent-signer/regent/signer/pipeline"
)

// Node is a running region.
type Node struct {
	Config  *Config
	Raft    *raft.Raft
	FSM     *fsm.FSM[*leader.State]
	Service *leader.Service
	// GRPCAddr, HTTPAddr and SigningAddr are the bound addresses (useful
	// with port 0); SigningAddr is empty when the signing API is off.
	GRPCAddr, HTTPAddr, SigningAddr string
	// Pipeline signs requests when this region has an HSM (else nil).
	Pipeline *pipeline.Pipeline

	log     *slog.Logger
	tlsm    *transport.Metrics
	forward *nodeapi.Forwarder
	signing *signing
	// agentStop stops the failover agent (nil when not started).
	agentStop func()
	// keys is the key manager once signing is up (the operations API
	// imports keystores through it).
	keys    atomic.Pointer[keysync.Manager]
	cluster *cluster.Node
	grpc    *grpc.Server
	http    *http.Server
	fatal   chan error
	once    sync.Once
}

// Options are the process-level choices Start does not read from Config.
type Options struct {
	Logger *slog.Logger
	// Fatal is called when the node must stop (a failed durable write, an
	// entry it cannot apply). Nil: the error is delivered on Fatal().
	Fatal func(error)
	// Now stamps proposals; nil means time.Now.
	Now func() time.Time
	// WrapStream, when set, wraps the mutual-TLS Raft stream layer (tests
	// use it to cut regions apart on real connections).
	WrapStream func(raft.StreamLayer) raft.StreamLayer
	// NoLeadershipTransfer keeps Raft leadership where elections put it
	// (tests of write forwarding).
	NoLeadershipTransfer bool
	// HSMModule, when set, is the PKCS#11 module to open this region's
	// token from. A module is process-wide: regions sharing a process
	// must share it. Nil loads Config.HSM.Module (and closes it on Close).
	HSMModule *hsm.Module
	// WrapBLS, when set, wraps the BLS signer the pipeline calls after a
	// record committed (tests simulate a crash between commit and sign).
	WrapBLS func(pipeline.BLSKeys) pipeline.BLSKeys
}

// Start brings a region up. On error, everything started is stopped.
func Start(cfg *Config, opts Options) (_ *Node, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("region", cfg.Region)
	n := &Node{Config: cfg, log: log, fatal: make(chan error, 1)}
	fatal := func(e error) {
		log.Error("fatal: stopping node", "err", e)
		if opts.Fatal != nil {
			opts.Fatal(e)
			return
		}
		select {
		case n.fatal <- e:
		default:
		}
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	mat, err := pki.LoadTLS(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("node: TLS: %w", err)
	}
	if mat.Role() != pki.RoleNode || mat.Name() != cfg.NodeID {
		return nil, fmt.Errorf("node: certificate %s is for %s %q, this node is node %q", cfg.TLS.Cert, mat.Role(), mat.Name(), cfg.NodeID)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	tm, err := transport.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	n.tlsm = tm
	stream, err := transport.NewStreamLayer(transport.Config{
		BindAddr: cfg.Raft.Bind, AdvertiseAddr: cfg.Raft.Advertise, TLS: mat, Metrics: tm, Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("node: raft transport: %w", err)
	}
	var layer raft.StreamLayer = stream
	if opts.WrapStream != nil {
		layer = opts.WrapStream(stream)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: transport.DefaultMaxPool, Timeout: transport.DefaultTimeout,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "raft-net", Output: io.Discard}),
	})

	// The FSM starts applying as soon as Raft starts, before the metrics
	// and the service exist: the hook reads them through atomic pointers.
	var core atomic.Pointer[metrics.Core]
	var service atomic.Pointer[leader.Service]
	var kicks atomic.Pointer[signing]
	// The replicated state carries the failover extension (operators,
	// handovers, audit chain); its registry refuses unsigned lease and
	// control-plane commands once operators are bootstrapped.
	fc := failover.FSMConfig()
	f, err := fsm.New(fsm.Config[*leader.State]{
		New:      fc.New,
		Registry: fc.Registry,
		Fatal:    fatal,
		Applied: func(i uint64, t commandpb.CommandType, resp fsm.Response) {
			if c := core.Load(); c != nil {
				c.OnApplied(i, t, resp)
			}
			if svc := service.Load(); svc != nil {
				svc.NoteApplied(i, t, resp)
			}
			if sg := kicks.Load(); sg != nil {
				sg.kick(t)
			}
		},
	})
	if err != nil {
		trans.Close()
		return nil, err
	}
	n.FSM = f

	cc := cluster.DefaultConfig()
	if cfg.RaftProfile == "lan" {
		cc = cluster.TestConfig()
	}
	cc.NodeID, cc.DataDir, cc.Logger, cc.Fatal = cfg.NodeID, cfg.DataDir, log, fatal
	for _, p := range cfg.Peers {
		cc.Peers = append(cc.Peers, cluster.Peer{ID: p.ID, Address: p.Address})
	}
	cn, err := cluster.Open(cc, f, cluster.WithoutPipeline(trans))
	if err != nil {
		trans.Close()
		return nil, err
	}
	n.cluster, n.Raft = cn, cn.Raft
	mcore := metrics.NewCore(reg, cfg.Region, cn.Raft, f)
	core.Store(mcore)

	var bootstrap func(context.Context) error
	if cfg.Failover.OperatorsFile != "" {
		ops, err := LoadOperators(cfg.Failover.OperatorsFile)
		if err != nil {
			return nil, err
		}
		bootstrap = n.bootstrapOperators(ops)
	}
	apiAddr := map[string]string{}
	for _, p := range cfg.Peers {
		apiAddr[p.ID] = p.API
	}
	n.forward = &nodeapi.Forwarder{APIAddr: apiAddr, Dial: func(addr string) (*grpc.ClientConn, error) { return client.Dial(mat, addr) }}
	svc, err := leader.NewService(leader.ServiceConfig{
		NodeID: cfg.NodeID, Raft: cn.Raft, FSM: f, Now: opts.Now, Logger: log,
		Observe: mcore.OnBatch, InitialHolder: cfg.InitialLeaseHolder,
		Forward:              nodeapi.LeaderForwarder{F: n.forward, Raft: cn.Raft},
		NoLeadershipTransfer: opts.NoLeadershipTransfer,
		Bootstrap:            bootstrap,
	})
	if err != nil {
		return nil, err
	}
	n.Service = svc
	service.Store(svc)

	sc, err := mat.ServerConfig(pki.RoleOperator, pki.RoleNode, pki.RoleClient)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.API.GRPC)
	if err != nil {
		return nil, fmt.Errorf("node: grpc listen %s: %w", cfg.API.GRPC, err)
	}
	n.GRPCAddr = ln.Addr().String()
	n.grpc = nodeapi.NewGRPCServer(credentials.NewTLS(sc), log, &nodeapi.Server{
		NodeID: cfg.NodeID, Region: cfg.Region, Raft: cn.Raft, FSM: f, Service: svc, Forward: n.forward,
		Failover: func(st *leader.State) (string, uint32) {
			fs := failover.From(st)
			return fs.ClusterID(), uint32(len(fs.Operators()))
		},
	})
	if err := opsapi.Register(n.grpc, opsapi.Deps{NodeID: cfg.NodeID, Raft: cn.Raft, FSM: f, Proposer: svc, Logger: log,
		Keys: lazyKeys{&n.keys}}); err != nil {
		ln.Close()
		return nil, err
	}
	go func() { _ = n.grpc.Serve(ln) }()

	if cfg.API.HTTP != "" {
		hl, err := net.Listen("tcp", cfg.API.HTTP)
		if err != nil {
			return nil, fmt.Errorf("node: http listen %s: %w", cfg.API.HTTP, err)
		}
		n.HTTPAddr = hl.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if h := f.Halted(); h != nil {
				http.Error(w, "state machine halted: "+h.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if err := n.Ready(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = n.http.Serve(hl) }()
	}
	if err := n.startAgent(cfg); err != nil {
		return nil, err
	}
	if cfg.Signs() {
		sg, err := n.startSigning(cfg, opts, mat, reg)
		if err != nil {
			return nil, err
		}
		n.signing, n.Pipeline, n.SigningAddr = sg, sg.pipeline, sg.addr
		kicks.Store(sg)
		n.keys.Store(sg.manager)
	}
	log.Info("region started", "raft", cfg.Raft.Advertise, "grpc", n.GRPCAddr, "http", n.HTTPAddr)
	return n, nil
}

// ErrNotReady explains why a region is not ready.
var ErrNotReady = errors.New("node: not ready")

// Ready reports whether this region is part of a working cluster: its
// state machine runs and it knows a leader it heard from recently.
func (n *Node) Ready() error {
	if h := n.FSM.Halted(); h != nil {
		return fmt.Errorf("%w: state machine halted: %w", ErrNotReady, h)
	}
	if n.Raft.State() == raft.Leader {
		return nil
	}
	if addr, _ := n.Raft.LeaderWithID(); addr == "" {
		return fmt.Errorf("%w: no raft leader known", ErrNotReady)
	}
	if lc := n.Raft.LastContact(); time.Since(lc) > 5*time.Second {
		return fmt.Errorf("%w: leader last heard %v ago", ErrNotReady, time.Since(lc).Round(time.Millisecond))
	}
	return nil
}

// Fatal delivers an error when the node must stop (see Options.Fatal).
func (n *Node) Fatal() <-chan error { return n.fatal }

// Close stops everything; it is safe to call more than once.
func (n *Node) Close() {
	n.once.Do(func() {
		if n.grpc != nil {
			n.grpc.Stop()
		}
		if n.forward != nil {
			n.forward.Close()
		}
		if n.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = n.http.Shutdown(ctx)
			cancel()
		}
		if n.agentStop != nil {
			n.agentStop()
		}
		if n.signing != nil {
			n.signing.stop()
		}
		if n.Service != nil {
			n.Service.Close()
		}
		if n.cluster != nil {
			if err := n.cluster.Close(); err != nil {
				n.log.Warn("raft shutdown", "err", err)
			}
		}
	})
}

// handshakeFailures counts refused Raft TLS handshakes (tests).
func (n *Node) handshakeFailures() uint64 { return n.tlsm.HandshakeFailures() }

// lazyKeys adapts the key manager, which starts after the gRPC server, to
// opsapi.KeyImporter.
type lazyKeys struct {
	m *atomic.Pointer[keysync.Manager]
}

func (l lazyKeys) ImportKeystore(ctx context.Context, ks []byte, pw string) (bls.PublicKey, error) {
	m := l.m.Load()
	if m == nil {
		return bls.PublicKey{}, opsapi.ErrSigningNotConfigured
	}
	pk, err := m.ImportKeystore(ctx, ks, pw)
	switch {
	case errors.Is(err, keysync.ErrDuplicate):
		err = fmt.Errorf("%w: %w", opsapi.ErrKeyDuplicate, err)
	case errors.Is(err, keysync.ErrKeystore):
		err = fmt.Errorf("%w: %w", opsapi.ErrKeystore, err)
	case errors.Is(err, keysync.ErrSyncPending):
		err = fmt.Errorf("%w: %w", opsapi.ErrKeyPending, err)
	}
	return pk, err
}
