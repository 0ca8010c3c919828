package sim

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		ok   bool
	}{
		{"defaults", func(*Options) {}, true},
		{"zero value takes defaults", func(o *Options) { *o = Options{} }, true},
		{"negative runs", func(o *Options) { o.Runs = -1 }, false},
		{"too many steps", func(o *Options) { o.Steps = MaxSteps + 1 }, false},
		{"too many validators", func(o *Options) { o.Validators = MaxValidators + 1 }, false},
		{"negative duty timeout", func(o *Options) { o.DutyTimeout = -time.Second }, false},
		{"settle shorter than elections", func(o *Options) { o.SettleTimeout = 500 * time.Millisecond }, false},
		{"heartbeat below 5ms", func(o *Options) { o.Raft.HeartbeatTimeout = time.Millisecond }, false},
		{"election below heartbeat", func(o *Options) {
			o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout = 200*time.Millisecond, 100*time.Millisecond
		}, false},
		{"leader lease above heartbeat", func(o *Options) { o.Raft.LeaderLeaseTimeout = time.Second }, false},
		{"commit timeout below 1ms", func(o *Options) { o.Raft.CommitTimeout = time.Microsecond }, false},
		{"DR silence below the protocol minimum", func(o *Options) { o.DRSilence = 10 * time.Second }, false},
		{"DR silence not whole seconds", func(o *Options) { o.DRSilence = 60*time.Second + time.Millisecond }, false},
		{"DR silence within clock skew", func(o *Options) { o.DRSilence, o.MaxClockSkew = 30*time.Second, 15*time.Second }, false},
		{"skew over an hour", func(o *Options) { o.MaxClockSkew = 2 * time.Hour }, false},
		{"unknown sabotage", func(o *Options) { o.sabotage = 99 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.mod(&o)
			err := o.Validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrOptions)) {
				t.Fatalf("Validate = %v, want ok %t", err, tc.ok)
			}
			if !tc.ok {
				rep, err := Run(context.Background(), o)
				if !errors.Is(err, ErrOptions) || len(rep.Runs) != 0 {
					t.Fatalf("Run with invalid options = %d runs, %v", len(rep.Runs), err)
				}
			}
		})
	}
}
