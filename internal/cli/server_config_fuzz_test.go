package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzServerConfig: `fieldseal server --config FILE` reads any file without panicking; what
// is wrong with it is an error naming the file (exit 2), and the server never starts on it.
// The command line gives a --topic-root that is never valid and is checked only after the
// whole file (its durations, [[lorawan]] tables, vendor keys, TLS pairs): a file the loader
// accepts ends there, with that usage error, instead of starting a server.
func FuzzServerConfig(f *testing.F) {
	// The documented file and [[lorawan]] tables, and the files the server tests use.
	if doc, err := os.ReadFile("../../docs/OPERATIONS.md"); err == nil {
		for _, m := range regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(doc, -1) {
			f.Add(m[1])
		}
	}
	for _, s := range []string{
		"data = \"/tmp/d\"\nhttp = \"127.0.0.1:0\"\nmqtt = \"127.0.0.1:0\"\nlog_level = \"warn\"\nsilent_after = 5\n[http_tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
		"silent_aftr = 4\n",
		"receipt_interval = \"soon\"\n",
		"[[lorawan]]\nkind = \"chirpstak\"\nbroker = \"tcp://127.0.0.1:1883\"\napplication = \"a\"\n",
		"[[lorawan]]\nkind = \"tts\"\nbroker = \"tcp://127.0.0.1:1883\"\napplication = \"a\"\n[lorawan.devices]\n\"0102\" = \"wm-1\"\n",
		"[[lorawan]]\nkind = \"chirpstack\"\nbroker = \"embedded\"\nusername = \"chirpstack\"\npassword = \"0123456789abcdef\"\napplication = \"a\"\n",
		"balance_every = \"often\"\n",
		"balance_every = \"-1h\"\n",
		"silent_after = -3\nlorawan = 7\n",
		"vendor_keys = [\"missing.pub\"]\nwebhooks = [1, 2]\n",
	} {
		f.Add([]byte(s))
	}
	// One folder for all inputs: a fresh one for each would slow the fuzzer several times.
	dir := f.TempDir()
	path, data := filepath.Join(dir, "server.toml"), filepath.Join(dir, "data")
	f.Fuzz(func(t *testing.T, conf []byte) {
		if !finiteFiles(conf) {
			return // a TLS path at a device or a pipe would be read forever: the operator's to give
		}
		if err := os.WriteFile(path, conf, 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errOut},
			[]string{"server", "--config", path, "--data", data, "--http", "off", "--mqtt", "off", "--topic-root", "#"})
		msg := errOut.String()
		if code != ExitError || msg == "" {
			t.Fatalf("exit %d, %q", code, msg)
		}
		if !strings.Contains(msg, "--topic-root") && !strings.Contains(msg, path) && !strings.Contains(msg, "TLS") && !strings.Contains(msg, "--log-level") &&
			!strings.Contains(msg, "--vendor-key") && !strings.Contains(msg, "--balance-every") {
			t.Fatalf("the error names neither the file nor the setting: %q", msg)
		}
		if _, err := os.Stat(data); err == nil {
			t.Fatal("the server started: it created its data folder")
		}
	})
}

// finiteFiles reports whether the TLS files conf names (if it parses) are absent or small
// regular files: tls.LoadX509KeyPair reads a file whole.
func finiteFiles(conf []byte) bool {
	var file serverFile
	if _, err := toml.Decode(string(conf), &file); err != nil {
		return true // the loader stops at the same error
	}
	for _, p := range []string{file.HTTPTLS.Cert, file.HTTPTLS.Key, file.MQTTTLS.Cert, file.MQTTTLS.Key} {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil || strings.HasPrefix(abs, "/proc/") || strings.HasPrefix(abs, "/sys/") {
			return false
		}
		st, err := os.Stat(p)
		if err == nil && (!st.Mode().IsRegular() || st.Size() > 1<<20) {
			return false
		}
	}
	return true
}
