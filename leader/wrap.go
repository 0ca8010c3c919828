package leader

import (
	"crypto/rsa"
	"fmt"
)

// MinWrapKeyBits is the smallest RSA wrapping key a region may publish.
const MinWrapKeyBits = 2048

func checkWrapKey(pub any) error {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: wrap key is %T, want RSA", ErrInvalidRegion, pub)
	}
	if k.N.BitLen() < MinWrapKeyBits {
		return fmt.Errorf("%w: wrap key has %d bits, want at least %d", ErrInvalidRegion, k.N.BitLen(), MinWrapKeyBits)
	}
	return nil
}
