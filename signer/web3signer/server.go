package web3signer

import (
	"crypto/tls"
	"net/http"
	"time"
)

// Server timeouts set by NewServer.
const (
	// ServerReadHeaderTimeout bounds reading request headers.
	ServerReadHeaderTimeout = 5 * time.Second
	// ServerReadTimeout bounds reading a whole request, body included.
	ServerReadTimeout = 15 * time.Second
	// ServerWriteTimeout bounds a request from the end of its headers to
	// the end of its answer. It exceeds DefaultSignTimeout so that a sign
	// request that waited for its commit can still answer. Handlers that
	// need longer (the Keymanager import) extend their own deadline.
	ServerWriteTimeout = 30 * time.Second
	// ServerIdleTimeout bounds keep-alive connections between requests.
	ServerIdleTimeout = 2 * time.Minute
	// ServerMaxHeaderBytes bounds request headers (bearer tokens included).
	ServerMaxHeaderBytes = 32 << 10
)

// NewServer returns an *http.Server for handler on addr with Regent's
// timeouts and header limit. tlsConfig should require and verify client
// certificates (pki.Material.ServerConfig(pki.RoleClient,
// pki.RoleOperator)), or at least verify them if given when bearer tokens
// are accepted. Start it with ListenAndServeTLS("", "") or ServeTLS(ln, "",
// ""); a nil tlsConfig serves plain HTTP, where only bearer tokens can
// authenticate. Set the returned server's ErrorLog (slog.NewLogLogger) to
// route its own errors, such as failed TLS handshakes, to the node's log.
func NewServer(addr string, tlsConfig *tls.Config, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: ServerReadHeaderTimeout,
		ReadTimeout:       ServerReadTimeout,
		WriteTimeout:      ServerWriteTimeout,
		IdleTimeout:       ServerIdleTimeout,
		MaxHeaderBytes:    ServerMaxHeaderBytes,
	}
}
