package broker

import (
	"errors"
	"testing"
)

// TestKeepObjectBuffer checks which memory a PUT worker builds its next
// object in: the stored object's, unless the PUT failed (the transport may
// still read the body it gave up on) or the object is too large to keep.
func TestKeepObjectBuffer(t *testing.T) {
	s := &Server{cfg: Config{FlushBytes: 1 << 10}}
	old := make([]byte, 0, 1<<10)
	inOld := old[:100]
	fresh := make([]byte, 100, 1<<10)
	huge := make([]byte, 100, 4<<10)
	failed := errors.New("PUT failed")
	same := func(a, b []byte) bool { return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0] }
	for _, tc := range []struct {
		name     string
		old, obj []byte
		err      error
		want     []byte // nil: nothing kept
	}{
		{"stored, built in the old buffer", old, inOld, nil, old},
		{"stored, built in new memory", old, fresh, nil, fresh},
		{"stored, first object", nil, fresh, nil, fresh},
		{"stored, too large to keep", old, huge, nil, old},
		{"failed, built in the old buffer", old, inOld, failed, nil},
		{"failed, built in new memory", old, fresh, failed, old},
	} {
		got := s.keepObjectBuffer(tc.old, tc.obj, tc.err)
		switch {
		case tc.want == nil && cap(got) != 0:
			t.Errorf("%s: kept a buffer of %d bytes, want none", tc.name, cap(got))
		case tc.want != nil && !same(got, tc.want):
			t.Errorf("%s: kept the wrong buffer", tc.name)
		case len(got) != 0:
			t.Errorf("%s: kept buffer has length %d, want 0", tc.name, len(got))
		}
	}
}
