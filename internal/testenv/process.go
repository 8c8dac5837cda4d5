package testenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strata-mq/strata/internal/backoff"
)

// DefaultReadyTimeout bounds how long a process may take to become ready.
const DefaultReadyTimeout = 90 * time.Second

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no other caller in this process has been given.
//
// The port lies below the kernel's ephemeral range, never in it. A test
// that kills a process and restarts it on the same address needs the port
// to stay free in between; a port from the ephemeral range (what
// listening on ":0" returns) can meanwhile become the source port of any
// outgoing connection, or the port of any ":0" listener, on the machine,
// and the restart then fails with "address already in use".
func FreePort() (int, error) {
	low, high := freePortRange()
	ports.mu.Lock()
	defer ports.mu.Unlock()
	for range 1000 {
		p := low + rand.IntN(high-low)
		if ports.given[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // taken by someone else
		}
		l.Close()
		ports.given[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("testenv: free port: none free in [%d, %d)", low, high)
}

// ports remembers what FreePort handed out, so that two callers in one
// test process never get the same port.
var ports = struct {
	mu    sync.Mutex // guards given
	given map[int]bool
}{given: map[int]bool{}}

// freePortRange is where FreePort looks: from 10000 (above the fixed ports
// the project's defaults use) to the start of the kernel's ephemeral range.
func freePortRange() (low, high int) {
	low, high = 10000, 32768 // Linux's default ephemeral range starts at 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > low+1000 {
				high = n
			}
		}
	}
	return low, high
}

// FreeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago.
func FreeAddr() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// ProcessSpec describes one external process.
type ProcessSpec struct {
	// Name labels the process in errors and names its log file.
	Name string
	// Path is the binary to run.
	Path string
	// Args are the command-line arguments.
	Args []string
	// Env is added to the test's own environment.
	Env []string
	// Dir is the working directory; LogDir receives <Name>.log.
	Dir, LogDir string
	// Ready reports nil once the process serves; it is polled until it does,
	// the process exits, or ReadyTimeout passes.
	Ready func(ctx context.Context) error
	// ReadyTimeout defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Process is a running external process that a test can stop, kill, pause,
// resume and restart.
type Process struct {
	spec ProcessSpec

	mu sync.Mutex // guards cmd, exited
	// cmd is the current incarnation; exited closes when it has exited.
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
}

// StartProcess starts spec and waits until it is ready.
func StartProcess(spec ProcessSpec) (*Process, error) {
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = DefaultReadyTimeout
	}
	if spec.LogDir == "" {
		spec.LogDir = os.TempDir()
	}
	p := &Process{spec: spec}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// LogPath is the file that holds the process's stdout and stderr.
func (p *Process) LogPath() string {
	return filepath.Join(p.spec.LogDir, p.spec.Name+".log")
}

// LogTail returns the last 4 KiB of the process's log.
func (p *Process) LogTail() string { return tailN(p.LogPath(), 4<<10) }

// LogTailN returns the last n bytes of the process's log.
func (p *Process) LogTailN(n int) string { return tailN(p.LogPath(), n) }

// Start starts the process (again, after Stop or Kill) and waits until it is
// ready.
func (p *Process) Start() error {
	p.mu.Lock()
	if p.cmd != nil && !isClosed(p.exited) {
		p.mu.Unlock()
		return fmt.Errorf("testenv: %s already running", p.spec.Name)
	}
	f, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("testenv: %s log: %w", p.spec.Name, err)
	}
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Dir = p.spec.Dir
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group, so that a kill reaches any children as well and a
	// terminal's signals do not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.mu.Unlock()
		return fmt.Errorf("testenv: start %s: %w", p.spec.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.logf = cmd, exited, f
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	return p.waitReady(exited)
}

func (p *Process) waitReady(exited chan struct{}) error {
	if p.spec.Ready == nil {
		return nil
	}
	deadline := time.Now().Add(p.spec.ReadyTimeout)
	retry := backoff.New(20*time.Millisecond, 500*time.Millisecond)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = p.spec.Ready(ctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("testenv: %s exited before it was ready (%v); log %s:\n%s",
				p.spec.Name, last, p.LogPath(), tail(p.LogPath()))
		case <-time.After(retry.Next()):
		}
	}
	p.Kill()
	return fmt.Errorf("testenv: %s not ready after %v: %v; log %s:\n%s",
		p.spec.Name, p.spec.ReadyTimeout, last, p.LogPath(), tail(p.LogPath()))
}

// WaitReady polls the readiness check again, e.g. after Resume.
func (p *Process) WaitReady() error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	return p.waitReady(exited)
}

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.exited) {
		return fmt.Errorf("testenv: %s is not running", p.spec.Name)
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *Process) wait(d time.Duration) bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return true
	}
	select {
	case <-exited:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop sends SIGTERM and waits for the process to exit; after the grace
// period it kills it.
func (p *Process) Stop() {
	if p.signal(syscall.SIGCONT) != nil { // a paused process cannot act on SIGTERM
		return
	}
	_ = p.signal(syscall.SIGTERM)
	if !p.wait(30 * time.Second) {
		p.Kill()
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	if p.signal(syscall.SIGKILL) == nil {
		p.wait(time.Minute)
	}
}

// Pause stops the process with SIGSTOP: it keeps its sockets but does
// nothing, like a long GC pause or a frozen VM. It returns once every thread
// of the process has stopped.
func (p *Process) Pause() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for !p.stopped() {
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s did not stop within 10s", p.spec.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// stopped reports whether every thread of the process is in state T.
func (p *Process) stopped() bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.Pid()))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' && b[i+2] != 't' {
			return false
		}
	}
	return true
}

// Resume continues a paused process.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.exited)
}

// Pid returns the process id of the current incarnation.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// tail returns the last few KiB of a log file for error messages.
func tail(path string) string { return tailN(path, 4<<10) }

// tailN returns the last n bytes of the file at path.
func tailN(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// errNotReady is what readiness checks return while a server is starting.
var errNotReady = errors.New("testenv: not ready")
