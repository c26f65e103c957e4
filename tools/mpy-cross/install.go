package mpycross

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// npmVersion is the version of npmPackage the embedded wrapper runs; npmIntegrity is its
// tarball's hash, so an install into the cache checks what the registry sent.
const (
	npmVersion   = "2.0.0"
	npmIntegrity = "sha512-DJqQgpAyoUR/myQCJFl27WxXfQavVx3nYLMOpEAuxXRcYyDebHLx4fsUOhLV+vK1LfEqeBpzAjMMSh2U4Q+dtA=="
)

// CacheDir is where an installed fieldseal keeps the npm package it installed itself:
// $FIELDSEAL_CACHE, else the user's cache folder (~/.cache/fieldseal on Linux), in a
// folder named after the pinned version.
func CacheDir() (string, error) {
	base := os.Getenv("FIELDSEAL_CACHE")
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache folder for the WebAssembly mpy-cross (%v): set FIELDSEAL_CACHE", err)
		}
		base = filepath.Join(c, "fieldseal")
	}
	return filepath.Join(base, "mpy-cross-v6-"+npmVersion), nil
}

// cachedNodeModules returns the cache's node_modules when it holds the package.
func cachedNodeModules() (string, bool) {
	dir, err := CacheDir()
	if err != nil {
		return "", false
	}
	m := filepath.Join(dir, "node_modules")
	return m, hasPackage(m)
}

func hasPackage(modules string) bool {
	st, err := os.Stat(filepath.Join(modules, filepath.FromSlash(npmPackage), "build", "mpy-cross-v6.wasm"))
	return err == nil && st.Mode().IsRegular()
}

// InstallNodeModules installs the pinned npm package into CacheDir with npm ci (a lock
// file with the tarball's integrity hash, no install scripts) and returns its node_modules.
// notice receives one line saying what happens (it takes a few seconds, once). The
// install goes to a temporary folder renamed into place, so an interrupted one leaves
// nothing half-made for the next run to trust.
func InstallNodeModules(ctx context.Context, notice io.Writer) (string, error) {
	if m, ok := cachedNodeModules(); ok {
		return m, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm not found on PATH (it comes with Node.js)")
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".install-")
	if err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	if notice != nil {
		fmt.Fprintf(notice, "installing the WebAssembly mpy-cross (npm %s@%s) into %s; once, this takes a few seconds\n", npmPackage, npmVersion, dir)
	}
	files := map[string]string{"package.json": packageJSON, "package-lock.json": packageLock}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--omit=dev", "--loglevel=error")
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm ci of %s@%s failed (%v): %s", npmPackage, npmVersion, err, lastLines(out.String(), 4))
	}
	if !hasPackage(filepath.Join(tmp, "node_modules")) {
		return "", fmt.Errorf("npm installed %s@%s without its mpy-cross-v6.wasm", npmPackage, npmVersion)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if m, ok := cachedNodeModules(); ok { // another build installed it meanwhile
			return m, nil
		}
		// A broken earlier install (files removed by hand): replace it.
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("cache folder %s: %v", dir, errors.Unwrap(err))
		}
		if err := os.Rename(tmp, dir); err != nil {
			return "", fmt.Errorf("cache folder %s: %v", dir, errors.Unwrap(err))
		}
	}
	return filepath.Join(dir, "node_modules"), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

var packageJSON = `{
  "name": "fieldseal-mpy-cross",
  "private": true,
  "description": "The WebAssembly mpy-cross that an installed fieldseal runs when no native mpy-cross is on PATH.",
  "dependencies": {
    "` + npmPackage + `": "` + npmVersion + `"
  }
}
`

var packageLock = `{
  "name": "fieldseal-mpy-cross",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "fieldseal-mpy-cross",
      "dependencies": {
        "` + npmPackage + `": "` + npmVersion + `"
      }
    },
    "node_modules/` + npmPackage + `": {
      "version": "` + npmVersion + `",
      "resolved": "https://registry.npmjs.org/` + npmPackage + `/-/mpy-cross-v6-` + npmVersion + `.tgz",
      "integrity": "` + npmIntegrity + `",
      "license": "MIT"
    }
  }
}
`
