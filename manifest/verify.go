package manifest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/fieldseal/fieldseal/wire"
)

// Finding is one path that does not match the manifest. Kind is one of wire.Kind*;
// Detail says why, for people (it is not part of the wire format).
type Finding struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Detail string `json:"detail,omitempty"`
}

// Result is the outcome of VerifyTree.
type Result struct {
	Findings []Finding `json:"findings"` // sorted by path, then kind
	Files    int       `json:"files"`    // files the manifest lists
	Checked  int       `json:"checked"`  // of those, found and hashed
	Bytes    uint64    `json:"bytes"`    // bytes hashed
	Mutable  int       `json:"mutable"`  // files under mutable prefixes, not checked
	Ignored  int       `json:"ignored"`  // extra files not reported (extra-files=ignore)
}

// Clean reports whether nothing was found.
func (r *Result) Clean() bool { return len(r.Findings) == 0 }

// Wire returns the findings as a report carries them.
func (r *Result) Wire() []wire.Finding {
	out := make([]wire.Finding, len(r.Findings))
	for i, f := range r.Findings {
		out[i] = wire.Finding{Path: f.Path, Kind: f.Kind}
	}
	return out
}

// VerifyOptions tune VerifyTree; the zero value is fine.
type VerifyOptions struct {
	Workers int // files hashed at once; default GOMAXPROCS
	// Progress, when set, is called from the hashing goroutines with the running totals
	// of files and bytes done; it must be cheap and safe for concurrent use.
	Progress func(files int, bytes uint64)
}

// ErrRoot is returned when the tree's root cannot be opened at all: that is an error of
// the check, not a finding about the files.
var ErrRoot = errors.New("cannot open the tree to verify")

const hashBuf = 256 << 10

// readFault lets tests make a file unreadable (tests run as root, which chmod cannot stop).
var readFault func(path string) error

// VerifyTree compares the files under root with m (whose signature the caller has
// checked, e.g. with wire.OpenManifest) and returns what differs:
//
//   - missing: a manifest file is absent (also when a folder above it is a symlink, which
//     is never followed);
//   - modified: different size or SHA-256, or the path is a symlink, a folder or a special
//     file; a file larger than the manifest says is reported without reading it all;
//   - unreadable: the file exists but cannot be opened or read;
//   - extra: a file the manifest does not list, unless m.Policy.ExtraFiles is "ignore";
//     symlinks and special files are extra whatever the policy.
//
// Paths under m.Mutable prefixes are skipped. The walk feeds the hashing workers as it
// finds sealed files, and each worker streams through a fixed buffer, so memory stays
// bounded whatever the sizes. Nothing is followed out of root: the walk does not follow
// symlinks, only entries it saw as regular files are opened, and they are opened so that
// no link is followed and nothing outside root is reached (openat2 beneath root on Linux,
// os.Root elsewhere). The returned error is non-nil only when root cannot be read or ctx
// ends.
func VerifyTree(ctx context.Context, root string, m *wire.Manifest, opts VerifyOptions) (*Result, error) {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRoot, err)
	}
	defer rt.Close()
	t, err := openTree(root, rt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRoot, err)
	}
	defer t.close()
	res := &Result{Files: len(m.Files)}
	sealed := make(map[string]int, len(m.Files))
	for i, f := range m.Files {
		if !m.IsMutable(f.Path) {
			sealed[f.Path] = i
		}
	}

	// Hash workers: fed by the walk with the index of each sealed file it finds.
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		mu        sync.Mutex // guards res from the workers
		wg        sync.WaitGroup
		doneFiles atomic.Int64
		doneBytes atomic.Uint64
	)
	jobs := make(chan int, 1024)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, hashBuf)
			for i := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				f := &m.Files[i]
				n, find := checkFile(t, f, buf)
				b := doneBytes.Add(n)
				d := doneFiles.Add(1)
				if opts.Progress != nil {
					opts.Progress(int(d), b)
				}
				mu.Lock()
				if find != nil {
					res.Findings = append(res.Findings, *find)
				} else {
					res.Checked++
				}
				mu.Unlock()
			}
		}()
	}

	// Walk: record what is there, hand regular sealed files to the workers at once.
	seen := map[string]fs.FileMode{}
	var walkFindings []Finding
	werr := walk(ctx, t, ".", func(p string, mode fs.FileMode) {
		seen[p] = mode
		if i, ok := sealed[p]; ok && mode.IsRegular() {
			jobs <- i
		}
	}, &walkFindings)
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, fmt.Errorf("%w: %v", ErrRoot, werr)
	}
	res.Findings = append(res.Findings, walkFindings...)

	// Compare what the walk saw with the manifest.
	for _, f := range m.Files {
		if _, ok := sealed[f.Path]; !ok {
			continue // mutable
		}
		mode, ok := seen[f.Path]
		switch {
		case !ok:
			res.Findings = append(res.Findings, Finding{Path: f.Path, Kind: wire.KindMissing})
		case mode&fs.ModeSymlink != 0:
			res.Findings = append(res.Findings, Finding{Path: f.Path, Kind: wire.KindModified, Detail: "is a symlink (not followed)"})
		case mode.IsDir():
			res.Findings = append(res.Findings, Finding{Path: f.Path, Kind: wire.KindModified, Detail: "is a folder"})
		case !mode.IsRegular():
			res.Findings = append(res.Findings, Finding{Path: f.Path, Kind: wire.KindModified, Detail: "is a special file (" + mode.Type().String() + ")"})
		}
	}
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
	}
	for p, mode := range seen {
		if listed[p] || mode.IsDir() {
			continue
		}
		if m.IsMutable(p) {
			res.Mutable++
			continue
		}
		special := !mode.IsRegular()
		if m.Policy.ExtraFiles == wire.ExtraIgnore && !special {
			res.Ignored++
			continue
		}
		f := Finding{Path: p, Kind: wire.KindExtra}
		if mode&fs.ModeSymlink != 0 {
			f.Detail = "symlink"
		} else if special {
			f.Detail = "special file (" + mode.Type().String() + ")"
		}
		res.Findings = append(res.Findings, f)
	}
	res.Bytes = doneBytes.Load()
	sort.Slice(res.Findings, func(a, b int) bool {
		fa, fb := res.Findings[a], res.Findings[b]
		if fa.Path != fb.Path {
			return fa.Path < fb.Path
		}
		return fa.Kind < fb.Kind
	})
	return res, nil
}

// walk calls visit for every entry under dir, never following a symlink. The root
// folder must be readable; a folder below it that is not becomes an unreadable finding
// (its files will then be missing).
func walk(ctx context.Context, t *tree, dir string, visit func(string, fs.FileMode), findings *[]Finding) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := t.readDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := e.name
		if dir != "." {
			p = dir + "/" + p
		}
		visit(p, e.mode)
		if e.mode.IsDir() {
			if err := walk(ctx, t, p, visit, findings); err != nil {
				if ctx.Err() != nil {
					return err
				}
				*findings = append(*findings, Finding{Path: p, Kind: wire.KindUnreadable, Detail: err.Error()})
			}
		}
	}
	return nil
}

// dirEntry is a name in a folder and its type (fs.ModeDir, fs.ModeSymlink, … or 0 for a
// regular file).
type dirEntry struct {
	name string
	mode fs.FileMode
}

// checkFile hashes one file and returns the bytes read and a finding, if any.
func checkFile(t *tree, f *wire.File, buf []byte) (uint64, *Finding) {
	fh, err := t.open(f.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, &Finding{Path: f.Path, Kind: wire.KindMissing}
		}
		if isSymlinkErr(err) {
			return 0, &Finding{Path: f.Path, Kind: wire.KindModified, Detail: "is a symlink (not followed)"}
		}
		return 0, &Finding{Path: f.Path, Kind: wire.KindUnreadable, Detail: err.Error()}
	}
	defer fh.Close()
	if readFault != nil {
		if err := readFault(f.Path); err != nil {
			return 0, &Finding{Path: f.Path, Kind: wire.KindUnreadable, Detail: err.Error()}
		}
	}
	size, regular, err := fh.stat()
	if err != nil {
		return 0, &Finding{Path: f.Path, Kind: wire.KindUnreadable, Detail: err.Error()}
	}
	if !regular {
		return 0, &Finding{Path: f.Path, Kind: wire.KindModified, Detail: "not a regular file"}
	}
	if uint64(size) != f.Size {
		return 0, &Finding{Path: f.Path, Kind: wire.KindModified, Detail: fmt.Sprintf("size %d, sealed %d", size, f.Size)}
	}
	h := sha256.New()
	n, err := hashExactly(h, fh, f.Size, buf)
	if err != nil {
		return n, &Finding{Path: f.Path, Kind: wire.KindUnreadable, Detail: err.Error()}
	}
	if n != f.Size {
		return n, &Finding{Path: f.Path, Kind: wire.KindModified, Detail: fmt.Sprintf("changed size while read: %d bytes or more, sealed %d", n, f.Size)}
	}
	if string(h.Sum(nil)) != string(f.SHA256) {
		return n, &Finding{Path: f.Path, Kind: wire.KindModified, Detail: "content differs (SHA-256)"}
	}
	return n, nil
}

// hashExactly feeds r to h until size bytes are read, and reports more than size if the
// file has grown. Each read asks for one byte more than still expected, so a file that
// grew shows it without an extra read to reach end-of-file: a small file costs one read.
// It relies on regular-file semantics (a short read means end-of-file at that moment);
// a file growing after that read is a race no verifier can close anyway.
func hashExactly(h io.Writer, r io.Reader, size uint64, buf []byte) (uint64, error) {
	var n uint64
	for {
		want := min(uint64(len(buf)), size-n+1)
		k, err := r.Read(buf[:want])
		if k > 0 {
			if n+uint64(k) > size {
				return n + uint64(k), nil // grew: the caller reports it, no need to hash
			}
			h.Write(buf[:k])
			n += uint64(k)
		}
		if err == io.EOF || (k == 0 && err == nil) {
			return n, nil // shrank, or exactly size after a read that asked for more
		}
		if err != nil {
			return n, err
		}
		if n == size && uint64(k) < want {
			return n, nil // the read asked for size+1 and got size: at the end
		}
	}
}

// IsRootError reports whether err from VerifyTree means the tree could not be read.
func IsRootError(err error) bool { return errors.Is(err, ErrRoot) }

// rootReadDir lists dir through rt (the portable walk).
func rootReadDir(rt *os.Root, dir string) ([]dirEntry, error) {
	d, err := rt.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]dirEntry, len(ents))
	for i, e := range ents {
		out[i] = dirEntry{name: e.Name(), mode: e.Type()}
	}
	return out, nil
}
