package eth2

import (
	"fmt"
	"strings"
)

// Network holds the few chain parameters that a signing root can depend on
// beyond what a request carries. A Regent cluster serves one network; the
// HTTP handler binds it with DecodeForNetwork.
//
// Values are plain data: copy freely, no method mutates a Network.
type Network struct {
	// Name is a label for logs and Explain ("mainnet", "hoodi", ...).
	Name string
	// GenesisForkVersion is GENESIS_FORK_VERSION. VALIDATOR_REGISTRATION
	// signs under compute_domain(DOMAIN_APPLICATION_BUILDER,
	// GenesisForkVersion, zero root); DEPOSIT requests must name it.
	GenesisForkVersion Version
	// GenesisValidatorsRoot identifies the chain. When non-zero, every
	// fork_info must carry exactly this root, or the request is refused
	// with ErrWrongNetwork.
	GenesisValidatorsRoot Root
	// CapellaForkVersion and DenebForkEpoch implement EIP-7044: once the
	// chain is at Deneb or later, voluntary exits are signed under
	// CAPELLA_FORK_VERSION. DenebForkEpoch is FarFutureEpoch if Deneb is
	// not scheduled.
	CapellaForkVersion Version
	DenebForkEpoch     uint64
}

// Mainnet returns Ethereum mainnet's parameters.
func Mainnet() Network {
	return Network{
		Name:                  "mainnet",
		GenesisForkVersion:    Version{0x00, 0x00, 0x00, 0x00},
		GenesisValidatorsRoot: mustRoot("4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"),
		CapellaForkVersion:    Version{0x03, 0x00, 0x00, 0x00},
		DenebForkEpoch:        269568,
	}
}

// Hoodi returns the Hoodi testnet's parameters.
func Hoodi() Network {
	return Network{
		Name:                  "hoodi",
		GenesisForkVersion:    Version{0x10, 0x00, 0x09, 0x10},
		GenesisValidatorsRoot: mustRoot("212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f"),
		CapellaForkVersion:    Version{0x40, 0x00, 0x09, 0x10},
		DenebForkEpoch:        0,
	}
}

// Sepolia returns the Sepolia testnet's parameters.
func Sepolia() Network {
	return Network{
		Name:                  "sepolia",
		GenesisForkVersion:    Version{0x90, 0x00, 0x00, 0x69},
		GenesisValidatorsRoot: mustRoot("d8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078"),
		CapellaForkVersion:    Version{0x90, 0x00, 0x00, 0x72},
		DenebForkEpoch:        132608,
	}
}

// Holesky returns the Holesky testnet's parameters.
func Holesky() Network {
	return Network{
		Name:                  "holesky",
		GenesisForkVersion:    Version{0x01, 0x01, 0x70, 0x00},
		GenesisValidatorsRoot: mustRoot("9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1"),
		CapellaForkVersion:    Version{0x04, 0x01, 0x70, 0x00},
		DenebForkEpoch:        29696,
	}
}

// NetworkByName returns a built-in network by name (case-insensitive):
// mainnet, hoodi, sepolia, holesky.
func NetworkByName(name string) (Network, error) {
	for _, n := range []Network{Mainnet(), Hoodi(), Sepolia(), Holesky()} {
		if strings.EqualFold(n.Name, name) {
			return n, nil
		}
	}
	return Network{}, fmt.Errorf("%w: no built-in network named %q (known: mainnet, hoodi, sepolia, holesky)", ErrNetworkRequired, name)
}

func mustRoot(h string) Root {
	b, err := decodeHex(h)
	if err != nil || len(b) != 32 {
		panic("eth2: bad built-in root " + h)
	}
	return Root(b)
}
