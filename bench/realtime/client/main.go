// Fan-out load for bench/realtime: parked long-poll clients and SSE
// clients on one queue (msgbus) or channel (Nchan), a poster at a fixed
// rate, and for every message each client receives, the time from the
// poster's 201 (202 for Nchan) to the receipt: at the sockets (the
// kernel's receive times of the answer and of the message) and as the
// client read them.  Also the nginx workers' anonymous memory before and
// after the clients park.  Prints one JSON object.  Standard library only.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	server    = flag.String("server", "msgbus", "msgbus or nchan")
	addr      = flag.String("addr", "127.0.0.1:8080", "host:port")
	queue     = flag.String("queue", "fanout", "queue (channel) name")
	project   = flag.String("project", "bench", "X-Project-ID (msgbus)")
	longpolls = flag.Int("longpoll", 2000, "long-poll clients")
	streams   = flag.Int("sse", 2000, "SSE clients")
	rate      = flag.Float64("rate", 100, "posts per second")
	duration  = flag.Duration("duration", 20*time.Second, "posting time")
	posters   = flag.Int("posters", 4, "posts in flight at most")
	pids      = flag.String("pids", "", "nginx worker pids, comma-separated")
	settle    = flag.Duration("settle", 3*time.Second, "wait for clients to park")
	wait      = flag.String("wait", "20", "msgbus long-poll ?wait=")
	deadline  = flag.Duration("deadline", 0, "stop posting after (default: 2 x duration + 10s)")
	dump      = flag.String("dump", "", "write every receipt to this CSV file (kind,client,seq,sent_ms,answered_ms,received_ms)")
)

var start = time.Now()

// now: ns since start; what the clients read, they read at now()
func now() int64 { return int64(time.Since(start)) }

// receipt: at is when the message reached the client's socket (the
// kernel's receive time), read when the client had read it whole
type receipt struct {
	seq  int32
	at   int64
	read int64
}

type client struct {
	mu       sync.Mutex
	receipts []receipt
	errors   int
}

func (c *client) failed() {
	c.mu.Lock()
	c.errors++
	c.mu.Unlock()
}

func (c *client) got(body []byte, at, read int64) {
	// every "seq":N in the bytes: the bodies are {"seq":N}
	for {
		i := bytes.Index(body, []byte(`"seq":`))
		if i < 0 {
			return
		}
		body = body[i+6:]
		n := 0
		j := 0
		for j < len(body) && body[j] >= '0' && body[j] <= '9' {
			n = n*10 + int(body[j]-'0')
			j++
		}
		c.mu.Lock()
		c.receipts = append(c.receipts, receipt{int32(n), at, read})
		c.mu.Unlock()
		body = body[j:]
	}
}

var (
	stop      atomic.Bool
	connected atomic.Int64
)

func subPath() string {
	if *server == "nchan" {
		return "/sub?id=" + *queue
	}
	return "/v2/queues/" + *queue + "/messages?echo=true&limit=20"
}

// headers: name, value pairs for msgbus's requests
func headers(client string) []string {
	if *server == "msgbus" {
		return []string{"Client-ID", client, "X-Project-ID", *project}
	}
	return nil
}

// stamped reads a TCP socket and keeps the kernel's receive time of the
// data it read last (SO_TIMESTAMPNS): when the server's answer reached
// the client, however long the client (on the same CPUs as the servers)
// took to get to it.
type stamped struct {
	rc  syscall.RawConn
	oob []byte
	at  int64
}

var wall0 = start.UnixNano()

func (s *stamped) Read(p []byte) (int, error) {
	var n, oobn int
	var err error
	rerr := s.rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, err = syscall.Recvmsg(int(fd), p, s.oob, 0)
		return err != syscall.EAGAIN
	})
	if rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	s.at = -1
	msgs, _ := syscall.ParseSocketControlMessage(s.oob[:oobn])
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET &&
			m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			s.at = sec*1e9 + nsec - wall0
		}
	}
	if s.at < 0 {
		// no receive time: the read's (counted in the output)
		unstamped.Add(1)
		s.at = now()
	}
	return n, nil
}

var unstamped atomic.Int64

// conn is one keep-alive HTTP/1.1 connection spoken by hand.  The
// net/http client spent more CPU per long-poll answer than the server it
// measures (goroutine hand-offs, a header map and a Request per poll), on
// the same 2 CPUs, and its delay went into every receipt.
type conn struct {
	nc      net.Conn
	s       *stamped
	br      *bufio.Reader
	req     []byte
	body    []byte
	close   bool
	timeout time.Duration // for each request and its answer, 0: none
}

// response: one answer's status, the headers the clients use, and the body
// (valid until the next read)
type response struct {
	status         int
	etag, modified string
	body           []byte
	chunked        bool
}

func dial() (*conn, error) {
	nc, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err == nil {
		rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET,
				syscall.SO_TIMESTAMPNS, 1)
		})
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	s := &stamped{rc: rc, oob: make([]byte, 64)}
	return &conn{nc: nc, s: s, br: bufio.NewReaderSize(s, 8192)}, nil
}

// send sends a request; hdr is name, value pairs, and an empty value is
// left out
func (k *conn) send(method, path string, body []byte, hdr ...string) error {
	var d time.Time
	if k.timeout > 0 {
		d = time.Now().Add(k.timeout)
	}
	if err := k.nc.SetDeadline(d); err != nil {
		return err
	}
	b := append(append(k.req[:0], method...), ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, *addr...)
	b = append(b, "\r\n"...)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			b = append(append(append(append(b, hdr[i]...), ": "...),
				hdr[i+1]...), "\r\n"...)
		}
	}
	if body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(append(b, "\r\n"...), body...)
	k.req = b
	_, err := k.nc.Write(k.req)
	return err
}

var errBadResponse = errors.New("bad response")

// head reads the status line and the headers, and returns the
// Content-Length (-1 when there is none)
func (k *conn) head(r *response) (int, error) {
	line, err := k.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, errBadResponse
	}
	if r.status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, errBadResponse
	}
	r.etag, r.modified, r.chunked = "", "", false
	length := -1
	for {
		line, err = k.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return length, nil
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			return 0, errBadResponse
		}
		name, value := string(line[:i]), string(bytes.TrimSpace(line[i+1:]))
		switch {
		case strings.EqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(value); err != nil {
				return 0, errBadResponse
			}
		case strings.EqualFold(name, "Transfer-Encoding"):
			r.chunked = strings.Contains(strings.ToLower(value), "chunked")
		case strings.EqualFold(name, "Connection"):
			k.close = strings.Contains(strings.ToLower(value), "close")
		case strings.EqualFold(name, "Etag"):
			r.etag = value
		case strings.EqualFold(name, "Last-Modified"):
			r.modified = value
		}
	}
}

// read reads one whole answer
func (k *conn) read(r *response) error {
	length, err := k.head(r)
	for err == nil && r.status/100 == 1 {
		// an interim answer (100 Continue): the real one follows
		length, err = k.head(r)
	}
	if err != nil {
		return err
	}
	k.body = k.body[:0]
	switch {
	case r.status == 204 || r.status == 304:
	case r.chunked:
		var chunk [4096]byte
		cr := httputil.NewChunkedReader(k.br)
		for {
			n, err := cr.Read(chunk[:])
			k.body = append(k.body, chunk[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		// the trailer, up to its empty line
		for {
			line, err := k.br.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
	case length >= 0:
		if cap(k.body) < length {
			k.body = make([]byte, length)
		}
		k.body = k.body[:length]
		if _, err := io.ReadFull(k.br, k.body); err != nil {
			return err
		}
	default:
		k.close = true
		if k.body, err = io.ReadAll(k.br); err != nil {
			return err
		}
	}
	r.body = k.body
	return nil
}

func longpoll(c *client, id int) {
	marker := ""
	etag, modified := "", ""
	first := true
	cid := fmt.Sprintf("00000000-0000-4000-8000-%012d", id)
	var k *conn
	var r response
	fail := func(err error) {
		c.failed()
		if k != nil {
			k.nc.Close()
			k = nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	for !stop.Load() {
		path := subPath()
		if *server == "msgbus" {
			path += "&wait=" + *wait
			if marker != "" {
				path += "&marker=" + marker
			}
		}
		if first {
			connected.Add(1)
			first = false
		}
		var err error
		if k == nil {
			if k, err = dial(); err != nil {
				fail(err)
				continue
			}
			// the wait, and time to answer
			w, _ := strconv.Atoi(*wait)
			k.timeout = time.Duration(w+30) * time.Second
		}
		if err = k.send("GET", path, nil, append(headers(cid),
			"If-None-Match", etag, "If-Modified-Since", modified)...); err == nil {
			err = k.read(&r)
		}
		if err != nil {
			fail(err)
			continue
		}
		at, read := k.s.at, now()
		if k.close {
			k.nc.Close()
			k = nil
		}
		switch {
		case r.status == 200:
			c.got(r.body, at, read)
			if *server == "msgbus" {
				if i := bytes.LastIndex(r.body, []byte("marker=")); i >= 0 {
					j := i + 7
					for j < len(r.body) && r.body[j] >= '0' && r.body[j] <= '9' {
						j++
					}
					marker = string(r.body[i+7 : j])
				}
			} else {
				etag, modified = r.etag, r.modified
			}
		case r.status == 304 || r.status == 408:
			// nchan: no message within its timeout
		default:
			fail(nil)
		}
	}
}

func sse(c *client, id int) {
	cid := fmt.Sprintf("00000000-0000-4000-9000-%012d", id)
	connected.Add(1)
	k, err := dial()
	if err != nil {
		c.failed()
		return
	}
	defer k.nc.Close()
	var r response
	if err = k.send("GET", subPath(), nil, append(headers(cid),
		"Accept", "text/event-stream")...); err == nil {
		_, err = k.head(&r)
	}
	if err != nil || r.status != 200 {
		c.failed()
		return
	}
	var body io.Reader = k.br
	if r.chunked {
		body = httputil.NewChunkedReader(k.br)
	}
	br := bufio.NewReaderSize(body, 16384)
	for !stop.Load() {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if !stop.Load() {
				c.failed()
			}
			return
		}
		if bytes.HasPrefix(line, []byte("data:")) {
			c.got(line, k.s.at, now())
		}
	}
}

func anon(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "RssAnon:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// the workers' CPU seconds so far (utime + stime of /proc/PID/stat)
func workerCPU() float64 {
	var ticks int64
	for _, p := range strings.Split(*pids, ",") {
		if p == "" {
			continue
		}
		b, err := os.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			k, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + k
		}
	}
	return float64(ticks) / 100 // USER_HZ
}

func memory() int64 {
	var sum int64
	for _, p := range strings.Split(*pids, ",") {
		if p != "" {
			sum += anon(p)
		}
	}
	return sum
}

// idle posting connections
var posting = make(chan *conn, 64)

// post sends {"seq":N}, or {"warmup":true} for a negative seq (not
// timed), and returns when the answer reached the socket, when it was
// read, and its status (0: no answer)
func post(seq int, cid string) (int64, int64, int) {
	var path string
	var hdr []string
	body := fmt.Sprintf(`{"seq":%d}`, seq)
	if seq < 0 {
		body = `{"warmup":true}`
	}
	if *server == "nchan" {
		path = "/pub?id=" + *queue
	} else {
		path = "/v2/queues/" + *queue + "/messages"
		body = `{"messages":[{"body":` + body + `}]}`
		hdr = append(headers(cid), "Content-Type", "application/json")
	}
	var k *conn
	select {
	case k = <-posting:
	default:
		var err error
		if k, err = dial(); err != nil {
			return 0, 0, 0
		}
		k.timeout = 60 * time.Second
	}
	var r response
	err := k.send("POST", path, []byte(body), hdr...)
	if err == nil {
		err = k.read(&r)
	}
	at, read := k.s.at, now()
	if err != nil || k.close {
		k.nc.Close()
	} else {
		select {
		case posting <- k:
		default:
			k.nc.Close()
		}
	}
	if err != nil {
		return 0, 0, 0
	}
	return at, read, r.status
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return -1
	}
	i := int(p * float64(len(v)-1))
	return v[i]
}

func main() {
	flag.Parse()
	out := map[string]any{"server": *server, "longpoll": *longpolls,
		"sse": *streams, "rate": *rate, "duration_s": duration.Seconds()}

	m0 := memory()
	lp := make([]*client, *longpolls)
	for i := range lp {
		lp[i] = &client{}
		go longpoll(lp[i], i)
	}
	for connected.Load() < int64(*longpolls) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(*settle)
	m1 := memory()
	ss := make([]*client, *streams)
	for i := range ss {
		ss[i] = &client{}
		go sse(ss[i], i)
	}
	for connected.Load() < int64(*longpolls+*streams) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(*settle)
	m2 := memory()
	out["memory_base"] = m0
	if *longpolls > 0 {
		out["bytes_per_longpoll"] = (m1 - m0) / int64(*longpolls)
	}
	if *streams > 0 {
		out["bytes_per_stream"] = (m2 - m1) / int64(*streams)
	}

	// one post first, not timed: the first post to a queue creates it
	// (msgbus: the queue's document; Nchan: the channel), which is not
	// what the fan-out is measured for
	if _, _, code := post(-1, "00000000-0000-4000-a000-000000000001"); code != 201 && code != 202 {
		fmt.Fprintf(os.Stderr, "warm-up post: %d\n", code)
	}
	time.Sleep(*settle)

	// posts at the rate, open loop, at most -posters in flight
	n := int(*rate * duration.Seconds())
	t201 := make([]int64, n)
	read201 := make([]int64, n)
	tsent := make([]int64, n)
	status := make(map[int]int)
	var smu sync.Mutex
	slots := make(chan struct{}, *posters)
	var wg sync.WaitGroup
	late := 0
	if *deadline == 0 {
		*deadline = 2**duration + 10*time.Second
	}
	cpu0 := workerCPU()
	t0 := time.Now()
	sent := 0
	for i := 0; i < n && time.Since(t0) < *deadline; i++ {
		sent++
		due := t0.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
		time.Sleep(time.Until(due))
		select {
		case slots <- struct{}{}:
		default:
			late++
			slots <- struct{}{}
		}
		wg.Add(1)
		go func(seq int) {
			defer wg.Done()
			tsent[seq] = now()
			at, read, code := post(seq, "00000000-0000-4000-a000-000000000001")
			t201[seq], read201[seq] = at, read
			smu.Lock()
			status[code]++
			smu.Unlock()
			<-slots
		}(i)
	}
	wg.Wait()
	posting := time.Since(t0).Seconds()
	time.Sleep(2 * time.Second)
	stop.Store(true)
	cpu := workerCPU() - cpu0

	ok := 0
	for code, c := range status {
		if code == 201 || code == 202 {
			ok += c
		}
	}
	// latency at the sockets (the kernel's receive times of the 201 and
	// of the message), and as the clients read them
	collect := func(cs []*client) map[string]any {
		var lat, rlat []float64
		var got, errs int
		for _, c := range cs {
			c.mu.Lock()
			seen := make(map[int32]bool, len(c.receipts))
			for _, r := range c.receipts {
				if int(r.seq) >= n || t201[r.seq] == 0 || seen[r.seq] {
					continue
				}
				seen[r.seq] = true
				got++
				lat = append(lat, float64(r.at-t201[r.seq])/1e6)
				rlat = append(rlat, float64(r.read-read201[r.seq])/1e6)
			}
			errs += c.errors
			c.mu.Unlock()
		}
		sort.Float64s(lat)
		sort.Float64s(rlat)
		want := ok * len(cs)
		res := map[string]any{"receipts": got, "expected": want,
			"errors": errs, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
			"max_ms": pct(lat, 1), "read_p50_ms": pct(rlat, 0.5),
			"read_p99_ms": pct(rlat, 0.99), "read_max_ms": pct(rlat, 1)}
		if want > 0 {
			res["delivered"] = float64(got) / float64(want)
		}
		return res
	}
	codes := map[string]int{}
	for k, v := range status {
		codes[strconv.Itoa(k)] = v
	}
	out["posts"] = sent
	out["posts_planned"] = n
	out["post_status"] = codes
	out["posting_s"] = posting
	out["posts_late"] = late
	out["unstamped_reads"] = unstamped.Load()
	out["longpoll_latency"] = collect(lp)
	out["sse_latency"] = collect(ss)
	all := append(append([]*client{}, lp...), ss...)
	out["all_latency"] = collect(all)
	// the workers' CPU from the first post to 2 s after the last answer
	// (deliveries, the posts, the long-polls' next requests, pings)
	out["worker_cpu_s"] = cpu
	if got, _ := out["all_latency"].(map[string]any)["receipts"].(int); got > 0 {
		out["cpu_us_per_delivery"] = cpu / float64(got) * 1e6
	}
	if *dump != "" {
		writeDump(*dump, n, tsent, t201, read201, lp, ss)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

// writeDump writes each receipt, in ms since the client started, for a closer
// look at where the tail comes from.
func writeDump(path string, n int, tsent, t201, read201 []int64, lp, ss []*client) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	fmt.Fprintln(w, "kind,client,seq,sent_ms,answered_ms,received_ms,answer_read_ms,read_ms")
	ms := func(t int64) float64 { return float64(t) / 1e6 }
	for kind, cs := range map[string][]*client{"longpoll": lp, "sse": ss} {
		for i, c := range cs {
			c.mu.Lock()
			for _, r := range c.receipts {
				if int(r.seq) >= n {
					continue
				}
				fmt.Fprintf(w, "%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f\n", kind, i,
					r.seq, ms(tsent[r.seq]), ms(t201[r.seq]), ms(r.at),
					ms(read201[r.seq]), ms(r.read))
			}
			c.mu.Unlock()
		}
	}
}
