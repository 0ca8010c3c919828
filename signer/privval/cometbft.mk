# Real CometBFT node tests of Regent's privval signer (signer/privval).
# Include from the top-level Makefile:  include signer/privval/cometbft.mk
#
# The first run builds the cometbft binary (the release pinned in
# signer/privval/cometbfttest.Version) from the Go module proxy into
# $(go env GOCACHE)/regent-cometbft/<version>: about a minute on two cores.
# Later runs reuse it; the tests themselves take under 10 seconds.
#
# `make test` skips these tests unless REGENT_COMETBFT_TEST=1 is set.

GO ?= go
COMETBFT_TEST_TIMEOUT ?= 20m

.PHONY: cometbft-test

cometbft-test:
	REGENT_COMETBFT_TEST=1 $(GO) test -tags=hashicorpmetrics -race -count=1 -timeout $(COMETBFT_TEST_TIMEOUT) -v ./signer/privval/cometbfttest/
