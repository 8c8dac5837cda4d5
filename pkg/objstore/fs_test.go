package objstore_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/objstore/objstoretest"
)

func newFS(t *testing.T) *objstore.FS {
	t.Helper()
	s, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFSConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newFS(t) })
}

// TestFSListSkipsTempFiles pins that a temporary file left by a Put that
// crashed before its rename is neither listed nor readable.
func TestFSListSkipsTempFiles(t *testing.T) {
	s := newFS(t)
	if err := s.Put(t.Context(), "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(s.Dir(), "a", objstore.ReservedPrefix+"123")
	if err := os.WriteFile(tmp, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for info, err := range s.List(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, info.Key)
	}
	if !slices.Equal(got, []string{"a/b"}) {
		t.Fatalf("List = %q, want [a/b]", got)
	}
}

// TestFSDeletePrunesDirs pins that Delete removes the directories it
// emptied, up to but not including the root.
func TestFSDeletePrunesDirs(t *testing.T) {
	s := newFS(t)
	ctx := t.Context()
	for _, k := range []string{"x/y/z/1", "x/keep"} {
		if err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "x/y/z/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "x", "y")); !os.IsNotExist(err) {
		t.Fatalf("x/y still exists (err %v)", err)
	}
	if err := s.Delete(ctx, "x/keep"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("root not empty after deleting everything: %v", ents)
	}
}

// TestFSFileDirConflict pins the one documented difference from S3: a key
// cannot be both an object and a prefix of other objects.
func TestFSFileDirConflict(t *testing.T) {
	s := newFS(t)
	ctx := t.Context()
	if err := s.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	err := s.Put(ctx, "a/b", []byte("y"))
	if err == nil || !strings.Contains(err.Error(), `put "a/b"`) {
		t.Fatalf("Put(a/b) over object a: error = %v, want a put error", err)
	}
}
