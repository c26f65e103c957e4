// Package cli implements the fieldseal verbs, one file per verb. Each file registers its
// verb in init, so adding a verb touches no other file.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
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

// newFlags makes a flag set whose errors go to env.Stderr and never exit the process.
func newFlags(env *Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("fieldseal "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: fieldseal %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments ("build SRC --key K")
// and returns the positional ones. ok=false means usage was printed: return code.
func parseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
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
	fmt.Fprintf(env.Stderr, "fieldseal %s: %v\n", verb, err)
	return ExitError
}
