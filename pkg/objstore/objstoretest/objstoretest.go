// Package objstoretest is the conformance suite for objstore.Store
// implementations. Every implementation runs the same tests, so that code
// written and tested against the filesystem store behaves the same on S3.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/objstore"
)

// Run runs the conformance suite. Each subtest calls newStore for a store of
// its own that starts empty; the subtests run in parallel, so newStore must be
// safe for concurrent use.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"PutGet", testPutGet},
		{"GetRange", testGetRange},
		{"GetRangeEmptyObject", testGetRangeEmptyObject},
		{"Overwrite", testOverwrite},
		{"GetMissing", testGetMissing},
		{"Delete", testDelete},
		{"DeleteMany", testDeleteMany},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"ListPaging", testListPaging},
		{"ListStopEarly", testListStopEarly},
		{"InvalidKeys", testInvalidKeys},
		{"LongestKey", testLongestKey},
		{"ContextCanceled", testContextCanceled},
		{"Concurrent", testConcurrent},
		{"AtomicOverwrite", testAtomicOverwrite},
		{"LargeObject", testLargeObject},
		{"Object", testObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func testPutGet(t *testing.T, s objstore.Store) {
	tests := []struct {
		key  string
		data []byte
	}{
		{"empty", nil},
		{"one", []byte{0}},
		{"hello", []byte("hello, world")},
		{"nested/dir/seg-000001.seg", randBytes(1, 64<<10)},
		{"unicode/tøpic/ñ", []byte("ü")},
		{"punct/a+b=c&d;e,f@g$h (1)", []byte("punctuation")},
		{"dots/.hidden/x..y/...", []byte("dots inside segments")},
	}
	for _, tc := range tests {
		mustPut(t, s, tc.key, tc.data)
	}
	for _, tc := range tests {
		got := mustGet(t, s, tc.key, 0, -1)
		if !bytes.Equal(got, tc.data) {
			t.Errorf("Get(%q) = %d bytes, want %d bytes %q", tc.key, len(got), len(tc.data), truncate(tc.data))
		}
	}
}

func testGetRange(t *testing.T, s objstore.Store) {
	const key, data = "range/obj", "0123456789abcdef"
	mustPut(t, s, key, []byte(data))
	tests := []struct {
		name        string
		off, length int64
		want        string
		wantErr     error
	}{
		{name: "whole", off: 0, length: -1, want: data},
		{name: "whole exact", off: 0, length: 16, want: data},
		{name: "start", off: 0, length: 4, want: "0123"},
		{name: "middle", off: 5, length: 3, want: "567"},
		{name: "end", off: 12, length: 4, want: "cdef"},
		{name: "tail", off: 12, length: -1, want: "cdef"},
		{name: "last byte", off: 15, length: 1, want: "f"},
		{name: "past end", off: 12, length: 10, want: "cdef"},
		{name: "max length", off: 0, length: math.MaxInt64, want: data},
		{name: "max length from middle", off: 1, length: math.MaxInt64, want: data[1:]},
		{name: "zero length", off: 3, length: 0, want: ""},
		{name: "off at size", off: 16, length: -1, want: ""},
		{name: "off at size with length", off: 16, length: 5, want: ""},
		{name: "off past size", off: 17, length: -1, wantErr: objstore.ErrInvalidRange},
		{name: "off far past size", off: 1000, length: 1, wantErr: objstore.ErrInvalidRange},
		{name: "off past size zero length", off: 17, length: 0, wantErr: objstore.ErrInvalidRange},
		{name: "negative off", off: -1, length: 1, wantErr: objstore.ErrInvalidRange},
		{name: "length below -1", off: 0, length: -2, wantErr: objstore.ErrInvalidRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Get(t.Context(), key, tc.off, tc.length)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get(%d, %d) = %q, %v; want %v", tc.off, tc.length, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%d, %d): %v", tc.off, tc.length, err)
			}
			if string(got) != tc.want {
				t.Fatalf("Get(%d, %d) = %q, want %q", tc.off, tc.length, got, tc.want)
			}
		})
	}
}

func testGetRangeEmptyObject(t *testing.T, s objstore.Store) {
	mustPut(t, s, "zero", nil)
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {0, 10}} {
		got, err := s.Get(t.Context(), "zero", r[0], r[1])
		if err != nil || len(got) != 0 {
			t.Errorf("Get(zero, %d, %d) = %q, %v; want empty", r[0], r[1], got, err)
		}
	}
	if _, err := s.Get(t.Context(), "zero", 1, -1); !errors.Is(err, objstore.ErrInvalidRange) {
		t.Errorf("Get(zero, 1, -1) error = %v, want ErrInvalidRange", err)
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	mustPut(t, s, "k", bytes.Repeat([]byte("old"), 1000))
	mustPut(t, s, "k", []byte("new"))
	if got := mustGet(t, s, "k", 0, -1); string(got) != "new" {
		t.Fatalf("after overwrite Get = %q, want %q", truncate(got), "new")
	}
	infos := collect(t, s, "")
	if len(infos) != 1 || infos[0].Key != "k" || infos[0].Size != 3 {
		t.Fatalf("after overwrite List = %+v, want k of 3 bytes", infos)
	}
}

func testGetMissing(t *testing.T, s objstore.Store) {
	mustPut(t, s, "dir/obj", []byte("x"))
	for _, key := range []string{"missing", "dir", "dir/obj/below", "dir/other"} {
		if got, err := s.Get(t.Context(), key, 0, -1); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
		}
		if _, err := s.Get(t.Context(), key, 5, 10); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(%q, 5, 10) error = %v, want ErrNotFound", key, err)
		}
	}
	// Argument errors come before the lookup.
	if _, err := s.Get(t.Context(), "missing", -1, 1); !errors.Is(err, objstore.ErrInvalidRange) {
		t.Errorf("Get(missing, -1, 1) error = %v, want ErrInvalidRange", err)
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	mustPut(t, s, "d/x", []byte("x"))
	mustPut(t, s, "d/y", []byte("y"))
	mustPut(t, s, "deep/a/b/c", []byte("c"))
	for _, key := range []string{"d/x", "d/x", "never", "deep/a/b/c", "d", "deep/a"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
	}
	if _, err := s.Get(ctx, "d/x", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if got := keys(collect(t, s, "")); !slices.Equal(got, []string{"d/y"}) {
		t.Fatalf("List after deletes = %q, want [d/y]", got)
	}
	// A key whose directory was pruned can be written again.
	mustPut(t, s, "deep/a/b/c", []byte("again"))
	if got := mustGet(t, s, "deep/a/b/c", 0, -1); string(got) != "again" {
		t.Fatalf("Get after re-Put = %q", got)
	}
}

// testDeleteMany deletes more keys than one S3 request takes, with a
// missing key and an invalid one among them: each key gets its own
// outcome, in order, and only the keys named are gone.
func testDeleteMany(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	const n = 1205 // two S3 requests
	var del []string
	for i := range n {
		del = append(del, fmt.Sprintf("dm/%05d", i))
	}
	putAll(t, s, append(slices.Clone(del), "dm/kept"))
	del = append(del[:600], append([]string{"dm/never", "../bad"}, del[600:]...)...)
	errs := s.DeleteMany(ctx, del)
	if len(errs) != len(del) {
		t.Fatalf("DeleteMany returned %d errors for %d keys", len(errs), len(del))
	}
	for i, err := range errs {
		if want := del[i] == "../bad"; (err != nil) != want || (want && !errors.Is(err, objstore.ErrInvalidKey)) {
			t.Fatalf("DeleteMany: key %q: %v", del[i], err)
		}
	}
	if got := keys(collect(t, s, "dm/")); !slices.Equal(got, []string{"dm/kept"}) {
		t.Fatalf("List after DeleteMany = %d keys (%.5q), want [dm/kept]", len(got), got)
	}
	if errs := s.DeleteMany(ctx, nil); len(errs) != 0 {
		t.Fatalf("DeleteMany of no keys = %v", errs)
	}
}

func testList(t *testing.T, s objstore.Store) {
	start := time.Now().Add(-time.Hour) // generous: the server's clock may differ
	// Byte order: '-' < '.' < '/' < '0', so a store that walks directories
	// naively lists "a/..." before "a-" and "a.b".
	all := []string{"a-", "a.b", "a/1", "a/10", "a/2", "a/b/c", "ab", "b"}
	for i, k := range slices.Backward(all) {
		mustPut(t, s, k, bytes.Repeat([]byte{'x'}, i+1))
	}
	size := make(map[string]int64)
	for i, k := range slices.Backward(all) {
		size[k] = int64(i + 1)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a", []string{"a-", "a.b", "a/1", "a/10", "a/2", "a/b/c", "ab"}},
		{"a/", []string{"a/1", "a/10", "a/2", "a/b/c"}},
		{"a/1", []string{"a/1", "a/10"}},
		{"a/b", []string{"a/b/c"}},
		{"a/b/", []string{"a/b/c"}},
		{"a/b/c", []string{"a/b/c"}},
		{"b", []string{"b"}},
		{"c", nil},
		{"a/z/", nil},
	}
	for _, tc := range tests {
		infos := collect(t, s, tc.prefix)
		if got := keys(infos); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		for _, in := range infos {
			if in.Size != size[in.Key] {
				t.Errorf("List(%q): %s has size %d, want %d", tc.prefix, in.Key, in.Size, size[in.Key])
			}
			if in.LastModified.Before(start) || in.LastModified.After(time.Now().Add(time.Hour)) {
				t.Errorf("List(%q): %s has LastModified %v, want about now", tc.prefix, in.Key, in.LastModified)
			}
		}
	}
}

func testListEmpty(t *testing.T, s objstore.Store) {
	for _, prefix := range []string{"", "a", "a/"} {
		if got := collect(t, s, prefix); len(got) != 0 {
			t.Errorf("List(%q) on an empty store = %+v", prefix, got)
		}
	}
}

// pagingKeys is above S3's 1,000 keys per ListObjectsV2 page.
const pagingKeys = 1100

func testListPaging(t *testing.T, s objstore.Store) {
	want := make([]string, pagingKeys)
	for i := range want {
		want[i] = fmt.Sprintf("page/%05d", i)
	}
	putAll(t, s, append(slices.Clone(want), "other/1", "pagf"))
	if got := keys(collect(t, s, "page/")); !slices.Equal(got, want) {
		t.Fatalf("List(page/) returned %d keys, want %d in order; first differences: %s",
			len(got), len(want), firstDiff(got, want))
	}
	if got := collect(t, s, ""); len(got) != pagingKeys+2 || got[0].Key != "other/1" || got[len(got)-1].Key != "pagf" {
		t.Fatalf("List(\"\") returned %d keys, want %d from other/1 to pagf", len(got), pagingKeys+2)
	}
}

func testListStopEarly(t *testing.T, s objstore.Store) {
	var all []string
	for i := range 30 {
		all = append(all, fmt.Sprintf("k/%02d", i))
	}
	putAll(t, s, all)
	var got []string
	for info, err := range s.List(t.Context(), "k/") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, info.Key)
		if len(got) == 5 {
			break
		}
	}
	if !slices.Equal(got, all[:5]) {
		t.Fatalf("first five of List = %q, want %q", got, all[:5])
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	bad := []string{
		"",
		"/abs",
		"trailing/",
		"a//b",
		".",
		"..",
		"a/../b",
		"../escape",
		"a/./b",
		"nul\x00byte",
		"new\nline",
		"del\x7f",
		"bad\xffutf8",
		strings.Repeat("k", objstore.MaxKeyLen+1),
		strings.Repeat("s", objstore.MaxSegmentLen+1),
		objstore.ReservedPrefix + "x",
		"dir/" + objstore.ReservedPrefix + "x",
	}
	for _, key := range bad {
		if err := s.Put(ctx, key, []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", truncate([]byte(key)), err)
		}
		if _, err := s.Get(ctx, key, 0, -1); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", truncate([]byte(key)), err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", truncate([]byte(key)), err)
		}
	}
	for _, prefix := range []string{"/", "../", "a//", "a/../", "nul\x00"} {
		var err error
		for _, err = range s.List(ctx, prefix) {
			break
		}
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("List(%q) error = %v, want ErrInvalidKey", prefix, err)
		}
	}
	if got := collect(t, s, ""); len(got) != 0 {
		t.Errorf("rejected keys left objects behind: %+v", got)
	}
}

func testLongestKey(t *testing.T, s objstore.Store) {
	// Full segments joined by '/', and a last one that fills up the rest.
	seg := strings.Repeat("s", objstore.MaxSegmentLen)
	key := ""
	for len(key)+len(seg)+1 < objstore.MaxKeyLen {
		key += seg + "/"
	}
	key += strings.Repeat("z", objstore.MaxKeyLen-len(key))
	if len(key) != objstore.MaxKeyLen {
		t.Fatalf("test key is %d bytes", len(key))
	}
	mustPut(t, s, key, []byte("long"))
	if got := mustGet(t, s, key, 0, -1); string(got) != "long" {
		t.Fatalf("Get = %q", got)
	}
	if got := keys(collect(t, s, seg+"/")); !slices.Equal(got, []string{key}) {
		t.Fatalf("List = %d keys, want the long key", len(got))
	}
}

func testContextCanceled(t *testing.T, s objstore.Store) {
	mustPut(t, s, "c", []byte("data"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "c2", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put error = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "c", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Get error = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "c"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete error = %v, want context.Canceled", err)
	}
	var err error
	for _, err = range s.List(ctx, "") {
		break
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List error = %v, want context.Canceled", err)
	}
	// Nothing happened.
	if got := keys(collect(t, s, "")); !slices.Equal(got, []string{"c"}) {
		t.Errorf("after canceled calls List = %q, want [c]", got)
	}
}

func testConcurrent(t *testing.T, s objstore.Store) {
	const workers, perWorker = 16, 16
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("conc/w%02d/k%02d", w, i)
				data := []byte(key + strings.Repeat("-", w*i))
				if err := s.Put(ctx, key, data); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				got, err := s.Get(ctx, key, 0, -1)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("Get(%q) = %q, %v; want %q", key, got, err, data)
					return
				}
				// Read a neighbour's key too; it may not be written yet.
				other := fmt.Sprintf("conc/w%02d/k%02d", (w+1)%workers, i)
				if _, err := s.Get(ctx, other, 0, 4); err != nil && !errors.Is(err, objstore.ErrNotFound) {
					t.Errorf("Get(%q): %v", other, err)
				}
			}
		})
	}
	wg.Wait()
	if got := collect(t, s, "conc/"); len(got) != workers*perWorker {
		t.Fatalf("List = %d keys, want %d", len(got), workers*perWorker)
	}
}

// testAtomicOverwrite races writers that replace one key against readers of
// it. Writer w writes len(w) bytes that all equal byte(w), so a reader that
// saw a torn or partial object would notice.
func testAtomicOverwrite(t *testing.T, s objstore.Store) {
	const writers, rounds, readers = 4, 8, 4
	payload := func(w int) []byte { return bytes.Repeat([]byte{byte(w)}, 1000+w*3331) }
	ctx := t.Context()
	mustPut(t, s, "hot", payload(0))
	done := make(chan struct{})
	var wg, rg sync.WaitGroup
	for w := 1; w <= writers; w++ {
		wg.Go(func() {
			for range rounds {
				if err := s.Put(ctx, "hot", payload(w)); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
		})
	}
	for range readers {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Get(ctx, "hot", 0, -1)
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				if len(got) == 0 || !bytes.Equal(got, payload(int(got[0]))) {
					t.Errorf("Get returned a torn object of %d bytes", len(got))
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
}

func testLargeObject(t *testing.T, s objstore.Store) {
	const size = 8 << 20
	data := randBytes(2, size)
	mustPut(t, s, "large/obj", data)
	if got := mustGet(t, s, "large/obj", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("whole Get returned %d bytes that differ from the %d written", len(got), size)
	}
	for _, r := range [][2]int64{
		{0, 1 << 20},
		{1<<20 - 7, 13},
		{4<<20 + 3, 2 << 20},
		{size - 100, -1},
		{size - 100, 1000},
		{size - 1, 1},
		{size, -1},
	} {
		off, length := r[0], r[1]
		end := int64(size)
		if length >= 0 {
			end = min(end, off+length)
		}
		if got := mustGet(t, s, "large/obj", off, length); !bytes.Equal(got, data[off:end]) {
			t.Errorf("Get(%d, %d) returned %d bytes, want %d matching bytes", off, length, len(got), end-off)
		}
	}
	infos := collect(t, s, "large/")
	if len(infos) != 1 || infos[0].Size != size {
		t.Fatalf("List = %+v, want one object of %d bytes", infos, size)
	}
}

func testObject(t *testing.T, s objstore.Store) {
	mustPut(t, s, "obj", []byte("0123456789"))
	o := objstore.Object{Store: s, Key: "obj"}
	if got, err := o.ReadRange(t.Context(), 2, 3); err != nil || string(got) != "234" {
		t.Fatalf("ReadRange(2, 3) = %q, %v", got, err)
	}
	missing := objstore.Object{Store: s, Key: "nope"}
	if _, err := missing.ReadRange(t.Context(), 0, 1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("ReadRange of a missing object error = %v, want ErrNotFound", err)
	}
}

// mustPut puts data under key or fails the test.
func mustPut(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// mustGet reads a range or fails the test.
func mustGet(t *testing.T, s objstore.Store, key string, off, length int64) []byte {
	t.Helper()
	b, err := s.Get(t.Context(), key, off, length)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, length, err)
	}
	return b
}

// putAll puts small objects under keys from several goroutines.
func putAll(t *testing.T, s objstore.Store, keys []string) {
	t.Helper()
	const workers = 16
	ch := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range ch {
				if err := s.Put(t.Context(), k, []byte(k)); err != nil {
					t.Errorf("Put(%q): %v", k, err)
				}
			}
		})
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// collect lists prefix or fails the test.
func collect(t *testing.T, s objstore.Store, prefix string) []objstore.ObjectInfo {
	t.Helper()
	var out []objstore.ObjectInfo
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		out = append(out, info)
	}
	return out
}

func keys(infos []objstore.ObjectInfo) []string {
	var out []string
	for _, in := range infos {
		out = append(out, in.Key)
	}
	return out
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// firstDiff describes where two key lists first differ.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d got %q, want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
