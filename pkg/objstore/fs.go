package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// FS is a Store on a local directory, for strata dev and fast tests. Each key
// is a file under the directory; the '/'-separated segments of the key are
// subdirectories. Because a name cannot be a file and a directory at once,
// FS cannot hold both "a" and "a/b"; the second Put fails.
//
// Put is atomic and durable: it writes a temporary file (named with
// ReservedPrefix) in the target directory, syncs it, renames it over the key
// and syncs the directory. FS keeps no state in memory, so several FS values,
// even in several processes, may share a directory.
type FS struct {
	// dir is the absolute root directory; it never changes.
	dir string
}

var _ Store = (*FS)(nil)

// maxPutRetries bounds how often Put recreates a directory that a concurrent
// Delete pruned under it.
const maxPutRetries = 16

// NewFS returns a store rooted at dir, creating the directory if needed.
func NewFS(dir string) (*FS, error) {
	if dir == "" {
		return nil, errors.New("objstore: fs: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: fs: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: fs: %w", err)
	}
	return &FS{dir: abs}, nil
}

// Dir returns the store's absolute root directory.
func (s *FS) Dir() string { return s.dir }

func (s *FS) path(key string) string {
	return filepath.Join(s.dir, filepath.FromSlash(key))
}

// Put implements Store.
func (s *FS) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opError("put", key, err)
	}
	if err := s.put(ctx, key, data); err != nil {
		return opError("put", key, err)
	}
	return nil
}

func (s *FS) put(ctx context.Context, key string, data []byte) error {
	path := s.path(key)
	dir := filepath.Dir(path)
	f, err := s.createTemp(dir)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = writeSync(f, body(ctx, data))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// createTemp creates a temporary file in dir, creating dir first. A Delete
// that prunes empty directories may remove dir (or a parent) between the two
// steps; then createTemp tries again.
func (s *FS) createTemp(dir string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		err := s.mkdirs(dir)
		if err == nil {
			var f *os.File
			f, err = os.CreateTemp(dir, ReservedPrefix+"*")
			if err == nil {
				return f, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == maxPutRetries {
			return nil, err
		}
	}
}

// mkdirs creates dir and any missing parents below the root, syncing each
// parent whose entries changed so that the new directories survive a crash.
func (s *FS) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	rel, err := filepath.Rel(s.dir, dir)
	if err != nil {
		return err
	}
	cur := s.dir
	for seg := range strings.SplitSeq(rel, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, seg)
		err := os.Mkdir(cur, 0o755)
		switch {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			// Made by us earlier or by a concurrent Put; a file here makes
			// the next step fail with ENOTDIR.
		default:
			return err
		}
	}
	return nil
}

func writeSync(f *os.File, data io.Reader) error {
	if _, err := io.Copy(f, data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements Store.
func (s *FS) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := checkRange(key, off, length); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opError("get", key, err)
	}
	f, err := os.Open(s.path(key))
	if isNotExist(err) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, opError("get", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, opError("get", key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notFound(key) // a directory: a prefix of other keys
	}
	end, err := rangeEnd(key, off, length, fi.Size())
	if err != nil {
		return nil, err
	}
	buf := make([]byte, end-off)
	// The file is never written in place (Put renames a new one over it),
	// so the open file keeps the size Stat reported.
	if n, err := f.ReadAt(buf, off); n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, opError("get", key, err)
	}
	return buf, nil
}

// DeleteMany implements Store, one Delete after the other.
func (s *FS) DeleteMany(ctx context.Context, keys []string) []error {
	errs := make([]error, len(keys))
	for i, k := range keys {
		errs[i] = s.Delete(ctx, k)
	}
	return errs
}

// Delete implements Store. It also removes the directories that the deletion
// left empty.
func (s *FS) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opError("delete", key, err)
	}
	path := s.path(key)
	fi, err := os.Lstat(path)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return opError("delete", key, err)
	}
	if fi.IsDir() {
		return nil // a prefix of other keys, not an object
	}
	if err := os.Remove(path); err != nil && !isNotExist(err) {
		return opError("delete", key, err)
	}
	s.prune(filepath.Dir(path))
	return nil
}

// prune removes dir and its parents below the root while they are empty.
// Failing to remove one (it is not empty, or a Put just created it) ends the
// walk; an empty directory left behind is harmless.
func (s *FS) prune(dir string) {
	for dir != s.dir && strings.HasPrefix(dir, s.dir) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// List implements Store. It reads one directory at a time, and only the
// directories that can hold keys with the prefix.
func (s *FS) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := validatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		// Keys with the prefix live under the directory named by the part
		// of the prefix up to its last '/', in entries whose names start
		// with the rest.
		i := strings.LastIndexByte(prefix, '/')
		s.walk(ctx, prefix[:i+1], prefix[i+1:], yield)
	}
}

// dirEntry is a directory entry with the name it sorts by in key order:
// directories sort as their name plus '/', the byte that follows in every
// key below them.
type dirEntry struct {
	sortName string
	entry    fs.DirEntry
}

// walk yields, in key order, the objects below the directory that holds keys
// starting with rel ("" or ending in '/'), restricted at this level to names
// starting with namePrefix. It reports false once the caller should stop.
func (s *FS) walk(ctx context.Context, rel, namePrefix string, yield func(ObjectInfo, error) bool) bool {
	if err := ctx.Err(); err != nil {
		yield(ObjectInfo{}, opError("list", rel+namePrefix, err))
		return false
	}
	des, err := os.ReadDir(s.path(rel))
	if isNotExist(err) {
		return true // nothing under this prefix, or it was just pruned
	}
	if err != nil {
		yield(ObjectInfo{}, opError("list", rel+namePrefix, err))
		return false
	}
	ents := make([]dirEntry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, namePrefix) || strings.HasPrefix(name, ReservedPrefix) {
			continue
		}
		switch {
		case de.IsDir():
			ents = append(ents, dirEntry{name + "/", de})
		case de.Type().IsRegular():
			ents = append(ents, dirEntry{name, de})
		}
	}
	slices.SortFunc(ents, func(a, b dirEntry) int { return strings.Compare(a.sortName, b.sortName) })
	for _, e := range ents {
		if e.entry.IsDir() {
			if !s.walk(ctx, rel+e.sortName, "", yield) {
				return false
			}
			continue
		}
		fi, err := e.entry.Info()
		if isNotExist(err) {
			continue // deleted since ReadDir
		}
		if err != nil {
			yield(ObjectInfo{}, opError("list", rel+e.sortName, err))
			return false
		}
		if !yield(ObjectInfo{Key: rel + e.sortName, Size: fi.Size(), LastModified: fi.ModTime()}, nil) {
			return false
		}
	}
	return true
}

// isNotExist reports whether err means that the path does not exist,
// including because a parent is a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
