// Package cli implements the verbs of the full fieldseal binary, one file per verb, each
// registered in init. The device's verbs (agent, log, version) and the plumbing they all
// share live in internal/devicecli, which cmd/fieldseal-agent builds alone; importing it
// here registers them for `fieldseal` too.
package cli

import (
	"context"
	"flag"

	"github.com/fieldseal/fieldseal/internal/devicecli"
)

// Exit codes shared by every verb.
const (
	ExitOK    = devicecli.ExitOK
	ExitFound = devicecli.ExitFound
	ExitError = devicecli.ExitError
)

// Env is what a verb runs with; tests substitute the streams.
type Env = devicecli.Env

type verb struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) int
}

func register(v verb) { devicecli.Register(v.name, v.summary, v.run) }

// Main runs the fieldseal command line and returns the process exit code.
func Main(args []string) int { return devicecli.Main(args) }

// Run is Main with explicit context and streams, for tests.
func Run(ctx context.Context, env *Env, args []string) int { return devicecli.Run(ctx, env, args) }

func newFlags(env *Env, name, synopsis string) *flag.FlagSet {
	return devicecli.NewFlags(env, name, synopsis)
}

func parseFlags(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	return devicecli.ParseFlags(fs, args)
}

func fail(env *Env, verb string, err error) int { return devicecli.Fail(env, verb, err) }

func readLimited(path string, limit int64) ([]byte, error) { return devicecli.ReadLimited(path, limit) }

func usageError(env *Env, fs *flag.FlagSet, format string, a ...any) int {
	return devicecli.UsageError(env, fs, format, a...)
}

func requireFlags(env *Env, fs *flag.FlagSet, names ...string) (int, bool) {
	return devicecli.RequireFlags(env, fs, names...)
}

func requireArgs(env *Env, fs *flag.FlagSet, pos []string, names ...string) (int, bool) {
	return devicecli.RequireArgs(env, fs, pos, names...)
}
