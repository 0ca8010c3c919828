package eth2

import (
	"fmt"
	"strings"
)

// Explanation is a signing request's derivation in human terms: what is
// signed, under which domain, and what slashing protection must record. It
// backs `regentctl eth2 signing-root --request FILE` (text or --output json).
type Explanation struct {
	Type    Type   `json:"type"`
	Version string `json:"version,omitempty"`
	Network string `json:"network,omitempty"`
	// Epoch is the message epoch passed to get_domain; nil for DEPOSIT and
	// VALIDATOR_REGISTRATION, whose domains do not depend on an epoch.
	Epoch                 *uint64 `json:"epoch,omitempty"`
	DomainType            string  `json:"domain_type"`
	DomainTypeName        string  `json:"domain_type_name"`
	ForkVersion           string  `json:"fork_version"`
	ForkVersionSource     string  `json:"fork_version_source"`
	GenesisValidatorsRoot string  `json:"genesis_validators_root"`
	Domain                string  `json:"domain"`
	ObjectRoot            string  `json:"object_root"`
	SigningRoot           string  `json:"signing_root"`
	// ClientSigningRoot is what the client sent, if anything; the request
	// only explains successfully when it matches SigningRoot.
	ClientSigningRoot string `json:"client_signing_root,omitempty"`
	Protection        string `json:"protection"`
	RequiresApproval  bool   `json:"requires_approval"`
}

// ExplainRequest decodes body (for network n when n is non-nil) and
// explains its signing root. Errors are those of Decode and SigningRoot.
func ExplainRequest(body []byte, n *Network) (*Explanation, error) {
	var r *Request
	var err error
	if n != nil {
		r, err = DecodeForNetwork(body, *n)
	} else {
		r, err = Decode(body)
	}
	if err != nil {
		return nil, err
	}
	return r.Explain()
}

// Explain describes how r's signing root is derived. It fails exactly when
// SigningRoot fails.
func (r *Request) Explain() (*Explanation, error) {
	root, domain, err := r.SigningRoot()
	if err != nil {
		return nil, err
	}
	c, err := r.chooseDomain()
	if err != nil {
		return nil, err
	}
	obj, err := r.ObjectRoot()
	if err != nil {
		return nil, err
	}
	e := &Explanation{
		Type:                  r.Type,
		Version:               string(r.Version),
		DomainType:            c.domainType.String(),
		DomainTypeName:        domainTypeName(c.domainType),
		ForkVersion:           c.version.String(),
		ForkVersionSource:     c.versionSource,
		GenesisValidatorsRoot: c.gvr.String(),
		Domain:                Root(domain).String(),
		ObjectRoot:            obj.String(),
		SigningRoot:           Root(root).String(),
		RequiresApproval:      r.RequiresApproval(),
	}
	if n, ok := r.Network(); ok {
		e.Network = n.Name
	}
	if c.hasEpoch {
		ep := c.epoch
		e.Epoch = &ep
	}
	if r.ClientSigningRoot != nil {
		e.ClientSigningRoot = r.ClientSigningRoot.String()
	}
	p := r.Protection()
	switch p.Kind {
	case ProtectionBlock:
		e.Protection = fmt.Sprintf("block slot=%d", p.Slot)
	case ProtectionAttestation:
		e.Protection = fmt.Sprintf("attestation source_epoch=%d target_epoch=%d", p.SourceEpoch, p.TargetEpoch)
	default:
		e.Protection = p.Kind.String()
	}
	return e, nil
}

// String renders the explanation as aligned "key: value" lines.
func (e *Explanation) String() string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-24s %s\n", k+":", v) }
	line("type", string(e.Type))
	if e.Version != "" {
		line("version", e.Version)
	}
	if e.Network != "" {
		line("network", e.Network)
	}
	if e.Epoch != nil {
		line("message epoch", fmt.Sprint(*e.Epoch))
	}
	line("domain type", e.DomainType+" ("+e.DomainTypeName+")")
	line("fork version", e.ForkVersion+" from "+e.ForkVersionSource)
	line("genesis validators root", e.GenesisValidatorsRoot)
	line("domain", e.Domain)
	line("object root", e.ObjectRoot)
	line("signing root", e.SigningRoot)
	if e.ClientSigningRoot != "" {
		line("client signing root", e.ClientSigningRoot+" (matches)")
	}
	line("slashing protection", e.Protection)
	if e.RequiresApproval {
		line("operator approval", "required (voluntary exit)")
	}
	return b.String()
}

// Explain decodes body and returns its signing root, domain and the rest of
// their derivation as text, for `regentctl eth2 signing-root --request
// FILE`. n may be nil when no network is configured (then
// VALIDATOR_REGISTRATION and VOLUNTARY_EXIT cannot be explained).
func Explain(body []byte, n *Network) (string, error) {
	e, err := ExplainRequest(body, n)
	if err != nil {
		return "", err
	}
	return e.String(), nil
}
