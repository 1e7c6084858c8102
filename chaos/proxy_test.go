package chaos

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with itself.
func echoServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

// TestProxyStallsAndDrops checks the proxy's two faults: a stall stops
// bytes until Heal, and a drop resets open connections while new ones
// still pass.
func TestProxyStallsAndDrops(t *testing.T) {
	t.Parallel()
	p, err := newProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("healthy: %q, %v", got, err)
	}

	p.Stall()
	if got, err := roundTrip(c, r, 300*time.Millisecond); err == nil {
		t.Fatalf("stalled: answered %q", got)
	}
	p.Heal()
	// The stalled ping arrives after the heal, then the next one.
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "ping\n" {
		t.Fatalf("after heal: %q, %v", got, err)
	}

	p.Drop()
	if _, err := roundTrip(c, r, 2*time.Second); err == nil {
		t.Fatal("dropped: the old connection still answers")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(c2, bufio.NewReader(c2), 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("new connection after the drop: %q, %v", got, err)
	}
}
