// Package testenv lets tests find the tools and services they need. When one is absent
// a test skips locally with a one-line reason, and fails under CI=true, where everything
// must be present.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// InCI reports whether CI=true is set.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test with reason, or fails it under CI=true.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and %s", reason)
	}
	t.Skip(reason)
}

// RepoRoot is the repository's top folder (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Node returns the path of node and the repository's node_modules folder, or skips/fails
// when Node.js or the pinned packages (installed by ./test.sh) are absent.
func Node(t testing.TB) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		SkipOrFail(t, "node not found on PATH")
	}
	modules = filepath.Join(RepoRoot(), "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@micropython", "micropython-webassembly-pyscript")); err != nil {
		SkipOrFail(t, "node_modules missing: run ./test.sh (npm ci) first")
	}
	return node, modules
}

// Service returns addr from the environment variable env (or def) when something listens
// there, and otherwise skips or fails.
func Service(t testing.TB, env, def, what string) string {
	t.Helper()
	addr := os.Getenv(env)
	if addr == "" {
		addr = def
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		SkipOrFail(t, what+" not reachable at "+addr+" (set "+env+")")
		return ""
	}
	c.Close()
	return addr
}

// FreeAddr returns a loopback address with a free TCP port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
