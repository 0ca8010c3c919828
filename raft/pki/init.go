package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names written by Init inside its directory.
const (
	// CACertFile is the cluster CA certificate.
	CACertFile = "ca.crt"
	// CAKeyFile is the cluster CA private key. Keep it offline in anything
	// but a development setup.
	CAKeyFile = "ca.key"
	// OperatorFileBase is the base name of the operator-tooling certificate
	// and key (regentctl.crt, regentctl.key).
	OperatorFileBase = "regentctl"
)

// Defaults applied by Init to zero-valued Options fields.
const (
	// DefaultValidity is how long development certificates are valid.
	DefaultValidity = 365 * 24 * time.Hour
	// DefaultOperatorName is the identity name of the operator certificate.
	DefaultOperatorName = "regentctl"
	// caCommonName is the subject of the development CA.
	caCommonName = "Regent development cluster CA"
)

// DefaultRegions returns the region names Init issues node certificates for
// when Options.Regions is empty.
func DefaultRegions() []string { return []string{"dc1", "dc2", "dc3"} }

// DefaultHosts returns the host names and addresses every node certificate
// is valid for when Options.Hosts is empty (the region's own name is always
// added).
func DefaultHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// DefaultClients returns the validator-client identities Init issues when
// Options.Clients is nil.
func DefaultClients() []string { return []string{"vc-1"} }

// Options controls Init. The zero value issues the default development set:
// ca, dc1..dc3, regentctl (operator "regentctl") and vc-1 (client).
type Options struct {
	// Regions names the region nodes; each gets <name>.crt/<name>.key with
	// identity regent://node/<name>, usable as TLS server and client.
	// Empty means DefaultRegions().
	Regions []string
	// Hosts are the DNS names and IP addresses put in every node
	// certificate's SANs, besides the region name itself. Empty means
	// DefaultHosts(). Include every address a peer or client dials.
	Hosts []string
	// OperatorName is the identity in regentctl.crt
	// (regent://operator/<name>). Empty means DefaultOperatorName.
	OperatorName string
	// Clients names the validator clients; each gets <name>.crt/<name>.key
	// with identity regent://client/<name>. Nil means DefaultClients(); an
	// empty non-nil slice issues none.
	Clients []string
	// Validity is how long certificates are valid. Zero means
	// DefaultValidity; negative is an error.
	Validity time.Duration
	// Force replaces existing files. Without it Init refuses to overwrite
	// anything (ErrExists). Files of identities no longer listed are left
	// in place either way.
	Force bool
	// Now is the clock certificates are dated from. Nil means time.Now.
	Now func() time.Time
}

// CertPath returns the certificate path Init uses for identity file base
// name (a region, client name, or OperatorFileBase) inside dir.
func CertPath(dir, name string) string { return filepath.Join(dir, name+".crt") }

// KeyPath returns the private-key path Init uses for name inside dir.
func KeyPath(dir, name string) string { return filepath.Join(dir, name+".key") }

// plan is the validated form of Options.
type plan struct {
	regions  []string
	dnsNames []string
	ips      []net.IP
	operator string
	clients  []string
	validity time.Duration
	now      time.Time
}

func (o Options) plan() (plan, error) {
	p := plan{
		regions:  o.Regions,
		operator: o.OperatorName,
		clients:  o.Clients,
		validity: o.Validity,
	}
	if len(p.regions) == 0 {
		p.regions = DefaultRegions()
	}
	hosts := o.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	if p.operator == "" {
		p.operator = DefaultOperatorName
	}
	if p.clients == nil {
		p.clients = DefaultClients()
	}
	switch {
	case p.validity == 0:
		p.validity = DefaultValidity
	case p.validity < 0:
		return plan{}, fmt.Errorf("%w: validity %v is negative", ErrBadOptions, o.Validity)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	p.now = now()

	// Every identity name must be valid, and every file base name distinct.
	files := map[string]string{"ca": "the CA", OperatorFileBase: "the operator certificate"}
	for _, r := range p.regions {
		if !ValidName(r) {
			return plan{}, fmt.Errorf("%w: region name %q: want 1-63 of [a-z0-9.-], starting and ending alphanumeric", ErrBadOptions, r)
		}
		if owner, dup := files[r]; dup {
			return plan{}, fmt.Errorf("%w: region name %q clashes with %s", ErrBadOptions, r, owner)
		}
		files[r] = "region " + r
	}
	if !ValidName(p.operator) {
		return plan{}, fmt.Errorf("%w: operator name %q: want 1-63 of [a-z0-9.-], starting and ending alphanumeric", ErrBadOptions, p.operator)
	}
	for _, c := range p.clients {
		if !ValidName(c) {
			return plan{}, fmt.Errorf("%w: client name %q: want 1-63 of [a-z0-9.-], starting and ending alphanumeric", ErrBadOptions, c)
		}
		if owner, dup := files[c]; dup {
			return plan{}, fmt.Errorf("%w: client name %q clashes with %s", ErrBadOptions, c, owner)
		}
		files[c] = "client " + c
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(p.ips, ip.Equal) {
				p.ips = append(p.ips, ip)
			}
			continue
		}
		if !validHostname(h) {
			return plan{}, fmt.Errorf("%w: host %q is neither an IP address nor a DNS name", ErrBadOptions, h)
		}
		h = strings.ToLower(h)
		if !slices.Contains(p.dnsNames, h) {
			p.dnsNames = append(p.dnsNames, h)
		}
	}
	return p, nil
}

// validHostname accepts DNS names made of labels of [A-Za-z0-9-], 1-63
// characters each, not starting or ending with '-', 253 characters at most.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// outFile is one file Init writes.
type outFile struct {
	path string
	data []byte
	mode fs.FileMode
}

// Init writes a development PKI into dir (created with mode 0700 if
// missing): ca.crt/ca.key, <region>.crt/.key for each region,
// regentctl.crt/.key for the operator and <client>.crt/.key for each client.
// See the package documentation for the identities they carry.
//
// Init validates opts first (ErrBadOptions), then refuses to overwrite any
// existing target file unless opts.Force is set (ErrExists); in both cases
// nothing is written. Files are first written to temporary files in dir and
// renamed into place; on an error before the renames, the temporaries are
// removed. Init is not safe against a concurrent Init on the same dir.
func Init(dir string, opts Options) error {
	if dir == "" {
		return fmt.Errorf("%w: no directory given", ErrBadOptions)
	}
	p, err := opts.plan()
	if err != nil {
		return err
	}
	files, err := p.build(dir)
	if err != nil {
		return err
	}

	created := false
	info, err := os.Stat(dir)
	switch {
	case err == nil && !info.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrBadOptions, dir)
	case err == nil:
		if err := checkTargets(files, opts.Force); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("pki: creating %s: %w", dir, err)
		}
		created = true
	default:
		return fmt.Errorf("pki: %s: %w", dir, err)
	}
	if err := writeAll(dir, files); err != nil {
		if created {
			_ = os.Remove(dir) // only succeeds if empty, which it is after cleanup
		}
		return err
	}
	return nil
}

// build issues every certificate in memory.
func (p plan) build(dir string) ([]outFile, error) {
	ca, caPEM, err := newCA(caCommonName, p.now, p.validity)
	if err != nil {
		return nil, err
	}
	files := []outFile{
		{path: filepath.Join(dir, CACertFile), data: caPEM.cert, mode: 0o644},
		{path: filepath.Join(dir, CAKeyFile), data: caPEM.key, mode: 0o600},
	}
	add := func(base string, spec leafSpec) error {
		pair, err := ca.issue(spec, p.now, p.validity)
		if err != nil {
			return err
		}
		files = append(files,
			outFile{path: CertPath(dir, base), data: pair.cert, mode: 0o644},
			outFile{path: KeyPath(dir, base), data: pair.key, mode: 0o600})
		return nil
	}
	for _, r := range p.regions {
		dns := slices.Clone(p.dnsNames)
		if !slices.Contains(dns, r) {
			dns = append(dns, r)
		}
		spec := leafSpec{role: RoleNode, name: r, dnsNames: dns, ips: p.ips, server: true, client: true}
		if err := add(r, spec); err != nil {
			return nil, err
		}
	}
	if err := add(OperatorFileBase, leafSpec{role: RoleOperator, name: p.operator, client: true}); err != nil {
		return nil, err
	}
	for _, c := range p.clients {
		if err := add(c, leafSpec{role: RoleClient, name: c, client: true}); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// checkTargets refuses existing files unless force, and refuses non-regular
// files even with force (a rename over a directory would fail half way).
func checkTargets(files []outFile, force bool) error {
	for _, f := range files {
		info, err := os.Lstat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return fmt.Errorf("pki: checking %s: %w", f.path, err)
		case !force:
			return fmt.Errorf("%w: %s", ErrExists, f.path)
		case !info.Mode().IsRegular():
			return fmt.Errorf("%w: %s exists and is not a regular file", ErrBadOptions, f.path)
		}
	}
	return nil
}

// writeAll writes every file to a temporary sibling, then renames them all
// into place and syncs the directory.
func writeAll(dir string, files []outFile) (err error) {
	temps := make([]string, 0, len(files))
	defer func() {
		if err != nil {
			for _, t := range temps {
				_ = os.Remove(t)
			}
		}
	}()
	for _, f := range files {
		tmp, werr := writeTemp(dir, f)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if werr != nil {
			return werr
		}
	}
	for i, f := range files {
		if rerr := os.Rename(temps[i], f.path); rerr != nil {
			return fmt.Errorf("pki: renaming into %s: %w", f.path, rerr)
		}
	}
	temps = nil
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		_ = d.Close()
		if serr != nil {
			return fmt.Errorf("pki: syncing %s: %w", dir, serr)
		}
	}
	return nil
}

func writeTemp(dir string, f outFile) (string, error) {
	t, err := os.CreateTemp(dir, ".pki-*.tmp")
	if err != nil {
		return "", fmt.Errorf("pki: creating temporary file in %s: %w", dir, err)
	}
	name := t.Name()
	// CreateTemp uses 0600; set the final mode explicitly so the umask
	// does not decide it.
	if err := t.Chmod(f.mode); err != nil {
		_ = t.Close()
		return name, fmt.Errorf("pki: chmod %s: %w", name, err)
	}
	if _, err := t.Write(f.data); err != nil {
		_ = t.Close()
		return name, fmt.Errorf("pki: writing %s: %w", name, err)
	}
	if err := t.Sync(); err != nil {
		_ = t.Close()
		return name, fmt.Errorf("pki: syncing %s: %w", name, err)
	}
	if err := t.Close(); err != nil {
		return name, fmt.Errorf("pki: closing %s: %w", name, err)
	}
	return name, nil
}
