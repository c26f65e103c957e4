// Package cli implements the fieldseal verbs, one file per verb. Each file registers its
// verb in init, so adding a verb touches no other file.
package cli

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

func register(v verb) {
	if _, dup := verbs[v.name]; dup {
		panic("cli: verb registered twice: " + v.name)
	}
	verbs[v.name] = v
}

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
		fmt.Fprintf(env.Stderr, "fieldseal: unknown verb %q (run 'fieldseal help' for the list)\n", args[0])
		return ExitError
	}
	return v.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "fieldseal — tamper evidence for field devices that run MicroPython or Linux.")
	fmt.Fprintln(w, "\nUsage: fieldseal VERB [flags]; 'fieldseal VERB -h' for a verb's flags.\n\nVerbs:")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, verbs[n].summary)
	}
}

// synopses holds each flag set's one-line synopsis, for the short usage line that follows
// a usage error.
var synopses sync.Map // *flag.FlagSet → string

// newFlags makes a flag set whose errors go to env.Stderr and never exit the process.
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

// parseFlags parses args allowing flags after positional arguments ("build SRC --key K")
// and returns the positional ones. ok=false means usage was printed: return code.
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

// fail prints a one-line error for the verb and returns ExitError.
func fail(env *Env, verb string, err error) int {
	fmt.Fprintf(env.Stderr, "fieldseal %s: %s\n", verb, scrub(err))
	return ExitError
}

// usageError prints what is wrong with the command line, one line naming the flag or
// argument, then the verb's synopsis (not every flag: the error must stay visible), and
// returns ExitError. Every verb reports a missing or bad flag this way.
func usageError(env *Env, fs *flag.FlagSet, format string, a ...any) int {
	fmt.Fprintf(env.Stderr, "%s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	if syn, ok := synopses.Load(fs); ok {
		fmt.Fprintf(env.Stderr, "Usage: %s %s ('%s -h' lists every flag)\n", fs.Name(), syn, fs.Name())
	}
	return ExitError
}

// requireFlags reports the first of names whose flag is empty, with what the flag is for.
// ok=false means the error was printed: return code.
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

// requireArgs checks the count of positional arguments: exactly len(names). Each name is
// "WHAT: what it is", shown when it is missing.
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
