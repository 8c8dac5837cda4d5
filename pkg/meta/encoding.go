package meta

import (
	"encoding/json"
	"fmt"

	"go.uber.org/zap"
)

// valueVersion is the version every value is written with. A reader accepts
// only versions it knows; a newer writer must bump it.
const valueVersion = 1

// encode marshals a value. The encoding of a given struct is deterministic,
// which the fencing commit relies on: it compares partition state bytes.
func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own plain structs are encoded; they always marshal.
		panic(fmt.Sprintf("meta: encode %T: %v", v, err))
	}
	return string(b)
}

// decode unmarshals a value and checks its version field.
func decode(key string, b []byte, v any) error {
	var hdr struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return fmt.Errorf("meta: decode %s: %w", key, err)
	}
	if hdr.V != valueVersion {
		return fmt.Errorf("%w: %s has v=%d, want %d", ErrUnsupportedValue, key, hdr.V, valueVersion)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("meta: decode %s: %w", key, err)
	}
	return nil
}

func nopZap() *zap.Logger { return zap.NewNop() }
