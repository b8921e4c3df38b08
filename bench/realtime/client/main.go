// Fan-out load for bench/realtime: parked long-poll clients and SSE
// clients on one queue (msgbus) or channel (Nchan), a poster at a fixed
// rate, and for every message each client receives, the time from the
// poster's 201 (202 for Nchan) to the receipt.  Also the nginx workers'
// anonymous memory before and after the clients park.  Prints one JSON
// object.  Standard library only.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

func now() int64 { return int64(time.Since(start)) }

type receipt struct {
	seq int32
	at  int64
}

type client struct {
	mu       sync.Mutex
	receipts []receipt
	errors   int
}

func (c *client) got(body []byte, at int64) {
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
		c.receipts = append(c.receipts, receipt{int32(n), at})
		c.mu.Unlock()
		body = body[j:]
	}
}

var (
	stop      atomic.Bool
	connected atomic.Int64
	transport = &http.Transport{
		MaxIdleConnsPerHost: 100000,
		MaxConnsPerHost:     0,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
	httpc = &http.Client{Transport: transport, Timeout: 90 * time.Second}
)

func subURL() string {
	if *server == "nchan" {
		return "http://" + *addr + "/sub?id=" + *queue
	}
	return "http://" + *addr + "/v2/queues/" + *queue + "/messages?echo=true&limit=20"
}

func headers(req *http.Request, client string) {
	if *server == "msgbus" {
		req.Header.Set("Client-ID", client)
		req.Header.Set("X-Project-ID", *project)
	}
}

func longpoll(c *client, id int) {
	marker := ""
	etag, modified := "", ""
	first := true
	cid := fmt.Sprintf("00000000-0000-4000-8000-%012d", id)
	for !stop.Load() {
		url := subURL()
		if *server == "msgbus" {
			url += "&wait=" + *wait
			if marker != "" {
				url += "&marker=" + marker
			}
		}
		req, _ := http.NewRequest("GET", url, nil)
		headers(req, cid)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
			req.Header.Set("If-Modified-Since", modified)
		}
		if first {
			connected.Add(1)
			first = false
		}
		resp, err := httpc.Do(req)
		if err != nil {
			c.errors++
			time.Sleep(100 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		at := now()
		switch {
		case resp.StatusCode == 200:
			c.got(body, at)
			if *server == "msgbus" {
				if i := bytes.LastIndex(body, []byte("marker=")); i >= 0 {
					j := i + 7
					for j < len(body) && body[j] >= '0' && body[j] <= '9' {
						j++
					}
					marker = string(body[i+7 : j])
				}
			} else {
				etag = resp.Header.Get("Etag")
				modified = resp.Header.Get("Last-Modified")
			}
		case resp.StatusCode == 304 || resp.StatusCode == 408:
			// nchan: no message within its timeout
		default:
			c.errors++
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func sse(c *client, id int) {
	cid := fmt.Sprintf("00000000-0000-4000-9000-%012d", id)
	req, _ := http.NewRequest("GET", subURL(), nil)
	headers(req, cid)
	req.Header.Set("Accept", "text/event-stream")
	connected.Add(1)
	resp, err := httpc.Do(req)
	if err != nil {
		c.errors++
		return
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 16384)
	for !stop.Load() {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if !stop.Load() {
				c.errors++
			}
			return
		}
		if bytes.HasPrefix(line, []byte("data:")) {
			c.got(line, now())
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

func memory() int64 {
	var sum int64
	for _, p := range strings.Split(*pids, ",") {
		if p != "" {
			sum += anon(p)
		}
	}
	return sum
}

// post sends {"seq":N}, or {"warmup":true} for a negative seq (not timed)
func post(seq int, cid string) (int64, int) {
	var req *http.Request
	body := fmt.Sprintf(`{"seq":%d}`, seq)
	if seq < 0 {
		body = `{"warmup":true}`
	}
	if *server == "nchan" {
		req, _ = http.NewRequest("POST", "http://"+*addr+"/pub?id="+*queue,
			strings.NewReader(body))
	} else {
		req, _ = http.NewRequest("POST", "http://"+*addr+"/v2/queues/"+*queue+"/messages",
			strings.NewReader(`{"messages":[{"body":`+body+`}]}`))
		headers(req, cid)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return now(), resp.StatusCode
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
	if _, code := post(-1, "00000000-0000-4000-a000-000000000001"); code != 201 && code != 202 {
		fmt.Fprintf(os.Stderr, "warm-up post: %d\n", code)
	}
	time.Sleep(*settle)

	// posts at the rate, open loop, at most -posters in flight
	n := int(*rate * duration.Seconds())
	t201 := make([]int64, n)
	tsent := make([]int64, n)
	status := make(map[int]int)
	var smu sync.Mutex
	slots := make(chan struct{}, *posters)
	var wg sync.WaitGroup
	late := 0
	if *deadline == 0 {
		*deadline = 2**duration + 10*time.Second
	}
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
			at, code := post(seq, "00000000-0000-4000-a000-000000000001")
			t201[seq] = at
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

	ok := 0
	for code, c := range status {
		if code == 201 || code == 202 {
			ok += c
		}
	}
	collect := func(cs []*client) map[string]any {
		var lat []float64
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
			}
			errs += c.errors
			c.mu.Unlock()
		}
		sort.Float64s(lat)
		want := ok * len(cs)
		res := map[string]any{"receipts": got, "expected": want,
			"errors": errs, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
			"max_ms": pct(lat, 1)}
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
	out["longpoll_latency"] = collect(lp)
	out["sse_latency"] = collect(ss)
	all := append(append([]*client{}, lp...), ss...)
	out["all_latency"] = collect(all)
	if *dump != "" {
		writeDump(*dump, n, tsent, t201, lp, ss)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

// writeDump writes each receipt, in ms since the client started, for a closer
// look at where the tail comes from.
func writeDump(path string, n int, tsent, t201 []int64, lp, ss []*client) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	fmt.Fprintln(w, "kind,client,seq,sent_ms,answered_ms,received_ms")
	ms := func(t int64) float64 { return float64(t) / 1e6 }
	for kind, cs := range map[string][]*client{"longpoll": lp, "sse": ss} {
		for i, c := range cs {
			c.mu.Lock()
			for _, r := range c.receipts {
				if int(r.seq) >= n {
					continue
				}
				fmt.Fprintf(w, "%s,%d,%d,%.3f,%.3f,%.3f\n", kind, i, r.seq,
					ms(tsent[r.seq]), ms(t201[r.seq]), ms(r.at))
			}
			c.mu.Unlock()
		}
	}
}
