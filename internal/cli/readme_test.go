package cli

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// The commands of README.md, read from it at test time so that the test follows the
// README, not a copy of it.

// readmeBlocks returns the ```sh blocks of README.md that follow the line containing
// after (up to the next heading of the same or a higher level when section is set).
func readmeBlocks(t *testing.T, after string) [][]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	start := -1
	for i, l := range lines {
		if strings.Contains(l, after) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("README.md has no line with %q", after)
	}
	var blocks [][]string
	var cur []string
	in := false
	for _, l := range lines[start+1:] {
		switch {
		case !in && strings.HasPrefix(l, "## "):
			return blocks
		case !in && l == "```sh":
			in, cur = true, nil
		case in && l == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur = append(cur, l)
		}
	}
	return blocks
}

// shellCommands joins continued lines and splits off comments. A comment line holding a
// fieldseal command (the README shows the agent's that way, to run on the device) is
// returned with commented set.
type shellCommand struct {
	args       []string
	background bool
	commented  bool
	text       string
}

func shellCommands(block []string) []shellCommand {
	var out []shellCommand
	var acc string
	for _, l := range block {
		acc += l
		if strings.HasSuffix(acc, `\`) {
			acc = strings.TrimSuffix(acc, `\`) + " "
			continue
		}
		line := strings.TrimSpace(acc)
		acc = ""
		commented := false
		if strings.HasPrefix(line, "#") {
			line = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			if !strings.HasPrefix(line, "fieldseal ") {
				continue
			}
			commented = true
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		c := shellCommand{commented: commented, text: line}
		if strings.HasSuffix(line, "&") {
			c.background = true
			line = strings.TrimSpace(strings.TrimSuffix(line, "&"))
		}
		if strings.ContainsAny(line, `"'$|;<>`) {
			panic("README command needs a shell: " + line)
		}
		c.args = strings.Fields(line)
		out = append(out, c)
	}
	return out
}

// The set-up commands do what README says: the install line names this module's command,
// `go build` as written builds it, and `go run ./cmd/fieldseal demo` (shortened with
// --meters and --for) ends with every attack detected.
func TestReadmeSetupCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a short demo")
	}
	root := testenv.RepoRoot()
	var cmds []shellCommand
	for _, b := range readmeBlocks(t, "## Set-up") {
		cmds = append(cmds, shellCommands(b)...)
	}
	mod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
	module := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(mod)
	ran := map[string]bool{}
	bin := t.TempDir()
	for _, c := range cmds {
		switch {
		case c.args[0] == "go" && c.args[1] == "install":
			// @latest fetches a published release; what this clone can check is that the
			// line names this module's command.
			pkg, _, _ := strings.Cut(c.args[2], "@")
			if module == nil || pkg != string(module[1])+"/cmd/fieldseal" {
				t.Errorf("README installs %s, but the command is %s/cmd/fieldseal", pkg, module[1])
			}
			ran["install"] = true
		case c.args[0] == "go" && c.args[1] == "build":
			args := append([]string(nil), c.args[1:]...)
			for i := range args {
				if args[i] == "-o" && i+1 < len(args) {
					args[i+1] = filepath.Join(bin, args[i+1]) // not into the clone
				}
			}
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c.text, err, out)
			}
			out, err := exec.Command(filepath.Join(bin, "fieldseal"), "version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "protocol") || !strings.Contains(string(out), "go1.") {
				t.Fatalf("the built binary's version: %v\n%s", err, out)
			}
			ran["build"] = true
		case c.args[0] == "go" && c.args[1] == "run":
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", append(c.args[1:], "--meters", "60", "--for", "6s")...)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "verdict: every attack detected, no false alarms") {
				t.Fatalf("%s --meters 60 --for 6s: %v\n%s", c.text, err, out)
			}
			ran["demo"] = true
		case c.args[0] == "./test.sh":
			ran["tests"] = true // this test is one of them
		default:
			t.Errorf("README set-up command this test does not know: %s", c.text)
		}
	}
	for _, want := range []string{"install", "build", "demo", "tests"} {
		if !ran[want] {
			t.Errorf("README's set-up has no %s command", want)
		}
	}
}

// The vendor-to-fleet flow, run as README.md writes it with a fieldseal installed outside
// the repository, on a PATH holding only it, node and npm (so sealing goes the documented
// way: the WebAssembly mpy-cross, installed into the cache on first use), in a folder
// outside the clone. Only the server's addresses change (free ports: 1883 may be taken
// here, as README explains) and the agent runs --once.
func TestReadmeVendorToFleetFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and installs the WebAssembly mpy-cross")
	}
	node, _ := testenv.Node(t)
	npm, err := exec.LookPath("npm")
	if err != nil {
		testenv.SkipOrFail(t, "npm not found")
	}
	root := testenv.RepoRoot()
	base := t.TempDir()
	bin, work, home := filepath.Join(base, "bin"), filepath.Join(base, "work"), filepath.Join(base, "home")
	for _, d := range []string{bin, work, home} {
		os.MkdirAll(d, 0o755)
	}
	install := exec.Command("go", "install", "./cmd/fieldseal")
	install.Dir = root
	install.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	os.Symlink(node, filepath.Join(bin, "node"))
	if real, err := filepath.EvalSymlinks(npm); err == nil {
		npm = real
	}
	os.Symlink(npm, filepath.Join(bin, "npm"))
	if err := os.CopyFS(filepath.Join(work, "examples", "watermeter"), os.DirFS(filepath.Join(root, "examples", "watermeter"))); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin, "HOME=" + home, "LANG=C"}
	if c, err := os.UserHomeDir(); err == nil {
		env = append(env, "npm_config_cache="+filepath.Join(c, ".npm")) // reuse the machine's npm download cache
	}
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	blocks := readmeBlocks(t, "A typical vendor-to-fleet flow")
	if len(blocks) == 0 {
		t.Fatal("README has no vendor-to-fleet block")
	}
	cmds := shellCommands(blocks[0])
	want := map[string]string{ // verb → what its output must say
		"keygen": "wrote vendor.key", "build": "sealed watermeter", "server": "fieldseal server running",
		"manifest": "registered watermeter", "provision": "provisioned meter-0001", "agent": "report acknowledged",
	}
	run := func(c shellCommand, args []string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "fieldseal"), args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.text, err, out)
		}
		return string(out)
	}
	for _, c := range cmds {
		if c.args[0] != "fieldseal" {
			t.Fatalf("README flow command is not a fieldseal one: %s", c.text)
		}
		args := c.args[1:]
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "http://127.0.0.1:8080", "http://"+httpAddr)
		}
		verb := args[0]
		var out string
		switch {
		case c.background:
			if verb != "server" {
				t.Fatalf("README backgrounds %s", c.text)
			}
			out = startReadmeServer(t, bin, work, env, append(args, "--http", httpAddr, "--mqtt", mqttAddr))
		case c.commented && verb == "agent":
			out = run(c, append(args, "--once", "--data", filepath.Join(work, "agent-data")))
		case c.commented:
			continue
		default:
			out = run(c, args)
		}
		t.Logf("$ %s\n%s", c.text, out)
		if w, ok := want[verb]; ok && !strings.Contains(out, w) { // any other verb: exit 0 is enough
			t.Errorf("%s: output lacks %q", c.text, w)
		}
		delete(want, verb)
		if verb == "build" && !strings.Contains(out, "installing the WebAssembly mpy-cross") {
			t.Errorf("the installed binary did not install the WebAssembly mpy-cross on first use:\n%s", out)
		}
		if verb == "manifest" { // a re-run deploy script
			if again := run(c, args); !strings.Contains(again, "already registered") {
				t.Errorf("the same manifest pushed again: %s", again)
			}
		}
	}
	for verb := range want {
		t.Errorf("README's flow has no %s command", verb)
	}
}

// startReadmeServer starts `fieldseal server` in the background, as `&` does, waits for
// its start lines and stops it (SIGINT, then its own drain) when the test ends.
func startReadmeServer(t *testing.T, bin, work string, env, args []string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "fieldseal"), args...)
	cmd.Dir, cmd.Env = work, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server exit: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("server did not stop on SIGINT")
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("server stopped: %s\n%s", out.String(), stderr.String())
			}
			out.WriteString(l + "\n")
			if strings.HasPrefix(strings.TrimSpace(l), "MQTT") { // the last start line
				go func() {
					for range lines {
					}
				}()
				return out.String()
			}
		case <-deadline:
			t.Fatalf("server not up after 30 s: %s\n%s", out.String(), stderr.String())
		}
	}
}
