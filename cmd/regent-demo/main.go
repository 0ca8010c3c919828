// Command regent-demo runs the Regent story on one machine: three region
// processes on loopback (dc1, dc2, dc3) over mutual TLS, a simulated
// validator set whose protection records are committed through the
// replicated log, the loss of the lease holder's region (SIGKILL), and its
// return. It narrates in operator words and checks every claim it makes:
// it exits non-zero if anything it shows is not true.
//
//	make demo        # builds, then runs bin/regent-demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		bin        = flag.String("bin", "bin", "directory holding the regent and regentctl binaries")
		dir        = flag.String("dir", "", "working directory for certificates, configs, data and logs (default: a new temp dir)")
		validators = flag.Int("validators", 300, "simulated validators")
		epochs     = flag.Int("epochs", 4, "epochs of duties to record")
		keep       = flag.Bool("keep", false, "leave the cluster running at the end (stop it with: regent-demo --stop DIR)")
		stop       = flag.String("stop", "", "stop a cluster left running by --keep in DIR")
	)
	flag.Parse()
	if *stop != "" {
		if err := stopKept(*stop); err != nil {
			fail(err)
		}
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "regent-demo.")
		if err != nil {
			fail(err)
		}
		*dir = d
	}
	d := &demo{bin: *bin, dir: *dir, out: os.Stdout, validators: *validators, epochs: *epochs, keep: *keep}
	err := d.run()
	if !d.keep || err != nil {
		d.stopAll()
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "\nDEMO FAILED: %v\n", err)
	os.Exit(1)
}

type region struct {
	name              string
	raftAddr, grpcAdr string
	httpAddr          string
	cmd               *exec.Cmd
	exited            chan error
}

type demo struct {
	bin, dir   string
	out        io.Writer
	validators int
	epochs     int
	regions    []*region
	step       int
	keep       bool
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "  "+format+"\n", args...)
}

func (d *demo) chapter(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n== %d. %s\n", d.step, title)
}

func (d *demo) run() error {
	abs, err := filepath.Abs(d.bin)
	if err != nil {
		return err
	}
	d.bin = abs
	fmt.Fprintf(d.out, "Regent demo: three regions, one signing lease, nothing acknowledged lost.\nWorking directory: %s\n", d.dir)

	d.chapter("Development certificates")
	if err := d.regentctl(os.Stdout, "pki", "init", "--dir", d.path("certs")); err != nil {
		return err
	}
	d.say("every region, regentctl and validator client authenticate with mutual TLS 1.3 under this cluster CA")

	d.chapter("Three regions start: dc1, dc2, dc3 (one process each, Raft over mTLS, bolt files on disk)")
	for _, name := range []string{"dc1", "dc2", "dc3"} {
		d.regions = append(d.regions, &region{name: name, raftAddr: freePort(), grpcAdr: freePort(), httpAddr: freePort()})
	}
	for _, r := range d.regions {
		if err := d.writeConfig(r); err != nil {
			return err
		}
		if err := d.start(r); err != nil {
			return err
		}
		d.say("%s: raft %s, api %s, metrics http://%s/metrics (log: %s)", r.name, r.raftAddr, r.grpcAdr, r.httpAddr, d.path(r.name+".log"))
	}
	c, err := newClient(d.path("certs"), d.regions)
	if err != nil {
		return err
	}
	defer c.close()

	ctx := context.Background()
	d.say("waiting for a Raft leader and the initial lease grant to dc1 ...")
	if err := c.waitFor(ctx, 30*time.Second, "lease active on dc1 at epoch 1", func() error {
		return c.expectLease("dc1", 1, "active", d.regions...)
	}); err != nil {
		return err
	}
	d.say("the replicated state machine granted the signing lease to dc1 at epoch 1: only dc1 may sign")
	if err := c.waitFor(ctx, 30*time.Second, "Raft leadership on the lease holder dc1", func() error {
		l, err := c.leaderAmong(ctx, "dc1", "dc2", "dc3")
		if err == nil && l != "dc1" {
			return fmt.Errorf("leader is %s", l)
		}
		return err
	}); err != nil {
		return err
	}
	d.say("Raft leadership follows the lease to dc1, so dc1 commits its own records without a network hop")
	d.status()

	d.chapter(fmt.Sprintf("A simulated validator set: %d keys, %d epochs of duties", d.validators, d.epochs))
	set, err := newValidatorSet(d.validators)
	if err != nil {
		return err
	}
	if err := c.addKeys(ctx, "dc1", set); err != nil {
		return err
	}
	d.say("registered %d BLS12-381 validator keys in the replicated key registry", d.validators)
	start := time.Now()
	acked, err := c.recordDuties(ctx, "dc1", set, d.epochs)
	if err != nil {
		return err
	}
	el := time.Since(start)
	d.say("dc1 committed %d protection records (%d attestations, %d block proposals) in %v, %.0f records/s",
		len(acked), countKind(acked, kindAttestation), countKind(acked, kindBlock), el.Round(time.Millisecond), float64(len(acked))/el.Seconds())
	d.say("each record was durable on a majority of regions before it was acknowledged; none was refused")

	d.say("a faulty validator client now asks dc1 for a second, different vote at a target epoch already signed:")
	refusal, err := c.tryDoubleVote(ctx, "dc1", set, uint64(d.epochs))
	if err != nil {
		return err
	}
	d.say("  refused: %s", refusal)

	d.chapter("Disaster: dc1's process is killed with SIGKILL")
	if err := d.kill(d.region("dc1")); err != nil {
		return err
	}
	d.say("dc1 is gone; dc2 and dc3 are a majority and elect a new Raft leader")
	var survivor string
	if err := c.waitFor(ctx, 30*time.Second, "a leader among dc2 and dc3", func() error {
		l, err := c.leaderAmong(ctx, "dc2", "dc3")
		survivor = l
		return err
	}); err != nil {
		return err
	}
	d.say("%s leads Raft now", survivor)
	d.status()
	if err := c.expectLease("dc1", 1, "active", d.region("dc2"), d.region("dc3")); err != nil {
		return err
	}
	d.say("the lease still names dc1 at epoch 1: nobody else may sign until an audited handover moves it")
	d.say("(the handover protocol — approvals, finality, fencing — is the next piece of work)")
	if msg, err := c.recordOn(ctx, "dc2", set, d.epochs+1); err == nil {
		return errors.New("dc2 accepted records while dc1 holds the lease")
	} else {
		d.say("dc2 refuses to record or sign: %s", msg)
	}

	d.chapter("Nothing acknowledged was lost")
	for _, name := range []string{"dc2", "dc3"} {
		held, err := c.verifyHeld(ctx, name, acked)
		if err != nil {
			return err
		}
		if held != len(acked) {
			return fmt.Errorf("%s holds %d of %d acknowledged records", name, held, len(acked))
		}
		d.say("%s holds %d of %d acknowledged records: a conflicting vote or block for each is refused there", name, held, len(acked))
	}

	d.chapter("dc1 comes back")
	if err := d.start(d.region("dc1")); err != nil {
		return err
	}
	if err := c.waitFor(ctx, 30*time.Second, "dc1 to catch up", func() error {
		return c.caughtUp(ctx, "dc1")
	}); err != nil {
		return err
	}
	held, err := c.verifyHeld(ctx, "dc1", acked)
	if err != nil {
		return err
	}
	d.say("dc1 replayed the log from its bolt files and its peers; it holds %d of %d acknowledged records", held, len(acked))
	if err := c.waitFor(ctx, 30*time.Second, "Raft leadership to return to the lease holder dc1", func() error {
		l, err := c.leaderAmong(ctx, "dc1", "dc2", "dc3")
		if err == nil && l != "dc1" {
			return fmt.Errorf("leader is %s", l)
		}
		return err
	}); err != nil {
		return err
	}
	d.say("Raft leadership moved back next to the lease holder, so dc1 commits its own records without a hop")
	d.status()

	if d.keep {
		return d.leaveRunning()
	}
	d.chapter("Shutting down")
	d.stopAll()
	d.say("all regions stopped cleanly. Data, configs and logs are in %s", d.dir)
	fmt.Fprintln(d.out, "\nDEMO OK")
	return nil
}

// leaveRunning detaches the regions, writing env.sh for regentctl and the
// process ids for --stop.
func (d *demo) leaveRunning() error {
	d.chapter("The cluster keeps running")
	var eps, pids []string
	for _, r := range d.regions {
		eps = append(eps, r.name+"="+r.grpcAdr)
		pids = append(pids, fmt.Sprint(r.cmd.Process.Pid))
	}
	certs := d.path("certs")
	env := fmt.Sprintf("export PATH=%s:$PATH\nexport REGENTCTL_TLS_CA=%s/ca.crt REGENTCTL_TLS_CERT=%s/regentctl.crt REGENTCTL_TLS_KEY=%s/regentctl.key\nexport REGENTCTL_ENDPOINTS=%s\n",
		d.bin, certs, certs, certs, strings.Join(eps, ","))
	if err := os.WriteFile(d.path("env.sh"), []byte(env), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(d.path("pids"), []byte(strings.Join(pids, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	d.say("three regions are still running. Try:")
	d.say("  . %s && regentctl status --output json", d.path("env.sh"))
	d.say("stop them with: make demo-down   (or: %s/regent-demo --stop %s)", d.bin, d.dir)
	fmt.Fprintln(d.out, "\nDEMO OK")
	return nil
}

// stopKept sends SIGTERM to the regions a --keep run left in dir.
func stopKept(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		return fmt.Errorf("no running demo cluster in %s: %w", dir, err)
	}
	for _, f := range strings.Fields(string(b)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err != nil {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Signal(syscall.SIGTERM)
		}
	}
	fmt.Printf("stopped the demo cluster in %s\n", dir)
	return os.Remove(filepath.Join(dir, "pids"))
}

func (d *demo) path(elem ...string) string { return filepath.Join(append([]string{d.dir}, elem...)...) }

func (d *demo) region(name string) *region {
	for _, r := range d.regions {
		if r.name == name {
			return r
		}
	}
	panic("no region " + name)
}

func (d *demo) writeConfig(r *region) error {
	var peers strings.Builder
	for _, p := range d.regions {
		fmt.Fprintf(&peers, "  - id: %s\n    address: %s\n    api: %s\n", p.name, p.raftAddr, p.grpcAdr)
	}
	cfg := fmt.Sprintf(`# Region %[1]s of the Regent demo cluster.
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
peers:
%[7]s`, r.name, d.path("data", r.name), r.raftAddr, r.grpcAdr, r.httpAddr, d.path("certs"), peers.String())
	return os.WriteFile(d.path(r.name+".yaml"), []byte(cfg), 0o600)
}

func (d *demo) start(r *region) error {
	logf, err := os.OpenFile(d.path(r.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(d.bin, "regent"), "run", "--config", d.path(r.name+".yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	r.cmd, r.exited = cmd, make(chan error, 1)
	go func() { r.exited <- cmd.Wait(); logf.Close() }()
	return nil
}

func (d *demo) kill(r *region) error {
	if r.cmd == nil {
		return fmt.Errorf("%s is not running", r.name)
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-r.exited
	r.cmd = nil
	return nil
}

func (d *demo) stopAll() {
	for _, r := range d.regions {
		if r.cmd == nil {
			continue
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		r.cmd = nil
	}
}

// status prints `regentctl status`, as an operator would run it.
func (d *demo) status() {
	var eps []string
	for _, r := range d.regions {
		eps = append(eps, r.name+"="+r.grpcAdr)
	}
	fmt.Fprintf(d.out, "\n  $ regentctl status\n")
	var b strings.Builder
	_ = d.regentctl(&b, "status", "--endpoints", strings.Join(eps, ","), "--timeout", "1s")
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprintf(d.out, "  | %s\n", line)
	}
}

func (d *demo) regentctl(out io.Writer, args ...string) error {
	certs := d.path("certs")
	cmd := exec.Command(filepath.Join(d.bin, "regentctl"), args...)
	cmd.Env = append(os.Environ(),
		"REGENTCTL_TLS_CA="+certs+"/ca.crt", "REGENTCTL_TLS_CERT="+certs+"/regentctl.crt", "REGENTCTL_TLS_KEY="+certs+"/regentctl.key")
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && args[0] == "status" {
		return nil // degraded status exits non-zero by design
	}
	return err
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer l.Close()
	return l.Addr().String()
}
