package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/keys"
)

// sealRun runs a verb with captured output (helpers of the keygen/build/verify tests are
// prefixed "seal" to stay clear of other verbs' test helpers in this package).
func sealRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}, args)
	return code, out.String(), errb.String()
}

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vendor.key")
	if code, _, errs := sealRun(t, "keygen", "--out", path); code != ExitOK {
		t.Fatalf("keygen: %d %s", code, errs)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", st, err)
	}
	priv, err := keys.LoadPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.LoadPublic(path + ".pub")
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("public key: %v", err)
	}
	code, _, errs := sealRun(t, "keygen", "--out", path)
	if code != ExitError || !strings.Contains(errs, "--force") {
		t.Fatalf("overwrite without --force: %d %q", code, errs)
	}
	if again, _ := keys.LoadPrivate(path); !again.Equal(priv) {
		t.Fatal("key replaced without --force")
	}
	if code, _, errs := sealRun(t, "keygen", "--out", path, "--force"); code != ExitOK {
		t.Fatalf("--force: %d %s", code, errs)
	}
	if again, _ := keys.LoadPrivate(path); again.Equal(priv) {
		t.Fatal("--force kept the old key")
	}
	if code, _, _ := sealRun(t, "keygen"); code != ExitError {
		t.Fatalf("no --out: %d", code)
	}
}
