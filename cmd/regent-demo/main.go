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
		bin  = flag.String("bin", "bin", "directory holding the regent and regentctl binaries")
		dir  = flag.String("dir", "", "working directory for certificates, configs, data and logs (default: a new temp dir)")
		keep = flag.Bool("keep", false, "leave the cluster running at the end (stop it with: regent-demo --stop DIR)")
		stop = flag.String("stop", "", "stop a cluster left running by --keep in DIR")
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
	d := &demo{bin: *bin, dir: *dir, out: os.Stdout, keep: *keep}
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
	signAddr          string   // Web3Signer + Keymanager API
	env               []string // SOFTHSM2_CONF: the region's own HSM
	cmd               *exec.Cmd
	exited            chan error
}

type demo struct {
	bin, dir string
	out      io.Writer
	regions  []*region
	step     int
	keep     bool
	chain    *chain
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "  "+format+"\n", args...)
}

func (d *demo) chapter(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n== %d. %s\n", d.step, title)
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

func (d *demo) writeConfig(r *region, operatorsFile string) error {
	var peers strings.Builder
	for _, p := range d.regions {
		fmt.Fprintf(&peers, "  - id: %s\n    address: %s\n    api: %s\n", p.name, p.raftAddr, p.grpcAdr)
	}
	var endpoints strings.Builder
	for _, e := range d.chain.endpoints {
		fmt.Fprintf(&endpoints, "          - %s\n", e)
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
network: mainnet
hsm:
  module: /usr/lib/softhsm/libsofthsm2.so
  token_label: regent-%[1]s
  pin_file: %[7]s
signing:
  http: %[8]s
failover:
  operators_file: %[9]s
  heartbeat_interval: 1s
  finality:
    poll_interval: 200ms
    eth:
      - name: demo-chain
        quorum: 2
        slots_per_epoch: 32
        endpoints:
%[10]speers:
%[11]s`, r.name, d.path("data", r.name), r.raftAddr, r.grpcAdr, r.httpAddr, d.path("certs"), d.path("hsm", r.name, "pin"),
		r.signAddr, operatorsFile, endpoints.String(), peers.String())
	return os.WriteFile(d.path(r.name+".yaml"), []byte(cfg), 0o600)
}

func (d *demo) start(r *region) error {
	logf, err := os.OpenFile(d.path(r.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(d.bin, "regent"), "run", "--config", d.path(r.name+".yaml"))
	cmd.Env = append(os.Environ(), r.env...)
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
