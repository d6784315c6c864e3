package xpstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// RepoRoot returns the root of the expserver-go module, found by walking up
// from the working directory to its go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module expserver-go\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("xpstest: not inside the expserver-go repository")
		}
		dir = parent
	}
}

// StageDir returns the folder of stage n, such as "stages/06-listener",
// relative to the repository root.
func StageDir(root string, n int) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(root, "stages", fmt.Sprintf("%02d-*", n)))
	if len(matches) != 1 {
		return "", fmt.Errorf("xpstest: want one folder stages/%02d-*, found %d", n, len(matches))
	}
	return filepath.Rel(root, matches[0])
}

var (
	buildMu  sync.Mutex
	built    = map[string]string{} // package path → binary
	buildDir string
)

// Build compiles the main package at pkg (relative to the repository root,
// such as "stages/06-listener" or "tools/upstream") as a static binary and
// returns its path. Each package is built once per process.
func Build(pkg string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if buildDir == "" {
		if buildDir, err = os.MkdirTemp("", "xpstest-bin-"); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(buildDir, strings.ReplaceAll(pkg, "/", "_"))
	cmd := exec.Command("go", "build", "-o", bin, "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("xpstest: go build ./%s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin, nil
}

// BuildStage builds stage n and returns the binary's path.
func BuildStage(n int) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := StageDir(root, n)
	if err != nil {
		return "", err
	}
	return Build(filepath.ToSlash(dir))
}
