package meta

import (
	"encoding/json"
	"fmt"
	"reflect"

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

// decode unmarshals a value and checks its version field. The version is
// read from v's own V field, set by the same parse: every view decodes
// every partition commit, and parsing each value twice (the version, then
// the rest) was a third of that. A value that does not decode, or a v
// without a V field, has its version read on its own, so that a value of
// an unknown version is reported as one (ErrUnsupportedValue) rather than
// as malformed.
func decode(key string, b []byte, v any) error {
	field := versionField(v)
	if field.IsValid() {
		field.SetInt(0) // a V absent from b must not pass as the caller's
	}
	err := json.Unmarshal(b, v)
	var version int64
	if err == nil && field.IsValid() {
		version = field.Int()
	} else {
		var hdr struct {
			V int64 `json:"v"`
		}
		if herr := json.Unmarshal(b, &hdr); herr != nil {
			return fmt.Errorf("meta: decode %s: %w", key, herr)
		}
		version = hdr.V
	}
	if version != valueVersion {
		return fmt.Errorf("%w: %s has v=%d, want %d", ErrUnsupportedValue, key, version, valueVersion)
	}
	if err != nil {
		return fmt.Errorf("meta: decode %s: %w", key, err)
	}
	return nil
}

// versionField returns the settable int field V of the struct v points
// to, or the zero Value if there is none.
func versionField(v any) reflect.Value {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	f := rv.Elem().FieldByName("V")
	if !f.IsValid() || !f.CanSet() || !f.CanInt() {
		return reflect.Value{}
	}
	return f
}

func nopZap() *zap.Logger { return zap.NewNop() }
