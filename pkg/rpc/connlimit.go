package rpc

import (
	"net"
	"sync"
)

// LimitConnsPerHost wraps l so that each remote host (IP address) holds at
// most n open connections; further connections from that host are closed
// at once, before any handshake. n <= 0 returns l unchanged. onReject, if
// not nil, is called with the host of each refused connection.
func LimitConnsPerHost(l net.Listener, n int, onReject func(host string)) net.Listener {
	if n <= 0 {
		return l
	}
	return &limitListener{Listener: l, max: n, onReject: onReject, open: map[string]int{}}
}

type limitListener struct {
	net.Listener
	max      int
	onReject func(string)

	mu   sync.Mutex // guards open
	open map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := remoteHost(c)
		l.mu.Lock()
		ok := l.open[host] < l.max
		if ok {
			l.open[host]++
		}
		l.mu.Unlock()
		if ok {
			return &limitConn{Conn: c, l: l, host: host}, nil
		}
		c.Close()
		if l.onReject != nil {
			l.onReject(host)
		}
	}
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[host]--; l.open[host] <= 0 {
		delete(l.open, host)
	}
}

func remoteHost(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

type limitConn struct {
	net.Conn
	l    *limitListener
	host string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}
