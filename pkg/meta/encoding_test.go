package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// decodeTwice is decode as it was: the version parsed on its own, then
// the value. decode must agree with it on every input.
func decodeTwice(key string, b []byte, v any) error {
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

// committed is a partition state as a commit writes it.
var committed = PartitionState{V: valueVersion, Broker: "broker-1", Epoch: 3, NextOffset: 1234,
	Producers: map[int64]ProducerState{7: {Epoch: 1, FirstSeq: 10, LastSeq: 12, FirstOffset: 1230, LastOffset: 1232}}}.canonical()

func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		name        string
		value       string
		unsupported bool // ErrUnsupportedValue; otherwise any other error, or none if ok
		ok          bool
	}{
		{name: "a commit", value: committed, ok: true},
		{name: "a newer version", value: `{"v":2,"broker":"b","epoch":1}`, unsupported: true},
		{name: "a newer version with other field types", value: `{"v":2,"epoch":"one"}`, unsupported: true},
		{name: "no version", value: `{"broker":"b","epoch":1}`, unsupported: true},
		{name: "not JSON", value: `{"v":1,`},
		{name: "a field of the wrong type", value: `{"v":1,"epoch":"one"}`},
		{name: "a version of the wrong type", value: `{"v":"1"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := PartitionState{V: valueVersion} // what the caller held must not count
			err := decode("k", []byte(tt.value), &st)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("decode: %v", err)
			case tt.ok && st.canonical() != tt.value:
				t.Fatalf("decoded %+v, which encodes as %s, want %s", st, st.canonical(), tt.value)
			case !tt.ok && err == nil:
				t.Fatalf("decode accepted %s as %+v", tt.value, st)
			case !tt.ok && errors.Is(err, ErrUnsupportedValue) != tt.unsupported:
				t.Fatalf("decode: %v; want ErrUnsupportedValue: %v", err, tt.unsupported)
			}
		})
	}
}

// FuzzDecode: on any bytes, decode succeeds or fails as decoding twice
// does, with the same kind of error, and fills the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{committed, `{"v":2}`, `{"v":1,"epoch":"x"}`, `{"epoch":1}`, `[]`, `null`, `{"v":1e0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want PartitionState
		gotErr, wantErr := decode("k", b, &got), decodeTwice("k", b, &want)
		if (gotErr == nil) != (wantErr == nil) || errors.Is(gotErr, ErrUnsupportedValue) != errors.Is(wantErr, ErrUnsupportedValue) {
			t.Fatalf("decode(%q) = %v; decoding twice: %v", b, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decode(%q) = %+v; decoding twice: %+v", b, got, want)
		}
	})
}

// BenchmarkDecodePartition decodes a committed partition state, as every
// view does for every commit.
//
//	go test ./pkg/meta -run '^$' -bench DecodePartition
func BenchmarkDecodePartition(b *testing.B) {
	value := []byte(committed)
	b.ReportAllocs()
	for b.Loop() {
		var st PartitionState
		if err := decode("k", value, &st); err != nil {
			b.Fatal(err)
		}
	}
}
