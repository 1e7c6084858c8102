package chaos

import (
	"io"
	"net"
	"sync"
	"time"
)

// proxy is a TCP proxy between the API processes and PostgreSQL that a
// fault can make drop every connection (the API sees resets mid-query) or
// stall (bytes stop flowing both ways and new connections hang, as behind
// a partitioned network), then heal.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	stalled chan struct{} // closed while healthy; open while stalled
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	healthy := make(chan struct{})
	close(healthy)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, stalled: healthy}
	go p.accept()
	return p, nil
}

// Addr is where the API connects instead of PostgreSQL.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Close() {
	_ = p.ln.Close()
	p.Drop()
}

// Drop resets every open connection.
func (p *proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// Stall stops every byte until Heal.
func (p *proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stalled:
		p.stalled = make(chan struct{})
	default:
	}
}

// Heal lets bytes flow again.
func (p *proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stalled:
	default:
		close(p.stalled)
	}
}

func (p *proxy) gate() {
	p.mu.Lock()
	ch := p.stalled
	p.mu.Unlock()
	<-ch
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	p.track(c, true)
	defer p.track(c, false)
	defer c.Close()
	p.gate()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.track(up, true)
	defer p.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c); done <- struct{}{} }()
	go func() { p.pipe(c, up); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst, waiting at the gate before each write.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}
