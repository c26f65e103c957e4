package devicecli

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// --version and -v are the version verb; a build with VCS stamps shows the commit, its
// time and whether the tree was dirty; a release shows its module version.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-v"} {
		code, out, errs := runCLI(arg)
		if code != ExitOK || !strings.HasPrefix(out, "fieldseal ") || !strings.Contains(out, fmt.Sprintf("protocol  %d", wire.ProtocolVersion)) || !strings.Contains(out, "go ") {
			t.Errorf("%s: exit %d %q %q", arg, code, out, errs)
		}
	}
	var b bytes.Buffer
	printVersion(&b, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "dd51d22abc"}, {Key: "vcs.time", Value: "2026-12-06T06:00:00Z"}, {Key: "vcs.modified", Value: "true"}}})
	for _, want := range []string{"fieldseal v1.2.3\n", "commit    dd51d22abc (with uncommitted changes)", "committed 2026-12-06T06:00:00Z", "go        go1.26.8"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("version lacks %q:\n%s", want, b.String())
		}
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}, args)
	return code, out.String(), errb.String()
}
