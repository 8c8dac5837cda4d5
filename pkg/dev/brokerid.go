package dev

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// brokerIDFile holds the broker id of a data dir, so that a restarted
// `strata dev` is the same broker: its partitions, drain state and
// metrics keep one name.
const brokerIDFile = "broker-id"

// brokerID returns the broker id stored in dir, creating it ("dev-" and 6
// random hex characters) on the first start.
func brokerID(dir string) (string, error) {
	path := filepath.Join(dir, brokerIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("dev: broker id: %w", err)
	}
	var r [3]byte
	_, _ = rand.Read(r[:])
	id := "dev-" + hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("dev: broker id: %w", err)
	}
	return id, nil
}
