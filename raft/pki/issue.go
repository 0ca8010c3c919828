package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// Certificate PEM block types written and read by this package.
const (
	pemCertificate = "CERTIFICATE"
	pemPKCS8Key    = "PRIVATE KEY"
	pemSEC1Key     = "EC PRIVATE KEY"
)

// clockSkew backdates NotBefore so a peer whose clock is slightly behind
// still accepts a freshly issued certificate.
const clockSkew = 5 * time.Minute

// issuer is a CA able to sign leaf certificates.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// leafSpec describes one leaf certificate to issue.
type leafSpec struct {
	role     Role
	name     string
	dnsNames []string
	ips      []net.IP
	server   bool // add ExtKeyUsageServerAuth
	client   bool // add ExtKeyUsageClientAuth
}

// pemPair is an issued certificate and its private key, PEM encoded.
type pemPair struct {
	cert []byte
	key  []byte
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating P-256 key: %w", err)
	}
	return k, nil
}

func newSerial() (*big.Int, error) {
	// 127 random bits: positive, and at most 16 bytes DER (RFC 5280 §4.1.2.2).
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("pki: generating serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// newCA creates a self-signed ECDSA P-256 CA valid from now-clockSkew to
// now+validity.
func newCA(commonName string, now time.Time, validity time.Duration) (*issuer, pemPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, pemPair{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, pemPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Regent (development)"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, pemPair{}, fmt.Errorf("pki: creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, pemPair{}, fmt.Errorf("pki: re-reading CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, pemPair{}, err
	}
	return &issuer{cert: cert, key: key}, pemPair{cert: encodeCert(der), key: keyPEM}, nil
}

// issue creates a leaf certificate for spec signed by ca, valid from
// now-clockSkew to now+validity (capped at the CA's NotAfter).
func (ca *issuer) issue(spec leafSpec, now time.Time, validity time.Duration) (pemPair, error) {
	uri, err := IdentityURI(spec.role, spec.name)
	if err != nil {
		return pemPair{}, err
	}
	key, err := newKey()
	if err != nil {
		return pemPair{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return pemPair{}, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	var eku []x509.ExtKeyUsage
	if spec.server {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	if spec.client {
		eku = append(eku, x509.ExtKeyUsageClientAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         spec.name,
			OrganizationalUnit: []string{spec.role.String()},
			Organization:       []string{"Regent (development)"},
		},
		NotBefore:   now.Add(-clockSkew),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: eku,
		DNSNames:    spec.dnsNames,
		IPAddresses: spec.ips,
		URIs:        []*url.URL{uri},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return pemPair{}, fmt.Errorf("pki: creating certificate for %s: %w", uri, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return pemPair{}, err
	}
	return pemPair{cert: encodeCert(der), key: keyPEM}, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8Key, Bytes: der}), nil
}
