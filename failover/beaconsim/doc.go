// Package beaconsim is a small, honest simulated Ethereum beacon node for
// tests, drills and the demo. It serves the few beacon-API endpoints the
// finality watcher (package failover/finality) reads — genesis, the head
// state's finality checkpoints, the head/finalized/genesis block headers —
// plus /eth/v1/node/syncing and /eth/v1/node/health, in the shapes
// ethereum/beacon-APIs specifies.
//
// # The simulated chain
//
// Slots advance with the injected Clock: the head slot is
// ⌊(now − GenesisTime) / SlotDuration⌋ (0 before genesis) and every slot
// has a block. Finality follows the healthy pattern: at head epoch c the
// finalized and previous justified checkpoints are epoch c−2 and the
// current justified checkpoint is epoch c−1; a checkpoint at epoch 0 has
// the zero root, as real nodes report before any finality. Every root is
// deterministic — the block root at a slot is sha256("beaconsim/block" ‖
// genesis validators root ‖ fork ‖ slot) and a checkpoint's root is the
// root of the block at its epoch's first slot — so several instances
// configured alike serve the same chain and agree.
//
// # Knobs
//
// SetFinalizing(false) stalls finality (checkpoints stay put while the
// head advances); SetLie(k) reports finality k epochs ahead of the truth,
// self-consistently; SetFork(id) moves the node onto another fork (every
// root differs); SetSyncing(true) makes /eth/v1/node/syncing report
// syncing and /eth/v1/node/health answer 206; SetAvailable(false) makes
// every beacon endpoint answer 503. With Config.ControlAPI the same knobs are
// reachable over HTTP (/beaconsim/v1/knobs) for drills that run the
// simulator as a separate process. An invalid knob value is refused and
// changes nothing.
//
// # Running it
//
// Node.Handler serves the API for httptest; Node.Serve serves it on a
// listener until a context ends; Run(ctx, addr, cfg) does both for a
// command (see its example). The package holds no package-level mutable
// state.
package beaconsim
