package leader

import (
	"bytes"
	"testing"

	"github.com/regent-signer/regent/slashing/conformance"
)

// TestConformanceThroughFSM runs the project's EIP-3076 interchange-test
// cases through the replicated state machine's apply path, as
// `regent slashing conformance` does.
func TestConformanceThroughFSM(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := conformance.Run("../slashing/conformance/testdata", func() (conformance.Target, error) {
		return NewEthTarget()
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if failed > 0 || passed < 25 {
		t.Fatalf("%d passed, %d failed:\n%s", passed, failed, out.String())
	}
}
