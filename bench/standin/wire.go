// MongoDB's wire protocol: OP_MSG (kind 0 and kind 1 sections, with or
// without a checksum) and the legacy OP_QUERY on <db>.$cmd that drivers
// send their first hello with, answered by OP_REPLY.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
)

const (
	opReply      = 1
	opQuery      = 2004
	opCompressed = 2012
	opMsg        = 2013

	msgChecksum   = 1 << 0
	msgMoreToCome = 1 << 1

	maxBSON    = 16 * 1024 * 1024
	maxMessage = 48000000
)

var le = binary.LittleEndian
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type server struct {
	store   *Store
	connIDs atomic.Int64
	conns   atomic.Int64
}

// conn is one client connection's protocol state, whatever carries it
// (epoll.go's loops, or a goroutine of serve's).
type conn struct {
	s      *server
	id     int64
	remote string
	reqID  int32
	out    []byte
}

func (s *server) newConn(remote string) *conn {
	s.conns.Add(1)
	return &conn{s: s, id: s.connIDs.Add(1), remote: remote}
}

// frame checks a message header: the message's length, its request id
// and opcode.
func frame(hdr []byte) (length int, reqID int32, op uint32, err error) {
	length = int(int32(le.Uint32(hdr[0:])))
	if length < 16+5 || length > maxMessage {
		return 0, 0, 0, fmt.Errorf("a message of %d bytes", length)
	}
	return length, int32(le.Uint32(hdr[4:])), le.Uint32(hdr[12:]), nil
}

// message answers one message (its body a buffer of its own, which the
// decoded command refers to): the reply to send, nil for none.  The
// reply is in cn.out, valid until the next message.
func (cn *conn) message(reqID int32, op uint32, body []byte) ([]byte, error) {
	switch op {
	case opMsg:
		return cn.opMsg(reqID, body)
	case opQuery:
		return cn.opQuery(reqID, body)
	}
	return nil, fmt.Errorf("opcode %d is not supported", op)
}

// serve: a goroutine per connection on Go's own network poller (-io go).
func (s *server) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		go s.serveConn(c)
	}
}

func (s *server) serveConn(c net.Conn) {
	cn := s.newConn(c.RemoteAddr().String())
	defer s.conns.Add(-1)
	defer c.Close()
	br := bufio.NewReaderSize(c, 64*1024)
	var hdr [16]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		length, reqID, op, err := frame(hdr[:])
		if err == nil {
			body := make([]byte, length-16)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			var out []byte
			if out, err = cn.message(reqID, op, body); err == nil && out != nil {
				_, err = c.Write(out)
			}
		}
		if err != nil {
			log.Printf("connection %d: %v: closing", cn.id, err)
			return
		}
	}
}

// opMsg: flags, sections, maybe a checksum; the command is the kind 0
// document with each kind 1 sequence added as an array.
func (cn *conn) opMsg(reqID int32, b []byte) ([]byte, error) {
	flags := le.Uint32(b)
	if flags&msgChecksum != 0 {
		if len(b) < 8 {
			return nil, errBSON
		}
		b = b[:len(b)-4]
	}
	var stack [32]Elem
	dec := decoder{stack: stack[:0]}
	p := 4
	var cmd *Doc
	var seqs []Elem
	for p < len(b) {
		kind := b[p]
		p++
		switch kind {
		case 0:
			d, n, err := dec.doc(b[p:])
			if err != nil {
				return nil, err
			}
			cmd = d
			p += n
		case 1:
			if len(b)-p < 4 {
				return nil, errBSON
			}
			size := int(int32(le.Uint32(b[p:])))
			if size < 5 || p+size > len(b) {
				return nil, errBSON
			}
			sec := b[p+4 : p+size]
			id, n, err := readCString(sec)
			if err != nil {
				return nil, err
			}
			var docs Array
			for q := n; q < len(sec); {
				d, m, err := dec.doc(sec[q:])
				if err != nil {
					return nil, err
				}
				docs = append(docs, d)
				q += m
			}
			seqs = append(seqs, Elem{id, docs})
			p += size
		default:
			return nil, fmt.Errorf("OP_MSG section kind %d", kind)
		}
	}
	if cmd == nil {
		return nil, errors.New("OP_MSG without a body section")
	}
	if len(seqs) > 0 {
		cmd = &Doc{E: append(append([]Elem{}, cmd.E...), seqs...)}
	}
	db, _ := cmd.Get("$db")
	dbName, _ := db.(string)
	reply := cn.s.run(cn, dbName, cmd)
	if flags&msgMoreToCome != 0 {
		return nil, nil
	}
	out := cn.header(reqID, opMsg)
	out = append(out, 0, 0, 0, 0, 0)
	out = appendDoc(out, reply)
	return cn.finish(out), nil
}

// opQuery: a command on <db>.$cmd (a legacy hello, mostly).
func (cn *conn) opQuery(reqID int32, b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, errBSON
	}
	ns, n, err := readCString(b[4:])
	if err != nil {
		return nil, err
	}
	p := 4 + n + 8
	if p > len(b) {
		return nil, errBSON
	}
	q, _, err := readDoc(b[p:])
	if err != nil {
		return nil, err
	}
	var reply *Doc
	flags := uint32(0)
	if db, ok := strings.CutSuffix(ns, ".$cmd"); ok {
		if inner, ok := q.Get("$query"); ok {
			if d, ok := inner.(*Doc); ok {
				q = d
			}
		} else if inner, ok := q.Get("query"); ok && len(q.E) > 0 && q.E[0].K == "query" {
			if d, ok := inner.(*Doc); ok {
				q = d
			}
		}
		reply = cn.s.run(cn, db, q)
	} else {
		flags = 2 // QueryFailure
		reply = D("$err", "the stand-in answers OP_QUERY only for commands", "code", int32(352))
	}
	out := cn.header(reqID, opReply)
	out = appendU32(out, flags)
	out = appendU64(out, 0) // cursor id
	out = appendU32(out, 0) // starting from
	out = appendU32(out, 1) // number returned
	out = appendDoc(out, reply)
	return cn.finish(out), nil
}

func (cn *conn) header(responseTo int32, op uint32) []byte {
	cn.reqID++
	out := cn.out[:0]
	out = append(out, 0, 0, 0, 0)
	out = appendU32(out, uint32(cn.reqID))
	out = appendU32(out, uint32(responseTo))
	return appendU32(out, op)
}

// finish sets the reply's length; its buffer is kept for the next one
// unless it grew large.
func (cn *conn) finish(out []byte) []byte {
	le.PutUint32(out, uint32(len(out)))
	if cap(out) <= 1<<20 {
		cn.out = out[:0]
	} else {
		cn.out = nil
	}
	return out
}

// checksum is OP_MSG's CRC-32C of everything before it (kept for tests).
func checksum(msg []byte) uint32 {
	return crc32.Checksum(msg, castagnoli)
}
