package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/manifest"
	mpycross "github.com/fieldseal/fieldseal/tools/mpy-cross"
	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "build", summary: "seal an application: compile, check, hash and sign it", run: runBuild})
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runBuild(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "build", "SRC --key KEY --out DIST [flags]")
	keyPath := fs.String("key", "", "vendor private key (from 'fieldseal keygen')")
	out := fs.String("out", "dist", "output folder: app/, manifest.cose, _fieldseal_manifest.py")
	product := fs.String("product", "", "product name (default: the base name of SRC)")
	version := fs.Uint64("version", 0, "manifest sequence number (default: previous build's + 1, or 1)")
	created := fs.Int64("created", -1, "creation time, unix seconds (default: $SOURCE_DATE_EPOCH, else the newest source file's mtime)")
	policy := fs.String("policy", "", "policy overrides k=v,...: on-mismatch=report|refuse|erase, on-cover-open=..., check-interval=S, report-interval=S, extra-files=flag|ignore")
	var mutable, mpyArgs listFlag
	fs.Var(&mutable, "mutable", "path prefix excluded from checks, e.g. data/ (repeatable)")
	mpyCross := fs.String("mpy-cross", "", "mpy-cross to use: a native binary, or a .mjs wrapper run by node (default: mpy-cross on PATH, else the bundled WebAssembly wrapper)")
	fs.Var(&mpyArgs, "mpy-cross-arg", "extra mpy-cross option for every file, e.g. -march=armv7emsp (repeatable)")
	allowNative := fs.Bool("allow-native", false, "accept .mpy files with native machine code (unchecked code on the device)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos, "SRC: the application folder to seal"); !ok {
		return code
	}
	if code, ok := requireFlags(env, fs, "key", "out"); !ok {
		return code
	}
	src := pos[0]
	if err := checkBuildFolders(src, *out); err != nil {
		return fail(env, "build", err)
	}
	priv, err := keys.LoadPrivate(*keyPath)
	if err != nil {
		return fail(env, "build", err)
	}
	pol, err := parsePolicy(*policy)
	if err != nil {
		return fail(env, "build", err)
	}
	var createdAt uint64
	switch {
	case *created >= 0:
		createdAt = uint64(*created)
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		v, err := strconv.ParseUint(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
		if err != nil {
			return fail(env, "build", fmt.Errorf("SOURCE_DATE_EPOCH: %w", err))
		}
		createdAt = v
	}
	opts := manifest.BuildOptions{
		Src: src, Out: *out, Key: priv, Product: *product, Version: *version, Created: createdAt,
		Policy: pol, Mutable: mutable, AllowNative: *allowNative,
	}
	if hasPy(src) {
		c, err := mpycross.FindOrInstall(ctx, *mpyCross, mpyArgs, env.Stderr)
		if err != nil {
			return fail(env, "build", err)
		}
		opts.Compiler = c
		fmt.Fprintf(env.Stderr, "compiler: %s\n", c)
	}
	bar := newProgress(env, "build")
	opts.Progress = func(stage string, done, total int) { bar.set(stage, int64(done), int64(total), "files") }
	start := time.Now()
	res, err := manifest.Build(ctx, opts)
	bar.finish()
	if err != nil {
		return fail(env, "build", err)
	}
	m := res.Manifest
	if res.PrevVersion > 0 && m.Version <= res.PrevVersion {
		fmt.Fprintf(env.Stderr, "warning: version %d is not higher than the previous build's %d: devices running that one will refuse this manifest\n", m.Version, res.PrevVersion)
	}
	fmt.Fprintf(env.Stdout, "sealed %s version %d (created %s)\n", m.Product, m.Version, time.Unix(int64(m.Created), 0).UTC().Format(time.RFC3339))
	fmt.Fprintf(env.Stdout, "  files     %d sealed (%d compiled from .py)", len(m.Files), res.Compiled)
	if res.MutableFiles > 0 {
		fmt.Fprintf(env.Stdout, ", %d mutable not sealed", res.MutableFiles)
	}
	mpy := "none (no .mpy files)"
	if m.Mpy.Arch != "" {
		mpy = fmt.Sprintf("v%d.%d %s, %d-bit small ints", m.Mpy.Major, m.Mpy.Minor, m.Mpy.Arch, m.Mpy.SmallIntBits)
	}
	fmt.Fprintf(env.Stdout, "\n  bytes     %d\n  mpy       %s\n  root      %x\n  key id    %x\n",
		res.Bytes, mpy, m.Root, wire.KeyID(priv.Public().(ed25519.PublicKey)))
	fmt.Fprintf(env.Stdout, "  wrote     %s, %s, %s in %s\n",
		filepath.Join(*out, manifest.AppDir)+string(filepath.Separator), filepath.Join(*out, manifest.ManifestFile), filepath.Join(*out, manifest.FrozenFile), time.Since(start).Round(time.Millisecond))
	return ExitOK
}

// checkBuildFolders refuses what would seal nonsense: a source that is not a folder or holds
// no file, and an output folder inside the source (the next build would seal the previous
// one's output) or holding it.
func checkBuildFolders(src, out string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("source folder %s: %w", src, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("source %s is a file: give the folder that holds the application", src)
	}
	absSrc, err1 := filepath.Abs(src)
	absOut, err2 := filepath.Abs(out)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if inside(absOut, absSrc) {
		return fmt.Errorf("--out %s is inside the source folder %s: the next build would seal this one's output; choose a folder outside it", out, src)
	}
	if inside(absSrc, absOut) {
		return fmt.Errorf("--out %s holds the source folder %s: the build replaces --out/%s; choose another output folder", out, src, manifest.AppDir)
	}
	files := 0
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files++
			return filepath.SkipAll
		}
		return nil
	})
	if files == 0 {
		return fmt.Errorf("source folder %s holds no files: nothing to seal (give the folder with the application's .py files)", src)
	}
	return nil
}

// inside says whether path is dir or below it (both absolute and clean).
func inside(path, dir string) bool {
	r, err := filepath.Rel(dir, path)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

func hasPy(src string) bool {
	found := false
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".py") {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// parsePolicy applies k=v,... overrides to wire.DefaultPolicy.
func parsePolicy(s string) (wire.Policy, error) {
	p := wire.DefaultPolicy()
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	action := func(k, v string) (string, error) {
		switch v {
		case wire.ActionReport, wire.ActionRefuse, wire.ActionErase:
			return v, nil
		}
		return "", fmt.Errorf("policy %s=%q: want report, refuse or erase", k, v)
	}
	seconds := func(k, v string) (uint32, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("policy %s=%q: want a number of seconds > 0", k, v)
		}
		return uint32(n), nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return p, fmt.Errorf("policy %q: want key=value", kv)
		}
		var err error
		switch strings.ReplaceAll(k, "_", "-") {
		case "on-mismatch":
			p.OnMismatch, err = action(k, v)
		case "on-cover-open":
			p.OnCoverOpen, err = action(k, v)
		case "check-interval":
			p.CheckInterval, err = seconds(k, v)
		case "report-interval":
			p.ReportInterval, err = seconds(k, v)
		case "extra-files":
			if v != wire.ExtraFlag && v != wire.ExtraIgnore {
				err = fmt.Errorf("policy %s=%q: want flag or ignore", k, v)
			}
			p.ExtraFiles = v
		default:
			err = fmt.Errorf("policy: unknown key %q (on-mismatch, on-cover-open, check-interval, report-interval, extra-files)", k)
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}
