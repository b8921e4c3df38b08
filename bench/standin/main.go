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
	"runtime/debug"
	"runtime/pprof"
	"time"
)

var verbose bool

func main() {
	addr := flag.String("addr", "127.0.0.1:27017", "host:port to listen on")
	ttl := flag.Duration("ttl-interval", time.Minute, "how often TTL indexes are applied (MongoDB: 60s)")
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
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
	log.Printf("listening on %s (pid %d): an in-memory stand-in for a fast MongoDB, not a store",
		ln.Addr(), os.Getpid())
	log.Fatal(s.serve(ln))
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
