// Closed-loop producers for bench/post: N producers, each on its own
// keep-alive connection, post one message at a time to one queue and
// send the next as soon as the answer is in, for a duration.  Prints one
// line of key=value pairs: posts (answered 2xx), errors (other answers,
// connection errors), posts_per_s, p50_ms, p99_ms, max_ms (post sent to
// answer read), producers, seconds, statuses, and acked (per producer,
// how many of its posts from the first were answered 201 in a row, the
// warm-up's too).  Each body is {"producer": P, "seq": N}, so that a
// reader can check the order (bench/post/order.py).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "the queue's messages URL")
	producers := flag.Int("c", 16, "producers")
	seconds := flag.Float64("d", 10, "seconds of posting (after -w)")
	warm := flag.Float64("w", 1, "seconds of warm-up, not counted")
	project := flag.String("project", "bench", "X-Project-Id")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "post: -url is required")
		os.Exit(2)
	}

	tr := &http.Transport{
		MaxIdleConnsPerHost: *producers,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var mu sync.Mutex
	var lat []time.Duration
	acked := make([]int, *producers) // 201s in a row from seq 0, warm-up too
	errors := 0
	statuses := map[int]int{}
	start := time.Now()
	measureFrom := start.Add(time.Duration(*warm * float64(time.Second)))
	end := measureFrom.Add(time.Duration(*seconds * float64(time.Second)))

	var wg sync.WaitGroup
	for p := 0; p < *producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			clientID := fmt.Sprintf("00000000-0000-4000-8000-%012d", p)
			var mine []time.Duration
			myErrors := 0
			myStatus := map[int]int{}
			inOrder := true
			for seq := 0; ; seq++ {
				now := time.Now()
				if !now.Before(end) {
					break
				}
				body := fmt.Sprintf(`{"messages": [{"ttl": 3600, "body": {"producer": %d, "seq": %d}}]}`, p, seq)
				req, _ := http.NewRequest("POST", *url, bytes.NewBufferString(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Client-ID", clientID)
				req.Header.Set("X-Project-Id", *project)
				resp, err := client.Do(req)
				took := time.Since(now)
				counted := now.After(measureFrom)
				if err != nil {
					inOrder = false
					if counted {
						myErrors++
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 201 && inOrder {
					acked[p] = seq + 1
				} else {
					inOrder = false
				}
				if !counted {
					continue
				}
				myStatus[resp.StatusCode]++
				if resp.StatusCode/100 == 2 {
					mine = append(mine, took)
				} else {
					myErrors++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			errors += myErrors
			for k, v := range myStatus {
				statuses[k] += v
			}
			mu.Unlock()
		}(p)
	}
	wg.Wait()

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000
	}
	st, ack := "", ""
	for k, v := range statuses {
		st += fmt.Sprintf("%d:%d,", k, v)
	}
	for p, n := range acked {
		ack += fmt.Sprintf("%d:%d,", p, n)
	}
	fmt.Printf("posts=%d errors=%d posts_per_s=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f producers=%d seconds=%.1f statuses=%s acked=%s\n",
		len(lat), errors, float64(len(lat)) / *seconds, q(0.5), q(0.99), q(1), *producers, *seconds, st, ack)
}
