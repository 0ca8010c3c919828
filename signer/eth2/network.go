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
		Name:               "mainnet",
		GenesisForkVersion: Version{0x00, 0x00, 0x00, 0x00},
		// genesis validators root 0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95
		GenesisValidatorsRoot: Root{
			0x4b, 0x36, 0x3d, 0xb9, 0x4e, 0x28, 0x61, 0x20,
			0xd7, 0x6e, 0xb9, 0x05, 0x34, 0x0f, 0xdd, 0x4e,
			0x54, 0xbf, 0xe9, 0xf0, 0x6b, 0xf3, 0x3f, 0xf6,
			0xcf, 0x5a, 0xd2, 0x7f, 0x51, 0x1b, 0xfe, 0x95,
		},
		CapellaForkVersion: Version{0x03, 0x00, 0x00, 0x00},
		DenebForkEpoch:     269568,
	}
}

// Hoodi returns the Hoodi testnet's parameters.
func Hoodi() Network {
	return Network{
		Name:               "hoodi",
		GenesisForkVersion: Version{0x10, 0x00, 0x09, 0x10},
		// genesis validators root 0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f
		GenesisValidatorsRoot: Root{
			0x21, 0x2f, 0x13, 0xfc, 0x4d, 0xf0, 0x78, 0xb6,
			0xcb, 0x7d, 0xb2, 0x28, 0xf1, 0xc8, 0x30, 0x75,
			0x66, 0xdc, 0xec, 0xf9, 0x00, 0x86, 0x74, 0x01,
			0xa9, 0x20, 0x23, 0xd7, 0xba, 0x99, 0xcb, 0x5f,
		},
		CapellaForkVersion: Version{0x40, 0x00, 0x09, 0x10},
		DenebForkEpoch:     0,
	}
}

// Sepolia returns the Sepolia testnet's parameters.
func Sepolia() Network {
	return Network{
		Name:               "sepolia",
		GenesisForkVersion: Version{0x90, 0x00, 0x00, 0x69},
		// genesis validators root 0xd8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078
		GenesisValidatorsRoot: Root{
			0xd8, 0xea, 0x17, 0x1f, 0x3c, 0x94, 0xae, 0xa2,
			0x1e, 0xbc, 0x42, 0xa1, 0xed, 0x61, 0x05, 0x2a,
			0xcf, 0x3f, 0x92, 0x09, 0xc0, 0x0e, 0x4e, 0xfb,
			0xaa, 0xdd, 0xac, 0x09, 0xed, 0x9b, 0x80, 0x78,
		},
		CapellaForkVersion: Version{0x90, 0x00, 0x00, 0x72},
		DenebForkEpoch:     132608,
	}
}

// Holesky returns the Holesky testnet's parameters.
func Holesky() Network {
	return Network{
		Name:               "holesky",
		GenesisForkVersion: Version{0x01, 0x01, 0x70, 0x00},
		// genesis validators root 0x9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1
		GenesisValidatorsRoot: Root{
			0x91, 0x43, 0xaa, 0x7c, 0x61, 0x5a, 0x7f, 0x71,
			0x15, 0xe2, 0xb6, 0xaa, 0xc3, 0x19, 0xc0, 0x35,
			0x29, 0xdf, 0x82, 0x42, 0xae, 0x70, 0x5f, 0xba,
			0x9d, 0xf3, 0x9b, 0x79, 0xc5, 0x9f, 0xa8, 0xb1,
		},
		CapellaForkVersion: Version{0x04, 0x01, 0x70, 0x00},
		DenebForkEpoch:     29696,
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
