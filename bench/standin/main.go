// msgbus-standin: a MongoDB-wire server that answers from memory, a
// stand-in for a fast MongoDB on its own hardware in the benchmarks
// (bench/standin/README.md).  It is not a store: nothing is written to
// disk, there is no authentication, no replication, no transaction.
//
//	msgbus-standin -addr 127.0.0.1:27017 [-v]
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"
)

var verbose bool

func main() {
	addr := flag.String("addr", "127.0.0.1:27017", "host:port to listen on")
	ttl := flag.Duration("ttl-interval", time.Minute, "how often TTL indexes are applied (MongoDB: 60s)")
	io := flag.String("io", "epoll", "epoll: an event loop per CPU (epoll.go); go: a goroutine per connection")
	loops := flag.Int("loops", 0, "-io epoll: event loops (0: one per CPU, GOMAXPROCS)")
	flag.BoolVar(&verbose, "v", false, "log failed commands and TTL deletions")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the first N seconds (-profile-seconds) here")
	profileSecs := flag.Duration("profile-seconds", 10*time.Second, "how long -cpuprofile records")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("standin: ")

	// garbage is short-lived (a command's tree): collect less often
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	s := &server{store: newStore()}
	go func() {
		for now := range time.Tick(*ttl) {
			s.store.expire(now)
			expireCursors(now)
		}
	}()
	if *profile != "" {
		startProfile(*profile, *profileSecs)
	}
	const what = "an in-memory stand-in for a fast MongoDB, not a store"
	switch *io {
	case "epoll":
		lfd, at, err := listenRaw(*addr)
		if err != nil {
			log.Fatal(err)
		}
		n := *loops
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		if err := s.serveEpoll(lfd, n); err != nil {
			log.Fatal(err)
		}
		log.Printf("listening on %s (pid %d, %d event loops): %s", at, os.Getpid(), n, what)
		select {}
	case "go":
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("listening on %s (pid %d, a goroutine per connection): %s", ln.Addr(), os.Getpid(), what)
		log.Fatal(s.serve(ln))
	default:
		log.Fatalf("-io %s: epoll or go", *io)
	}
}

func startProfile(path string, d time.Duration) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	time.AfterFunc(d, func() {
		pprof.StopCPUProfile()
		f.Close()
		log.Printf("CPU profile written to %s", path)
	})
}
