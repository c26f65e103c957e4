package firmware

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RunOptions configures one power-on of a qemu image.
type RunOptions struct {
	// Dir is qemu's working directory: the board's block devices are host files there
	// (flash.img for the fieldseal board; see Disk). Default: a fresh t.TempDir().
	Dir string
	// ICount runs qemu with -icount shift=0: virtual time advances 1 ns per instruction,
	// so time.ticks_us() on the device counts thousands of instructions, the same on every
	// run whatever the host's load.
	ICount bool
	// HeapBytes, when not 0, is the heap for this power-on (at most the image's HeapBytes;
	// the fieldseal board reads it from the kernel command line).
	HeapBytes int
	// Extra are more qemu arguments.
	Extra []string
}

// Disk makes sure dir/name exists with size bytes (a new file is filled with 0xff, like
// erased flash); an existing file is kept as it is. Block devices of the fieldseal board
// open existing files only.
func Disk(dir, name string, size int) (string, error) {
	p := filepath.Join(dir, name)
	if st, err := os.Stat(p); err == nil {
		if st.Size() != int64(size) {
			return "", fmt.Errorf("%s is %d bytes, want %d", p, st.Size(), size)
		}
		return p, nil
	}
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xff}, size), 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// VM is a running qemu-system-arm with the image's serial port (UART0, the REPL) on pipes.
type VM struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	Dir   string

	mu   sync.Mutex
	cond *sync.Cond
	out  []byte // everything the serial port printed
	mark int    // Expect searches from here
	exit error  // set once qemu has exited
	done bool
}

// StartVM powers the image on. The serial output is collected; use Expect, Exec, Wait.
func StartVM(fw *QEMUFirmware, o RunOptions) (*VM, error) {
	args := []string{"-machine", fw.Machine, "-nographic", "-monitor", "none", "-serial", "stdio",
		"-semihosting-config", "enable=on,target=native", "-kernel", fw.ELF}
	if o.HeapBytes > 0 {
		args = append(args, "-append", fmt.Sprintf("heap=%d", o.HeapBytes))
	}
	if o.ICount {
		args = append(args, "-icount", "shift=0")
	}
	args = append(args, o.Extra...)
	cmd := exec.Command("qemu-system-arm", args...)
	cmd.Dir = o.Dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	vm := &VM{cmd: cmd, stdin: stdin, Dir: o.Dir}
	vm.cond = sync.NewCond(&vm.mu)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting qemu-system-arm: %w", err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stdout.Read(buf)
			vm.mu.Lock()
			vm.out = append(vm.out, buf[:n]...)
			vm.cond.Broadcast()
			vm.mu.Unlock()
			if err != nil {
				break
			}
		}
		werr := cmd.Wait()
		vm.mu.Lock()
		vm.exit, vm.done = werr, true
		vm.cond.Broadcast()
		vm.mu.Unlock()
	}()
	return vm, nil
}

// Start powers fw on for a test; the VM is killed when the test ends.
func Start(t testing.TB, fw *QEMUFirmware, o RunOptions) *VM {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	vm, err := StartVM(fw, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Kill() })
	return vm
}

// ErrExited is returned by Expect when qemu ended before the text appeared.
var ErrExited = errors.New("qemu exited")

// Expect waits until text appears in the serial output after the previous match and returns
// the output up to and including it.
func (vm *VM) Expect(text string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { vm.mu.Lock(); vm.cond.Broadcast(); vm.mu.Unlock() })
	defer timer.Stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for {
		if i := bytes.Index(vm.out[vm.mark:], []byte(text)); i >= 0 {
			s := string(vm.out[vm.mark : vm.mark+i+len(text)])
			vm.mark += i + len(text)
			return s, nil
		}
		if vm.done {
			return string(vm.out[vm.mark:]), fmt.Errorf("%w (%v) before %q", ErrExited, vm.exit, text)
		}
		if time.Now().After(deadline) {
			return string(vm.out[vm.mark:]), fmt.Errorf("no %q within %s", text, timeout)
		}
		vm.cond.Wait()
	}
}

// Output returns everything the serial port printed so far.
func (vm *VM) Output() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.out)
}

// Write sends bytes to the serial port.
func (vm *VM) Write(b []byte) error {
	_, err := vm.stdin.Write(b)
	return err
}

// Send starts code in the raw REPL (entering it first) and returns once the device has
// taken it: what it prints is read with Expect while it runs (a test can cut the power
// mid-way with Kill). Exec is Send and waiting for the end.
func (vm *VM) Send(code string, timeout time.Duration) error {
	if err := vm.Write([]byte("\r\x01")); err != nil {
		return err
	}
	if _, err := vm.Expect("raw REPL; CTRL-B to exit\r\n>", timeout); err != nil {
		return fmt.Errorf("entering the raw REPL: %w", err)
	}
	// The raw REPL reads into a line buffer: send in chunks so the UART never overruns.
	for b := []byte(code); len(b) > 0; {
		n := min(len(b), 256)
		if err := vm.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	if err := vm.Write([]byte("\x04")); err != nil {
		return err
	}
	_, err := vm.Expect("OK", timeout)
	return err
}

// Exec runs code in the raw REPL (entering it first) and returns what it printed; a
// Python exception comes back as an error holding its traceback.
func (vm *VM) Exec(code string, timeout time.Duration) (string, error) {
	if err := vm.Send(code, timeout); err != nil {
		return "", err
	}
	out, err := vm.Expect("\x04", timeout)
	if err != nil {
		return out, err
	}
	perr, err := vm.Expect("\x04>", timeout)
	if err != nil {
		return out, err
	}
	out = strings.TrimSuffix(out, "\x04")
	if perr = strings.TrimSuffix(perr, "\x04>"); perr != "" {
		return out, fmt.Errorf("device: %s", perr)
	}
	return out, nil
}

// Wait waits for qemu to exit (machine.reset() ends it) and returns its error, if any.
func (vm *VM) Wait(timeout time.Duration) error {
	timer := time.AfterFunc(timeout, func() { vm.mu.Lock(); vm.cond.Broadcast(); vm.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for !vm.done {
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu still running after %s", timeout)
		}
		vm.cond.Wait()
	}
	return vm.exit
}

// Exited reports whether qemu has ended.
func (vm *VM) Exited() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.done
}

// Kill cuts the power: qemu is killed wherever the firmware is (host files keep what was
// written before).
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
	}
	vm.Wait(10 * time.Second)
}
