// Package devicecli is the command line a device runs: the agent, the offline evidence-log
// check-in (`log verify|show|export`) and `version`, with the plumbing every fieldseal
// verb shares (Env, exit codes, flag parsing, the verb registry). cmd/fieldseal-agent is
// this package alone, so its dependencies stay the trusted base; internal/cli adds the
// fleet's verbs (server, build, provision, demo…) for the full `fieldseal` binary. One
// file per verb; each registers itself in init.
package devicecli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/fieldseal/fieldseal/wire"
)

// Exit codes shared by every verb.
const (
	ExitOK    = 0 // clean
	ExitFound = 1 // tamper or an open finding
	ExitError = 2 // bad usage, unreadable input, bad signature
)

// Env is what a verb runs with; tests substitute the streams.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
}

type verb struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) int
}

var verbs = map[string]verb{}

// Register adds a verb: name, a one-line summary for the usage, and what runs it.
func Register(name, summary string, run func(ctx context.Context, env *Env, args []string) int) {
	register(verb{name: name, summary: summary, run: run})
}

func register(v verb) {
	if _, dup := verbs[v.name]; dup {
		panic("cli: verb registered twice: " + v.name)
	}
	verbs[v.name] = v
}

// Program is the command's name in usage and error messages.
var Program = "fieldseal"

// Main runs the fieldseal command line and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, &Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin}, args)
}

// Run is Main with explicit context and streams, for tests.
func Run(ctx context.Context, env *Env, args []string) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-v") {
		args = []string{"version"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "%s: unknown verb %q (run '%s help' for the list)\n", Program, args[0], Program)
		return ExitError
	}
	return v.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "fieldseal — tamper evidence for field devices that run MicroPython or Linux.")
	fmt.Fprintf(w, "\nUsage: %s VERB [flags]; '%s VERB -h' for a verb's flags.\n\nVerbs:\n", Program, Program)
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, verbs[n].summary)
	}
}

// NewFlags makes a flag set whose errors go to env.Stderr and never exit the process.
func NewFlags(env *Env, name, synopsis string) *flag.FlagSet { return newFlags(env, name, synopsis) }

// synopses holds each flag set's one-line synopsis, for the short usage line that follows
// a usage error.
var synopses sync.Map // *flag.FlagSet → string

func newFlags(env *Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("fieldseal "+name, flag.ContinueOnError)
	synopses.Store(fs, synopsis)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: fieldseal %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses args allowing flags after positional arguments ("build SRC --key K")
// and returns the positional ones. ok=false means usage was printed: return code.
func ParseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	return parseFlags(fs, args)
}

// parseOnce parses args; a bad flag gets one line naming it and the short synopsis (the
// whole flag list would push the error off the screen), -h the full usage.
func parseOnce(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	var msg bytes.Buffer
	fs.SetOutput(&msg)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
	default:
		line, _, _ := strings.Cut(msg.String(), "\n")
		line = strings.Replace(line, "flag provided but not defined", "unknown flag", 1)
		usageError(&Env{Stderr: out}, fs, "%s", line)
	}
	return err
}

func parseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := parseOnce(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ExitOK, false
			}
			return nil, ExitError, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, ExitOK, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// Fail prints a one-line error for the verb and returns ExitError.
func Fail(env *Env, verb string, err error) int { return fail(env, verb, err) }

func fail(env *Env, verb string, err error) int {
	fmt.Fprintf(env.Stderr, "fieldseal %s: %s\n", verb, scrub(err))
	return ExitError
}

// UsageError prints what is wrong with the command line, one line naming the flag or
// argument, then the verb's synopsis (not every flag: the error must stay visible), and
// returns ExitError. Every verb reports a missing or bad flag this way.
func UsageError(env *Env, fs *flag.FlagSet, format string, a ...any) int {
	return usageError(env, fs, format, a...)
}

func usageError(env *Env, fs *flag.FlagSet, format string, a ...any) int {
	fmt.Fprintf(env.Stderr, "%s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	if syn, ok := synopses.Load(fs); ok {
		fmt.Fprintf(env.Stderr, "Usage: %s %s ('%s -h' lists every flag)\n", fs.Name(), syn, fs.Name())
	}
	return ExitError
}

// RequireFlags reports the first of names whose flag is empty, with what the flag is for.
// ok=false means the error was printed: return code.
func RequireFlags(env *Env, fs *flag.FlagSet, names ...string) (code int, ok bool) {
	return requireFlags(env, fs, names...)
}

func requireFlags(env *Env, fs *flag.FlagSet, names ...string) (code int, ok bool) {
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			panic("cli: requireFlags: no flag --" + n)
		}
		if f.Value.String() == "" {
			return usageError(env, fs, "missing --%s (%s)", n, f.Usage), false
		}
	}
	return ExitOK, true
}

// RequireArgs checks the count of positional arguments: exactly len(names). Each name is
// "WHAT: what it is", shown when it is missing.
func RequireArgs(env *Env, fs *flag.FlagSet, pos []string, names ...string) (code int, ok bool) {
	return requireArgs(env, fs, pos, names...)
}

func requireArgs(env *Env, fs *flag.FlagSet, pos []string, names ...string) (code int, ok bool) {
	if len(pos) < len(names) {
		what, desc, _ := strings.Cut(names[len(pos)], ": ")
		return usageError(env, fs, "missing %s (%s)", what, desc), false
	}
	if len(pos) > len(names) {
		return usageError(env, fs, "unexpected argument %q", pos[len(names)]), false
	}
	return ExitOK, true
}

// ReadLimited reads a whole file, refusing one over limit bytes (wire.ErrOversize).
func ReadLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes (%w)", path, limit, wire.ErrOversize)
	}
	return data, nil
}

func readLimited(path string, limit int64) ([]byte, error) { return ReadLimited(path, limit) }
