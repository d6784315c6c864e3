package harness

import (
	"bytes"
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
	return RootFrom(dir)
}

// RootFrom returns the root of the expserver-go module that holds dir: the
// nearest folder at or above it whose go.mod declares that module.
func RootFrom(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module expserver-go\n")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("harness: %s is not inside the expserver-go repository", dir)
		}
		d = parent
	}
}

// StageDir returns the folder of stage n, such as "stages/06-listener",
// relative to the repository root.
func StageDir(root string, n int) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(root, "stages", fmt.Sprintf("%02d-*", n)))
	if len(matches) != 1 {
		return "", fmt.Errorf("harness: want one folder stages/%02d-*, found %d", n, len(matches))
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
		if buildDir, err = os.MkdirTemp("", "xps-harness-bin-"); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(buildDir, strings.ReplaceAll(pkg, "/", "_"))
	cmd := exec.Command("go", "build", "-o", bin, "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: go build ./%s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin, nil
}

// RemoveBuilds deletes the folder of the binaries Build made in this
// process; a later Build starts a new one. A test package calls it from
// TestMain and a tool before it exits, or every run leaves its binaries in
// the temp folder.
func RemoveBuilds() error {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		return nil
	}
	err := os.RemoveAll(buildDir)
	buildDir = ""
	clear(built)
	return err
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
