# Real CometBFT node tests of Regent's privval signer (signer/privval).
# Include from the top-level Makefile:  include signer/privval/cometbft.mk
#
# The first run builds two cometbft binaries (the releases pinned in
# signer/privval/cometbfttest: Version = v0.38.26, VersionV1 = v1.0.1) from
# the Go module proxy into $(go env GOCACHE)/regent-cometbft/<version>:
# measured on two cores with a cold module cache, 48 s and 4 min. Later runs
# reuse them; the tests themselves take 15-20 s.
#
# It also runs the three-region chain of cmd/internal/node (-run CometBFT):
# a real v0.38 node whose validator key lives only in the regions' SoftHSM2
# tokens, dc1 lost, dc2 takes over; about 10 s with a cached binary.
#
# `make test` skips these tests unless REGENT_COMETBFT_TEST=1 is set.

GO ?= go
COMETBFT_TEST_TIMEOUT ?= 20m

.PHONY: cometbft-test

cometbft-test:
	REGENT_COMETBFT_TEST=1 $(GO) test -tags=hashicorpmetrics -race -count=1 -timeout $(COMETBFT_TEST_TIMEOUT) -v ./signer/privval/cometbfttest/
	REGENT_COMETBFT_TEST=1 $(GO) test -tags=hashicorpmetrics -race -count=1 -timeout $(COMETBFT_TEST_TIMEOUT) -v -run CometBFT ./cmd/internal/node
