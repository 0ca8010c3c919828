package finality

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// endpoint is one configured base URL.
type endpoint struct {
	base *url.URL
	// name is the URL as logged, labelled and put in evidence.
	name string
}

func newEndpoint(raw string) (endpoint, error) {
	u, err := parseEndpoint(raw)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{base: u, name: u.String()}, nil
}

// fetcher performs the watcher's HTTP GETs.
type fetcher struct {
	client  *http.Client
	timeout time.Duration
	limit   int64
}

// get fetches base+path (path may carry a query) and returns the body of a
// 200 answer, at most f.limit bytes. The whole exchange, body included, is
// bounded by f.timeout.
func (f *fetcher) get(ctx context.Context, ep endpoint, pathAndQuery string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	target := ep.base.String() + pathAndQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s%s: %v", ErrUnreachable, ep.name, pathAndQuery, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s%s: %v", ErrUnreachable, ep.name, pathAndQuery, scrub(err))
	}
	defer func() {
		// Drain a little so the connection can be reused; never much.
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s%s: %s", ErrHTTPStatus, ep.name, pathAndQuery, resp.Status)
	}
	if resp.ContentLength > f.limit {
		return nil, fmt.Errorf("%w: %s%s: Content-Length %d above %d", ErrResponseTooLarge, ep.name, pathAndQuery, resp.ContentLength, f.limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s%s: reading body: %v", ErrUnreachable, ep.name, pathAndQuery, scrub(err))
	}
	if int64(len(body)) > f.limit {
		return nil, fmt.Errorf("%w: %s%s: more than %d bytes", ErrResponseTooLarge, ep.name, pathAndQuery, f.limit)
	}
	return body, nil
}

// scrub drops the URL from a *url.Error (it is already in the message, in
// its logged form).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
