// The default transport (-io epoll): one event loop per CPU, each with an
// epoll set of its own, reading and writing with raw system calls, as a C
// server would.  Go's own poller wakes the scheduler for each message:
// at one request per connection and a few thousand requests a second,
// that cost several context switches per find (spinning threads parking,
// sysmon woken by each system call), more CPU than the find itself.  A
// loop blocks in epoll_pwait for at most 10 ms at a time and then yields,
// so that the garbage collector and the timers get their turn.
package main

import (
	"fmt"
	"log"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

const epollExclusive = 1 << 28 // EPOLLEXCLUSIVE: one loop woken per new connection

type loop struct {
	s     *server
	epfd  int
	lfd   int
	conns map[int32]*rawConn
}

// rawConn is a connection of a loop: what was read and not yet handled,
// and what was answered and not yet written.
type rawConn struct {
	fd      int
	cn      *conn
	in      []byte
	off     int
	pending []byte
}

// listenRaw opens a non-blocking listening socket on host:port (IPv4).
func listenRaw(addr string) (int, *net.TCPAddr, error) {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return -1, nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := syscall.Listen(fd, 4096); err != nil {
		syscall.Close(fd)
		return -1, nil, err
	}
	got, err := syscall.Getsockname(fd)
	if err == nil {
		if in4, ok := got.(*syscall.SockaddrInet4); ok {
			ta.Port = in4.Port
		}
	}
	return fd, ta, nil
}

// serveEpoll runs n loops on the listening socket lfd; it returns only
// if one cannot be set up.
func (s *server) serveEpoll(lfd, n int) error {
	for i := 0; i < n; i++ {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollExclusive, Fd: int32(lfd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, lfd, &ev); err != nil {
			return err
		}
		l := &loop{s: s, epfd: epfd, lfd: lfd, conns: map[int32]*rawConn{}}
		go l.run()
	}
	return nil
}

func rawIO(trap uintptr, fd int, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(r), e
}

func (l *loop) wait(events []syscall.EpollEvent, msec int) int {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return -1
	}
	return int(r)
}

func (l *loop) run() {
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 256*1024)
	for {
		n := l.wait(events, 10)
		if n <= 0 {
			runtime.Gosched()
			continue
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == l.lfd {
				l.accept()
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 && !l.flush(c) {
				continue
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.readable(c, buf)
			}
		}
	}
}

func (l *loop) accept() {
	for {
		fd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			if err != syscall.EAGAIN && err != syscall.EINTR && err != syscall.ECONNABORTED {
				log.Printf("accept: %v", err)
			}
			return
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		remote := ""
		if in4, ok := sa.(*syscall.SockaddrInet4); ok {
			remote = fmt.Sprintf("%d.%d.%d.%d:%d", in4.Addr[0], in4.Addr[1], in4.Addr[2], in4.Addr[3], in4.Port)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			log.Printf("epoll_ctl: %v", err)
			syscall.Close(fd)
			continue
		}
		l.conns[int32(fd)] = &rawConn{fd: fd, cn: l.s.newConn(remote)}
	}
}

func (l *loop) close(c *rawConn) {
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	syscall.Close(c.fd)
	delete(l.conns, int32(c.fd))
	l.s.conns.Add(-1)
}

// readable reads what there is and answers each whole message, in order;
// a connection with an answer not yet written is read again once it is.
func (l *loop) readable(c *rawConn, buf []byte) {
	for {
		n, e := rawIO(syscall.SYS_READ, c.fd, buf)
		if e == syscall.EINTR {
			continue
		}
		if e == syscall.EAGAIN {
			break
		}
		if e != 0 || n == 0 {
			l.close(c)
			return
		}
		c.in = append(c.in, buf[:n]...)
		if n < len(buf) {
			break
		}
	}
	l.answer(c)
}

func (l *loop) answer(c *rawConn) {
	for len(c.pending) == 0 && len(c.in)-c.off >= 16 {
		length, reqID, op, err := frame(c.in[c.off:])
		if err != nil {
			log.Printf("connection %d: %v: closing", c.cn.id, err)
			l.close(c)
			return
		}
		if len(c.in)-c.off < length {
			break
		}
		body := make([]byte, length-16) // its own: the command refers to it
		copy(body, c.in[c.off+16:c.off+length])
		c.off += length
		out, err := c.cn.message(reqID, op, body)
		if err != nil {
			log.Printf("connection %d: %v: closing", c.cn.id, err)
			l.close(c)
			return
		}
		if out != nil && !l.write(c, out) {
			return
		}
	}
	switch {
	case c.off == len(c.in):
		c.in, c.off = c.in[:0], 0
	case c.off > 0:
		c.in, c.off = append(c.in[:0], c.in[c.off:]...), 0
	}
}

// write writes an answer; what the socket does not take waits for
// EPOLLOUT.  False: the connection is closed.
func (l *loop) write(c *rawConn, out []byte) bool {
	for len(out) > 0 {
		n, e := rawIO(syscall.SYS_WRITE, c.fd, out)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			c.pending = append(c.pending[:0], out...)
			ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT, Fd: int32(c.fd)}
			_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
			return true
		case e != 0:
			l.close(c)
			return false
		}
		out = out[n:]
	}
	return true
}

// flush writes what waited; once all is written, the messages read
// meanwhile are answered.  False: the connection is closed.
func (l *loop) flush(c *rawConn) bool {
	out := c.pending
	c.pending = nil
	if !l.write(c, out) {
		return false
	}
	if len(c.pending) == 0 {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.fd)}
		_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
		l.answer(c)
	}
	return l.conns[int32(c.fd)] == c
}
