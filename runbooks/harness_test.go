package runbooks

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/regent-signer/regent/failover/beaconsim"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/slashing/eth"
)

// The test cluster's fixed choices. The runbooks' README lists what a
// runbook may rely on.
const (
	clusterID      = "runbook-drill"
	keystorePass   = "runbook keystore password"
	validatorKeys  = 2
	slotDuration   = 12 * time.Millisecond // an epoch of 32 slots lasts 384ms
	slotsPerEpoch  = 32
	startEpoch     = 370_000 // mainnet, Electra; far from Fulu
	heartbeatEvery = time.Second
)

// regionNames are the test cluster's regions.
func regionNames() []string { return []string{"dc1", "dc2", "dc3"} }

// operatorRoles are the test cluster's operators: two admins and one
// operator; thresholds handover 2, registry 2, policy 1, exit 2, keys 1.
func operatorRoles() []struct{ id, role string } {
	return []struct{ id, role string }{{"alice", "admin"}, {"bob", "admin"}, {"carol", "operator"}}
}

// region is one region of a test cluster: a real regent process.
type region struct {
	name                          string
	raftAddr, grpcAddr, httpAddr  string
	signingAddr                   string
	config, dataDir, log, hsmConf string
	tokenDir, pinFile             string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// cluster is one scene's cluster.
type cluster struct {
	t       *testing.T
	bin     string // regent and regentctl
	dir     string // the scene's working directory
	regions []*region
	beacons []*beaconsim.Node
	urls    []string // beacon node URLs
	ctl     *httptest.Server
	opKeys  map[string]ed25519.PrivateKey
	pubkeys []string // validator public keys, 0x-hex
	// sparePubkey is the key of keystores/keystore-spare.json (not imported).
	sparePubkey string
	vc          *validatorClient
	cancel      context.CancelFunc
}

// freePort returns a loopback address whose port was free a moment ago,
// for a region process to bind. It picks below the kernel's ephemeral
// range (ports the kernel hands to outgoing connections, which other
// processes on a busy machine take all the time), so that the port is
// still free when the region binds it; it falls back to an ephemeral
// port.
func freePort(t *testing.T) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low > 12000 {
		var r [2]byte
		for range 50 {
			if _, err := rand.Read(r[:]); err != nil {
				t.Fatal(err)
			}
			port := 10000 + int(binary.BigEndian.Uint16(r[:]))%(low-10000)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				l.Close()
				return l.Addr().String()
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t *testing.T, path string, body []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, mode); err != nil {
		t.Fatal(err)
	}
}

// newCluster starts three regions, three simulated beacon nodes, bootstraps
// operators, sets the validator client's policy, imports the validator
// keys and starts the simulated validator client. It returns once dc1
// holds the lease, every region holds every key, and dc1 has signed.
func newCluster(t *testing.T, bin string) *cluster {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "jq", "softhsm2-util"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the runbooks need it (%v)", tool, err)
		}
	}
	if _, err := os.Stat(hsmtest.ModulePath()); err != nil {
		t.Skipf("SoftHSM2 is not installed (%v)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{t: t, bin: bin, dir: t.TempDir(), opKeys: map[string]ed25519.PrivateKey{}, cancel: cancel}
	t.Cleanup(c.stop)

	c.run(ctx, "regentctl", "pki", "init", "--dir", c.path("certs"))
	c.writeOperators()
	c.startBeacons(ctx)
	for _, name := range regionNames() {
		c.regions = append(c.regions, &region{name: name, raftAddr: freePort(t), grpcAddr: freePort(t), httpAddr: freePort(t), signingAddr: freePort(t)})
	}
	for _, r := range c.regions {
		c.prepareRegion(r)
	}
	c.startControl()
	for _, r := range c.regions {
		if err := c.start(r); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor(60*time.Second, "dc1 to hold the lease at epoch 1 with every region reachable", func() error {
		return c.expectLease("dc1", 1, "active", 3)
	})
	c.waitFor(30*time.Second, "every region to apply the operator registry's bootstrap", c.bootstrapped)
	c.setPolicy(ctx)
	for _, r := range c.regions {
		c.waitFor(30*time.Second, r.name+" to register its wrapping key", func() error {
			return c.expectMetric(r, "regent_keysync_registered", func(v float64) bool { return v == 1 })
		})
	}
	c.importKeys(ctx)
	for _, r := range c.regions {
		c.waitFor(30*time.Second, r.name+" to install every validator key", func() error {
			if err := c.expectMetric(r, "regent_keysync_installed_total", func(v float64) bool { return v >= validatorKeys }); err != nil {
				return err
			}
			return c.expectMetric(r, "regent_keysync_not_wrapped_keys", func(v float64) bool { return v == 0 })
		})
	}
	c.vc = startValidatorClient(ctx, c)
	c.waitFor(30*time.Second, "the validator client's first signatures from dc1", func() error {
		if n := c.vc.signedBy("dc1"); n == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	return c
}

func (c *cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

func (c *cluster) region(name string) *region {
	for _, r := range c.regions {
		if r.name == name {
			return r
		}
	}
	c.t.Fatalf("no region %q", name)
	return nil
}

// run runs one of the built binaries and fails the test on error.
func (c *cluster) run(ctx context.Context, bin string, args ...string) []byte {
	c.t.Helper()
	out, err := c.exec(ctx, bin, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) exec(ctx context.Context, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, bin), args...)
	cmd.Env = c.baseEnv()
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// writeOperators writes three Ed25519 operator keys (PKCS#8 and PKIX PEM)
// and the operators file every region bootstraps from.
func (c *cluster) writeOperators() {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster_id: %s\noperators:\n", clusterID)
	for _, op := range operatorRoles() {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			c.t.Fatal(err)
		}
		c.opKeys[op.id] = priv
		p8, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			c.t.Fatal(err)
		}
		pk, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			c.t.Fatal(err)
		}
		writeFile(c.t, c.path("keys", op.id+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
		writeFile(c.t, c.path("keys", op.id+".pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o644)
		fmt.Fprintf(&b, "  - id: %s\n    role: %s\n    public_key_file: %s\n", op.id, op.role, c.path("keys", op.id+".pub"))
	}
	b.WriteString("thresholds:\n  handover: 2\n  registry: 2\n  policy: 1\n  exit: 2\n  keys: 1\nexit_limit_per_day: 10\nfinality_quorum: 2\n")
	writeFile(c.t, c.path("operators.yaml"), []byte(b.String()), 0o644)
}

// startBeacons serves three simulated beacon nodes of one chain (mainnet's
// genesis validators root, 32 slots of 12ms per epoch, now at epoch
// startEpoch), with the control API for drills.
func (c *cluster) startBeacons(ctx context.Context) {
	cfg := beaconsim.DefaultConfig()
	cfg.GenesisValidatorsRoot = eth.Root(eth2.Mainnet().GenesisValidatorsRoot)
	cfg.SlotDuration, cfg.SlotsPerEpoch = slotDuration, slotsPerEpoch
	cfg.GenesisTime = time.Now().Add(-time.Duration(startEpoch*slotsPerEpoch) * slotDuration)
	cfg.ControlAPI = true
	for range 3 {
		n, err := beaconsim.New(cfg)
		if err != nil {
			c.t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.t.Fatal(err)
		}
		go func() { _ = n.Serve(ctx, ln) }()
		c.beacons = append(c.beacons, n)
		c.urls = append(c.urls, "http://"+ln.Addr().String())
	}
}

// prepareRegion writes the region's SoftHSM2 configuration and token, its
// PIN file and its YAML configuration.
func (c *cluster) prepareRegion(r *region) {
	t := c.t
	hsmDir := c.path("hosts", r.name, "softhsm")
	r.tokenDir = filepath.Join(hsmDir, "tokens")
	if err := os.MkdirAll(r.tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	r.hsmConf = filepath.Join(hsmDir, "softhsm2.conf")
	writeFile(t, r.hsmConf, []byte("directories.tokendir = "+r.tokenDir+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"), 0o600)
	r.pinFile = c.path("hosts", r.name, "hsm.pin")
	writeFile(t, r.pinFile, []byte("1234\n"), 0o600)
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "regent-"+r.name, "--pin", "1234", "--so-pin", "5678")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+r.hsmConf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token for %s: %v\n%s", r.name, err, out)
	}
	r.dataDir = c.path("hosts", r.name, "data")
	r.log = c.path("hosts", r.name, "regent.log")
	r.config = c.path("hosts", r.name, "regent.yaml")
	var peers, beacons strings.Builder
	for _, p := range c.regions {
		fmt.Fprintf(&peers, "  - id: %s\n    address: %s\n    api: %s\n", p.name, p.raftAddr, p.grpcAddr)
	}
	for _, u := range c.urls {
		fmt.Fprintf(&beacons, "          - %s\n", u)
	}
	certs := c.path("certs")
	cfg := fmt.Sprintf(`# Region %[1]s of the runbook test cluster.
node_id: %[1]s
region: %[1]s
data_dir: %[2]s
raft:
  bind: %[3]s
  advertise: %[3]s
api:
  grpc: %[4]s
  http: %[5]s
tls:
  ca: %[6]s/ca.crt
  cert: %[6]s/%[1]s.crt
  key: %[6]s/%[1]s.key
initial_lease_holder: dc1
raft_profile: lan
log_level: debug
network: mainnet
hsm:
  module: %[7]s
  token_label: regent-%[1]s
  pin_file: %[8]s
signing:
  http: %[9]s
failover:
  operators_file: %[10]s
  heartbeat_interval: %[11]s
  finality:
    poll_interval: 200ms
    eth:
      - name: mainnet
        quorum: 2
        slots_per_epoch: %[12]d
        endpoints:
%[13]speers:
%[14]s`, r.name, r.dataDir, r.raftAddr, r.grpcAddr, r.httpAddr, certs, hsmtest.ModulePath(), r.pinFile, r.signingAddr,
		c.path("operators.yaml"), heartbeatEvery, slotsPerEpoch, beacons.String(), peers.String())
	writeFile(t, r.config, []byte(cfg), 0o600)
}

// start starts r's process (once; starting a running region is a no-op).
func (c *cluster) start(r *region) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.bin, "regent"), "run", "--config", r.config)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+r.hsmConf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	exited := make(chan struct{})
	r.cmd, r.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
		r.mu.Lock()
		if r.cmd == cmd {
			r.cmd = nil
		}
		r.mu.Unlock()
	}()
	return nil
}

// signal sends sig to r's process and waits for it to exit (SIGKILL after
// grace). It reports whether a process was running.
func (c *cluster) signal(r *region, sig syscall.Signal, grace time.Duration) bool {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return false
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
	return true
}

// failIfExited fails the test at once, with the region's log, when a
// region process the harness started has exited (during start-up nothing
// stops one on purpose).
func (c *cluster) failIfExited() {
	c.t.Helper()
	for _, r := range c.regions {
		if _, ok := c.running(r); !ok {
			b, _ := os.ReadFile(r.log)
			c.t.Fatalf("%s exited during start-up; its log (%s) ends:\n%s", r.name, r.log, tail(string(b), 30))
		}
	}
}

func (c *cluster) running(r *region) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0, false
	}
	return r.cmd.Process.Pid, true
}

func (c *cluster) stop() {
	if c.vc != nil {
		c.vc.stop()
	}
	c.cancel()
	for _, r := range c.regions {
		c.signal(r, syscall.SIGTERM, 10*time.Second)
	}
	if c.ctl != nil {
		c.ctl.Close()
	}
	if c.t.Failed() {
		for _, r := range c.regions {
			b, _ := os.ReadFile(r.log)
			var keep []string
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.Contains(l, `"msg":"finished call"`) && !strings.Contains(l, `"msg":"raft"`) {
					keep = append(keep, l)
				}
			}
			c.t.Logf("last lines of %s's log (%s, without gRPC access and raft lines):\n%s", r.name, r.log, tail(strings.Join(keep, "\n"), 25))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startControl serves the systemctl stand-in's requests:
// POST /systemctl/{region} with the arguments as the body. The answer's
// first line is the exit status, the rest what systemctl prints.
func (c *cluster) startControl() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /systemctl/{region}", func(w http.ResponseWriter, req *http.Request) {
		var r *region
		for _, x := range c.regions {
			if x.name == req.PathValue("region") {
				r = x
			}
		}
		body, _ := io.ReadAll(io.LimitReader(req.Body, 4096))
		code, msg := 1, ""
		if r == nil {
			msg = "no such host"
		} else {
			code, msg = c.systemctl(r, strings.Fields(string(body)))
		}
		fmt.Fprintf(w, "%d\n%s", code, msg)
	})
	c.ctl = httptest.NewServer(mux)
}

// systemctl implements the verbs the runbooks use on the unit "regent".
func (c *cluster) systemctl(r *region, args []string) (int, string) {
	var verb, unit string
	sig := syscall.SIGTERM
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--signal="):
			switch strings.TrimPrefix(strings.TrimPrefix(a, "--signal="), "SIG") {
			case "KILL", "9":
				sig = syscall.SIGKILL
			case "TERM", "15":
				sig = syscall.SIGTERM
			default:
				return 1, "unsupported signal " + a + "\n"
			}
		case strings.HasPrefix(a, "-"):
			return 1, "unsupported option " + a + "\n"
		case verb == "":
			verb = a
		case unit == "":
			unit = strings.TrimSuffix(a, ".service")
		default:
			return 1, "one unit at a time\n"
		}
	}
	if unit != "regent" {
		return 1, fmt.Sprintf("Unit %s.service not found.\n", unit)
	}
	switch verb {
	case "start":
		if err := c.start(r); err != nil {
			return 1, err.Error() + "\n"
		}
		return 0, ""
	case "stop":
		c.signal(r, syscall.SIGTERM, 15*time.Second)
		return 0, ""
	case "restart":
		c.signal(r, syscall.SIGTERM, 15*time.Second)
		if err := c.start(r); err != nil {
			return 1, err.Error() + "\n"
		}
		return 0, ""
	case "kill":
		c.signal(r, sig, 15*time.Second)
		return 0, ""
	case "is-active":
		if _, ok := c.running(r); ok {
			return 0, "active\n"
		}
		return 3, "inactive\n"
	case "status":
		if pid, ok := c.running(r); ok {
			return 0, fmt.Sprintf("● regent.service - Regent region %s\n     Active: active (running)\n   Main PID: %d (regent)\n", r.name, pid)
		}
		return 3, fmt.Sprintf("○ regent.service - Regent region %s\n     Active: inactive (dead)\n", r.name)
	}
	return 1, fmt.Sprintf("unsupported verb %q\n", verb)
}

const systemctlShim = `#!/bin/sh
# systemctl stand-in for the runbook test: the test supervises this host's
# regent process (start, stop, restart, kill --signal=SIGKILL, is-active,
# status). See runbooks/README.md.
out=$(curl -sS -X POST --data-binary "$*" "$RUNBOOK_HARNESS/systemctl/$RUNBOOK_HOST") || exit 1
printf '%s\n' "$out" | tail -n +2
exit "$(printf '%s\n' "$out" | head -n 1)"
`

// baseEnv is the operator workstation's environment.
func (c *cluster) baseEnv() []string {
	var eps []string
	for _, r := range c.regions {
		eps = append(eps, r.name+"="+r.grpcAddr)
	}
	certs := c.path("certs")
	env := []string{
		"PATH=" + c.bin + ":" + os.Getenv("PATH"),
		"HOME=" + c.dir,
		"LANG=C.UTF-8",
		"WORK=" + c.dir,
		"CERTS=" + certs,
		"KEYS=" + c.path("keys"),
		"KEYSTORES=" + c.path("keystores"),
		"REGENTCTL_ENDPOINTS=" + strings.Join(eps, ","),
		"REGENTCTL_TLS_CA=" + certs + "/ca.crt",
		"REGENTCTL_TLS_CERT=" + certs + "/regentctl.crt",
		"REGENTCTL_TLS_KEY=" + certs + "/regentctl.key",
		"REGENTCTL_OPERATOR_ID=alice",
		"REGENTCTL_OPERATOR_KEY=" + c.path("keys", "alice.key"),
		"REGENTCTL_TIMEOUT=2s",
	}
	if len(c.urls) > 0 {
		env = append(env, "BEACON="+c.urls[0], "BEACONS="+strings.Join(c.urls, " "))
	}
	if len(c.pubkeys) > 0 {
		env = append(env, "VALIDATOR_PUBKEY="+c.pubkeys[0], "SPARE_PUBKEY="+c.sparePubkey)
	}
	for _, r := range c.regions {
		p := strings.ToUpper(r.name)
		env = append(env, p+"_API="+r.grpcAddr, p+"_METRICS="+r.httpAddr, p+"_SIGNING="+r.signingAddr)
	}
	return env
}

// env is Runner.Env: the workstation's environment, or a region host's
// (its config, data directory, HSM configuration and the systemctl
// stand-in).
func (c *cluster) env(host string) ([]string, error) {
	env := c.baseEnv()
	if host == "" {
		return env, nil
	}
	var r *region
	for _, x := range c.regions {
		if x.name == host {
			r = x
		}
	}
	if r == nil {
		return nil, fmt.Errorf("no host %q in the test cluster", host)
	}
	shim := c.path("hosts", r.name, "bin")
	if _, err := os.Stat(filepath.Join(shim, "systemctl")); err != nil {
		if err := os.MkdirAll(shim, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(shim, "systemctl"), []byte(systemctlShim), 0o700); err != nil {
			return nil, err
		}
	}
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + shim + ":" + strings.TrimPrefix(kv, "PATH=")
		}
	}
	return append(env,
		"RUNBOOK_HARNESS="+c.ctl.URL, "RUNBOOK_HOST="+r.name,
		"CONFIG="+r.config, "DATA_DIR="+r.dataDir, "SOFTHSM2_CONF="+r.hsmConf, "HSM_MODULE="+hsmtest.ModulePath(),
	), nil
}

// waitFor polls cond until it returns nil or the deadline passes. It is
// for start-up: a region process that exited fails the test at once.
func (c *cluster) waitFor(d time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		c.failIfExited()
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting %v for %s: %v", d, what, err)
		}
		<-tick.C
	}
}

// statusJSON is the part of `regentctl status --output json` the harness reads.
type statusJSON struct {
	Regions []struct {
		Region string `json:"region"`
		Error  string `json:"error"`
		Status *struct {
			ClusterID string          `json:"cluster_id"`
			RaftState string          `json:"raft_state"`
			Lease     json.RawMessage `json:"lease"`
		} `json:"status"`
	} `json:"regions"`
	Reachable int `json:"reachable"`
	Lease     *struct {
		Holder string `json:"holder"`
		Epoch  string `json:"epoch"`
		State  string `json:"state"`
	} `json:"lease"`
}

// bootstrapped: every region reports the operator registry's cluster id.
func (c *cluster) bootstrapped() error {
	out, _ := c.exec(context.Background(), "regentctl", "status", "--output", "json", "--timeout", "1s")
	var st statusJSON
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("status: %v: %s", err, out)
	}
	for _, r := range st.Regions {
		if r.Status == nil || r.Status.ClusterID != clusterID {
			return fmt.Errorf("%s has not applied the bootstrap", r.Region)
		}
	}
	return nil
}

func (c *cluster) expectLease(holder string, epoch int, state string, reachable int) error {
	out, _ := c.exec(context.Background(), "regentctl", "status", "--output", "json", "--timeout", "1s")
	var st statusJSON
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("status: %v: %s", err, out)
	}
	if st.Lease == nil || st.Lease.Holder != holder || st.Lease.Epoch != strconv.Itoa(epoch) || st.Lease.State != state || st.Reachable < reachable {
		var rows []string
		for _, r := range st.Regions {
			if r.Status == nil {
				rows = append(rows, r.Region+": "+firstWords(r.Error, 12))
				continue
			}
			rows = append(rows, fmt.Sprintf("%s: %s, lease %s", r.Region, r.Status.RaftState, r.Status.Lease))
		}
		lease := "none"
		if st.Lease != nil {
			lease = fmt.Sprintf("%s %s@%s", st.Lease.State, st.Lease.Holder, st.Lease.Epoch)
		}
		return fmt.Errorf("%d reachable, lease %s; %s", st.Reachable, lease, strings.Join(rows, "; "))
	}
	return nil
}

// metric reads one unlabelled metric from r's /metrics.
func (c *cluster) metric(r *region, name string) (float64, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + r.httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no metric %s", r.name, name)
}

func (c *cluster) expectMetric(r *region, name string, ok func(float64) bool) error {
	v, err := c.metric(r, name)
	if err != nil {
		return err
	}
	if !ok(v) {
		return fmt.Errorf("%s: %s is %v", r.name, name, v)
	}
	return nil
}

// signedCommand builds an operator command signed by the given operators
// (the first submits it).
func (c *cluster) signedCommand(set func(*failoverpb.OperatorCommand), signers ...string) []byte {
	c.t.Helper()
	b := opsig.Builder{ClusterID: clusterID, OperatorID: signers[0], Now: time.Now}
	cmd, err := b.New()
	if err != nil {
		c.t.Fatal(err)
	}
	set(cmd)
	sc, err := opsig.SignCommand(cmd, c.opKeys[signers[0]])
	if err != nil {
		c.t.Fatal(err)
	}
	for _, s := range signers[1:] {
		if err := opsig.Cosign(sc, s, c.opKeys[s]); err != nil {
			c.t.Fatal(err)
		}
	}
	payload, err := opsig.EncodeSigned(sc)
	if err != nil {
		c.t.Fatal(err)
	}
	return payload
}

// setPolicy lets the validator client vc-1 sign everything (a signed
// SetPolicy, retried until the operator registry is bootstrapped).
func (c *cluster) setPolicy(ctx context.Context) {
	c.waitFor(30*time.Second, "the signed policy for vc-1 to commit", func() error {
		payload := c.signedCommand(func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_SetPolicy{SetPolicy: &failoverpb.SetPolicy{
				Identity: "vc-1", KeyPatterns: []string{"*"}, MessageTypes: []string{"*"}}}
		}, "alice")
		return c.operatorPropose(ctx, payload)
	})
}

// importKeys writes the validator keystores (cheap PBKDF2: test keys) and
// imports them through dc1's Keymanager API.
func (c *cluster) importKeys(ctx context.Context) {
	t := c.t
	var stores, passwords []string
	for i := range validatorKeys {
		secret := sha256.Sum256([]byte(fmt.Sprintf("runbook validator %d %s", i, c.dir)))
		secret[0] &= 0x3f // below the BLS12-381 group order
		ks, err := keystore.Encrypt(secret[:], keystorePass, keystore.KDF{Function: "pbkdf2", C: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, pub, err := keystore.Decrypt(ks, keystorePass)
		if err != nil {
			t.Fatal(err)
		}
		c.pubkeys = append(c.pubkeys, "0x"+hex.EncodeToString(pub))
		writeFile(t, c.path("keystores", fmt.Sprintf("keystore-%d.json", i)), ks, 0o600)
		stores, passwords = append(stores, string(ks)), append(passwords, keystorePass)
	}
	writeFile(t, c.path("keystores", "password.txt"), []byte(keystorePass+"\n"), 0o600)
	// A spare key, not imported: a validator being onboarded, for runbooks
	// that import a key; and a signing request (an attestation at an
	// epoch already finalized) a key with no history may sign.
	spare := sha256.Sum256([]byte("runbook spare validator " + c.dir))
	spare[0] &= 0x3f
	ks, err := keystore.Encrypt(spare[:], keystorePass, keystore.KDF{Function: "pbkdf2", C: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, sparePub, err := keystore.Decrypt(ks, keystorePass)
	if err != nil {
		t.Fatal(err)
	}
	c.sparePubkey = "0x" + hex.EncodeToString(sparePub)
	writeFile(t, c.path("keystores", "keystore-spare.json"), ks, 0o600)
	writeFile(t, c.path("attestation.json"), attestation(startEpoch), 0o644)
	body, _ := json.Marshal(map[string]any{"keystores": stores, "passwords": passwords})
	cl := c.httpClient("regentctl")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+c.region("dc1").signingAddr+"/eth/v1/keystores", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || bytes.Contains(rb, []byte(`"error"`)) {
		t.Fatalf("keystore import: %s: %s", resp.Status, rb)
	}
}

// httpClient presents the named certificate of the dev PKI.
func (c *cluster) httpClient(name string) *http.Client {
	c.t.Helper()
	cert, err := tls.LoadX509KeyPair(c.path("certs", name+".crt"), c.path("certs", name+".key"))
	if err != nil {
		c.t.Fatal(err)
	}
	caPEM, err := os.ReadFile(c.path("certs", "ca.crt"))
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13},
	}}
}

// attestation is a Web3Signer ATTESTATION request for epoch e on mainnet
// (Electra), source e-1, target e; its roots are derived from e so that a
// retry is identical.
func attestation(e uint64) []byte {
	root := func(label string) string {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], e)
		s := sha256.Sum256(append([]byte(label), b[:]...))
		return "0x" + hex.EncodeToString(s[:])
	}
	gvr := eth2.Mainnet().GenesisValidatorsRoot
	req := map[string]any{
		"type": "ATTESTATION",
		"fork_info": map[string]any{
			"fork":                    map[string]string{"previous_version": "0x04000000", "current_version": "0x05000000", "epoch": "364032"},
			"genesis_validators_root": "0x" + hex.EncodeToString(gvr[:]),
		},
		"attestation": map[string]any{
			"slot": strconv.FormatUint(e*slotsPerEpoch+1, 10), "index": "0", "beacon_block_root": root("block"),
			"source": map[string]string{"epoch": strconv.FormatUint(e-1, 10), "root": root("source")},
			"target": map[string]string{"epoch": strconv.FormatUint(e, 10), "root": root("target")},
		},
	}
	b, _ := json.Marshal(req)
	return b
}

// validatorClient signs one attestation per key per epoch of the
// simulated chain, asking every region in turn (only the lease holder
// signs; the others answer 503), as a validator client configured with
// all three regions would.
type validatorClient struct {
	c      *cluster
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	signed  map[string]map[uint64]string // pubkey → epoch → signature
	signers map[string]map[uint64]string // pubkey → epoch → region
	by      map[string]int               // region → signatures
	// refused counts answers other than 200 by region and status (or
	// transport error), for the log.
	refused map[string]int
	// doubles lists duties two regions signed.
	doubles []string
	last    map[string]uint64 // region → last epoch it signed
}

func startValidatorClient(ctx context.Context, c *cluster) *validatorClient {
	ctx, cancel := context.WithCancel(ctx)
	vc := &validatorClient{c: c, cancel: cancel, done: make(chan struct{}), signed: map[string]map[uint64]string{}, signers: map[string]map[uint64]string{}, by: map[string]int{}, refused: map[string]int{}, last: map[string]uint64{}}
	cl := c.httpClient("vc-1")
	cl.Timeout = 2 * time.Second
	go func() {
		defer close(vc.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			e := c.beacons[0].View().Epoch
			for _, pk := range c.pubkeys {
				if vc.has(pk, e) {
					continue
				}
				// Ask every region, as a client configured with all three
				// may: only the lease holder may answer 200.
				for _, r := range c.regions {
					if sig, ok := vc.sign(ctx, cl, r, pk, e); ok {
						vc.note(pk, e, r.name, sig)
					}
				}
			}
		}
	}()
	return vc
}

func (vc *validatorClient) sign(ctx context.Context, cl *http.Client, r *region, pk string, e uint64) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+r.signingAddr+"/api/v1/eth2/sign/"+pk, bytes.NewReader(attestation(e)))
	if err != nil {
		return "", false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		vc.refuse(r.name + " transport error")
		return "", false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		vc.refuse(fmt.Sprintf("%s %d %s", r.name, resp.StatusCode, firstWords(string(b), 12)))
		return "", false
	}
	var out struct {
		Signature string `json:"signature"`
	}
	if json.Unmarshal(b, &out) != nil || out.Signature == "" {
		return "", false
	}
	return out.Signature, true
}

func (vc *validatorClient) refuse(what string) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	vc.refused[what]++
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

func (vc *validatorClient) has(pk string, e uint64) bool {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	_, ok := vc.signed[pk][e]
	return ok
}

func (vc *validatorClient) note(pk string, e uint64, region, sig string) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.signed[pk] == nil {
		vc.signed[pk] = map[uint64]string{}
	}
	if prev, ok := vc.signers[pk][e]; ok {
		vc.doubles = append(vc.doubles, fmt.Sprintf("key %s… epoch %d signed by %s and %s", pk[:10], e, prev, region))
	}
	vc.signed[pk][e] = sig
	if vc.signers[pk] == nil {
		vc.signers[pk] = map[uint64]string{}
	}
	vc.signers[pk][e] = region
	vc.by[region]++
	vc.last[region] = max(vc.last[region], e)
}

func (vc *validatorClient) signedBy(region string) int {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	return vc.by[region]
}

func (vc *validatorClient) stop() {
	vc.cancel()
	<-vc.done
}

// operatorPropose submits an OPERATOR_COMMAND through dc1's Node API
// (OperatorPropose forwards it to the Raft leader) with the operator
// certificate; a refusal is an error.
func (c *cluster) operatorPropose(ctx context.Context, payload []byte) error {
	mat, err := pki.LoadTLS(c.path("certs", "ca.crt"), c.path("certs", "regentctl.crt"), c.path("certs", "regentctl.key"))
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range c.regions {
		host, _, _ := net.SplitHostPort(r.grpcAddr)
		tc, err := mat.ClientConfig(host)
		if err != nil {
			return err
		}
		conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = nodepb.NewNodeClient(conn).OperatorPropose(cctx, &nodepb.ProposeRequest{Type: commandpb.CommandType_OPERATOR_COMMAND, Payload: payload})
		cancel()
		conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
	}
	return errors.Join(errs...)
}

// checkSafety checks what the validator client saw against the lease: no
// duty was signed by two regions (the client asks all three for every
// duty), and in epoch order the region that signed a key's attestations
// changes at most once per lease change (a superseded holder that signed
// again would add changes).
func (c *cluster) checkSafety() {
	c.t.Helper()
	out, _ := c.exec(context.Background(), "regentctl", "status", "--output", "json", "--timeout", "1s")
	var st statusJSON
	if err := json.Unmarshal(out, &st); err != nil || st.Lease == nil {
		c.t.Fatalf("status after the runbook: %v: %s", err, out)
	}
	epoch, err := strconv.Atoi(st.Lease.Epoch)
	if err != nil {
		c.t.Fatalf("lease epoch %q: %v", st.Lease.Epoch, err)
	}
	vc := c.vc
	vc.mu.Lock()
	defer vc.mu.Unlock()
	for _, d := range vc.doubles {
		c.t.Errorf("validator client: %s", d)
	}
	for pk, byEpoch := range vc.signers {
		seq, err := signerChanges(byEpoch, epoch)
		if err != nil {
			c.t.Errorf("key %s…: %v", pk[:10], err)
		}
		c.t.Logf("validator client, key %s…: %d signatures: %s", pk[:10], len(byEpoch), strings.Join(seq, ", "))
	}
	for what, n := range vc.refused {
		c.t.Logf("validator client: %d× %s", n, what)
	}
}

// signerChanges walks one key's signatures (epoch → region) in epoch order
// and describes who signed from when; it is an error when the signing
// region changed more often than the lease (at epoch leaseEpoch) did.
func signerChanges(byEpoch map[uint64]string, leaseEpoch int) ([]string, error) {
	epochs := make([]uint64, 0, len(byEpoch))
	for e := range byEpoch {
		epochs = append(epochs, e)
	}
	sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
	changes, prev := 0, ""
	var seq []string
	for _, e := range epochs {
		r := byEpoch[e]
		if r == prev {
			continue
		}
		if prev != "" {
			changes++
		}
		seq = append(seq, fmt.Sprintf("%s from epoch %d", r, e))
		prev = r
	}
	if changes > leaseEpoch-1 {
		return seq, fmt.Errorf("the signing region changed %d times but the lease changed %d times: %s", changes, leaseEpoch-1, strings.Join(seq, ", "))
	}
	return seq, nil
}
