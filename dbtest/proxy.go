package dbtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// CutProxy forwards TCP on loopback to a target until cut: then it closes
// every open connection and refuses new ones, as a network partition
// would, until healed. Tests put it between one process and Redis or
// PostgreSQL.
type CutProxy struct {
	// Addr is where the proxy listens (host:port).
	Addr   string
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

// NewCutProxy starts a proxy to target, closed when the test ends.
func NewCutProxy(tb testing.TB, target string) *CutProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &CutProxy{Addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	tb.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

// track remembers c unless the proxy is down; it reports whether it did.
func (p *CutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *CutProxy) serve(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(s) {
		s.Close()
		c.Close()
		return
	}
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// Cut closes every connection through the proxy and refuses new ones.
func (p *CutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// Heal lets connections through again.
func (p *CutProxy) Heal() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
