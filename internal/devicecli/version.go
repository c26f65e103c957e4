package devicecli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "version", summary: "print the version, build information and protocol version (also --version, -v)", run: runVersion})
}

func runVersion(_ context.Context, env *Env, args []string) int {
	fs := newFlags(env, "version", "")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos); !ok {
		return code
	}
	info, _ := debug.ReadBuildInfo()
	printVersion(env.Stdout, info)
	return ExitOK
}

// printVersion writes what a bug report needs: the module version ("(devel)" for a build
// from a checkout), the commit and its time with a dirty mark when the build saw one, the
// Go toolchain and the wire protocol this binary speaks.
func printVersion(w io.Writer, info *debug.BuildInfo) {
	version, goVersion := "(unknown)", runtime.Version()
	settings := map[string]string{}
	if info != nil {
		version = info.Main.Version
		if version == "" {
			version = "(devel)"
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
	}
	fmt.Fprintf(w, "fieldseal %s\n", version)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (with uncommitted changes)"
		}
		fmt.Fprintf(w, "  commit    %s\n", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(w, "  committed %s\n", t)
		}
	}
	fmt.Fprintf(w, "  go        %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "  protocol  %d\n", wire.ProtocolVersion)
}
