package objstore_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/objstore"
)

func TestValidateKey(t *testing.T) {
	valid := []string{
		"a",
		"topics/t1/0/00000000000000000000.seg",
		"with space/and+plus",
		"ünïcode/キー",
		"...",
		"a..b/.c/d.",
		".objstore-tm",
		"x" + objstore.ReservedPrefix,
		strings.Repeat("k", objstore.MaxSegmentLen),
	}
	for _, k := range valid {
		if err := objstore.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	invalid := []string{
		"", "/a", "a/", "a//b", ".", "..", "a/..", "../a", "a/./b",
		"tab\tkey", "nul\x00", "\xc3\x28",
		strings.Repeat("k", objstore.MaxKeyLen+1),
		strings.Repeat("k", objstore.MaxSegmentLen+1),
		objstore.ReservedPrefix, "a/" + objstore.ReservedPrefix + "1",
	}
	for _, k := range invalid {
		err := objstore.ValidateKey(k)
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

// FuzzValidateKey pins that every key ValidateKey accepts names a file
// strictly inside the filesystem store's root, under the same name.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "a/../../b", "./a", "a\\..\\b", "/etc/passwd", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if objstore.ValidateKey(key) != nil {
			return
		}
		const root = "/root/dir"
		p := filepath.Join(root, filepath.FromSlash(key))
		if !strings.HasPrefix(p, root+"/") || filepath.ToSlash(strings.TrimPrefix(p, root+"/")) != key {
			t.Fatalf("valid key %q maps to %q, outside the root or renamed", key, p)
		}
	})
}
