package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startWaitMax bounds how long a process may take to answer after a start.
const startWaitMax = 60 * time.Second

// logTailBytesMax bounds what a failure message quotes of a process's log.
const logTailBytesMax = 4 << 10

// logBytesMax bounds what the suite keeps of one process's log.
const logBytesMax = 16 << 20

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// syncBuffer is a log a process writes and a failure message reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > logBytesMax {
		return len(p), nil // full: keep the start, which holds the first error
	}
	return s.b.Write(p)
}

// String returns the whole log.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Grep returns the lines of the log that contain sub.
func (s *syncBuffer) Grep(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// Tail returns the end of the log.
func (s *syncBuffer) Tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > logTailBytesMax {
		b = b[len(b)-logTailBytesMax:]
	}
	return string(b)
}

// proc is one child process that a fault may SIGKILL and the suite
// restart: it runs in a process group of its own, and a kill takes the
// whole group, as a crashed machine would.
type proc struct {
	name string
	argv []string
	env  []string
	cred *syscall.Credential
	log  *syncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// kill sends sig to the process group and waits for the leader to end.
func (p *proc) kill(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if sig != syscall.SIGKILL {
		// Whatever the leader left behind in its group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (p *proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// postgresUser is the account PostgreSQL runs as when the suite runs as
// root (PostgreSQL refuses root).
func postgresUser() (*syscall.Credential, error) {
	if os.Getuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// pgBinDir finds PostgreSQL's programs as scripts/services.sh does.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a < b
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL's initdb is not installed: run scripts/services.sh up (it installs postgresql) or apt-get install postgresql")
}

// privateDir makes a folder the postgres user can enter.
func privateDir(tb testing.TB, cred *syscall.Credential) string {
	tb.Helper()
	dir, err := os.MkdirTemp("/tmp", "payments-chaos-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// newPostgres initialises a cluster of its own, durable as in production
// (fsync and synchronous_commit on), and starts it.
func newPostgres(tb testing.TB, port int) *proc {
	tb.Helper()
	bin, err := pgBinDir()
	if err != nil {
		tb.Fatal(err)
	}
	cred, err := postgresUser()
	if err != nil {
		tb.Fatal(err)
	}
	dir := privateDir(tb, cred)
	data := filepath.Join(dir, "pgdata")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = "/"
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	p := &proc{
		name: "postgres", cred: cred, log: &syncBuffer{}, env: os.Environ(),
		argv: []string{filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=300",
			"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "shared_buffers=128MB",
			"-c", "max_pred_locks_per_transaction=512", "-c", "max_pred_locks_per_relation=-4"},
	}
	if err := p.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.kill(syscall.SIGTERM) })
	if err := waitPostgres(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)); err != nil {
		tb.Fatalf("postgres: %v\n%s", err, p.log.Tail())
	}
	return p
}

// restartPostgres starts a killed cluster again; its crash recovery
// replays the WAL. A start that finds the old shared memory still in use
// is tried again.
func restartPostgres(p *proc, dsn string) error {
	deadline := time.Now().Add(startWaitMax)
	for {
		if err := p.start(); err != nil {
			return err
		}
		err := waitPostgres(dsn)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not come back: %v", err)
		}
		p.kill(syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
}

func waitPostgres(dsn string) error {
	var err error
	for deadline := time.Now().Add(startWaitMax / 2); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var c *pgx.Conn
		if c, err = pgx.Connect(ctx, dsn); err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// newRedis starts a Redis of its own without persistence: losing it loses
// rate-limit counters and cache entries, never money.
func newRedis(tb testing.TB, port int) *proc {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal("redis-server is not installed: run scripts/services.sh up (it installs redis-server)")
	}
	p := &proc{name: "redis", log: &syncBuffer{}, env: os.Environ(),
		argv: []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tb.TempDir()}}
	if err := startRedis(p, port); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.kill(syscall.SIGTERM) })
	return p
}

func startRedis(p *proc, port int) error {
	if err := p.start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if portOpen(port) {
			return nil
		}
	}
	return fmt.Errorf("redis did not listen on %d:\n%s", port, p.log.Tail())
}

// buildBinary builds cmd/payments from this tree.
func buildBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "payments")
	root, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/payments")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// migrate applies the migrations with the binary.
func migrate(bin, dsn string) error {
	cmd := exec.Command(bin, "migrate", "up")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, out)
	}
	return nil
}

// waitHTTP waits until the process listens on addr.
func waitHTTP(p *proc, addr string) error {
	for deadline := time.Now().Add(startWaitMax); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !p.alive() {
			return fmt.Errorf("%s exited:\n%s", p.name, p.log.Tail())
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not listen on %s:\n%s", p.name, addr, p.log.Tail())
}

func envWith(base []string, kv ...string) []string {
	out := make([]string, 0, len(base)+len(kv))
	for _, e := range base {
		keep := true
		for _, x := range kv {
			if k, _, _ := strings.Cut(x, "="); strings.HasPrefix(e, k+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return append(out, kv...)
}
