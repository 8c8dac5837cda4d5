package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// toolsMu serialises builds within one test binary; scripts/tools.sh holds a
// file lock across processes.
var toolsMu sync.Mutex

// ToolsDir returns the directory that holds the cached tool binaries.
func ToolsDir() string {
	if d := os.Getenv("STRATA_TOOLS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "strata", "bin")
}

// Tool returns the path of the named tool ("etcd" or "minio"), building it
// with scripts/tools.sh when it is not cached yet.
func Tool(name string) (string, error) {
	toolsMu.Lock()
	defer toolsMu.Unlock()
	path := filepath.Join(ToolsDir(), name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "tools.sh"), name)
	cmd.Env = append(os.Environ(), "STRATA_TOOLS_DIR="+ToolsDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testenv: building %s: %w\n%s", name, err, out)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("testenv: %s not found after build: %w", name, err)
	}
	return path, nil
}

// ModuleRoot returns the directory that holds the repository's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testenv: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("testenv: not inside the strata module")
	}
	return filepath.Dir(mod), nil
}
