package main

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// run is one command through the server, as the wire gives it: the
// command encoded, decoded, run, and its reply encoded.
func run(t testing.TB, s *server, db string, cmd *Doc) *Doc {
	raw := appendDoc(nil, cmd)
	d, err := decodeDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	reply := s.run(&conn{s: s, id: 1}, db, d)
	out, err := decodeDoc(appendDoc(nil, reply))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func okOf(t testing.TB, d *Doc) *Doc {
	t.Helper()
	if v, _ := d.Get("ok"); v != 1.0 {
		t.Fatalf("not ok: %s", fmtValue(d))
	}
	return d
}

func batchOf(t testing.TB, d *Doc) Array {
	t.Helper()
	cur, _ := okOf(t, d).Get("cursor")
	b, _ := cur.(*Doc).Get("firstBatch")
	return b.(Array)
}

func ks(batch Array) []int64 {
	var out []int64
	for _, d := range batch {
		k, _ := d.(*Doc).Get("k")
		n, _, _, _ := number(k)
		out = append(out, n)
	}
	return out
}

// page: msgbus's GET of a page, its filter as bench/peers/buslib.py builds it.
func page(now int64, limit int32) *Doc {
	return D("find", "messages",
		"filter", D("p_q", "bench/page", "e", D("$gt", DateTime(now*1000)), "tx", nil,
			"c.e", D("$lte", now),
			"$or", Array{D("d", D("$lte", now)), D("d", D("$exists", false))}),
		"sort", D("k", int32(1)), "limit", limit, "singleBatch", true,
		"lsid", D("id", Binary{4, make([]byte, 16)}), "$db", "bench_messages_p3")
}

func primed(t testing.TB, n int, indexed bool) (*server, int64) {
	s := &server{store: newStore()}
	now := time.Now().Unix()
	if indexed {
		okOf(t, run(t, s, "db", D("createIndexes", "messages", "indexes", Array{
			D("key", D("p_q", int32(1), "k", int32(1)), "name", "msgbus_marker", "unique", true),
			D("key", D("p_q", int32(1), "k", int32(1), "c.e", int32(1)), "name", "active"),
		})))
	}
	var docs Array
	for i := 1; i <= n; i++ {
		q := "bench/page"
		if i%2 == 0 {
			q = "bench/other"
		}
		docs = append(docs, D("p_q", q, "t", int32(43200), "e", DateTime((now+43200)*1000),
			"u", "client", "c", D("id", nil, "e", now, "c", int32(0)), "d", now,
			"b", Binary{0x80, []byte(fmt.Sprintf(`{"event":%d}`, i))}, "k", int64(i), "tx", nil))
	}
	okOf(t, run(t, s, "db", D("insert", "messages", "documents", docs)))
	return s, now
}

func TestFindPage(t *testing.T) {
	for _, indexed := range []bool{true, false} {
		s, now := primed(t, 40, indexed)
		got := ks(batchOf(t, run(t, s, "db", page(now, 7))))
		want := []int64{1, 3, 5, 7, 9, 11, 13}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("indexed %v: %v, want %v", indexed, got, want)
		}
		// claim 3 and 5: they leave the page
		r := okOf(t, run(t, s, "db", D("update", "messages", "updates", Array{
			D("q", D("p_q", "bench/page", "k", D("$in", Array{int32(3), 5.0})),
				"u", D("$set", D("c.id", "claim", "c.e", now+60)), "multi", true)})))
		if n, _ := r.Get("nModified"); n != int32(2) {
			t.Fatalf("nModified %v", n)
		}
		got = ks(batchOf(t, run(t, s, "db", page(now, 3))))
		if fmt.Sprint(got) != "[1 7 9]" {
			t.Fatalf("after the claim: %v", got)
		}
		// descending, after a marker
		cmd := page(now, 2)
		cmd.Set("sort", D("k", int32(-1)))
		f, _ := cmd.Get("filter")
		f.(*Doc).Set("k", D("$lt", int64(30)))
		if got := ks(batchOf(t, run(t, s, "db", cmd))); fmt.Sprint(got) != "[29 27]" {
			t.Fatalf("descending: %v", got)
		}
	}
}

func TestUniqueAndOrderedInsert(t *testing.T) {
	s, _ := primed(t, 4, true)
	r := okOf(t, run(t, s, "db", D("insert", "messages", "documents", Array{
		D("p_q", "bench/x", "k", int32(1)),
		D("p_q", "bench/page", "k", int32(3)), // taken
		D("p_q", "bench/x", "k", int32(2)),
	})))
	if n, _ := r.Get("n"); n != int32(1) {
		t.Fatalf("n %v", n)
	}
	we, _ := r.Get("writeErrors")
	e := we.(Array)[0].(*Doc)
	if c, _ := e.Get("code"); c != int32(11000) {
		t.Fatalf("code %v", c)
	}
	if i, _ := e.Get("index"); i != int32(1) {
		t.Fatalf("index %v", i)
	}
}

func TestFindAndModifyUpsert(t *testing.T) {
	s := &server{store: newStore()}
	for i := 1; i <= 3; i++ {
		r := okOf(t, run(t, s, "q", D("findAndModify", "queues",
			"query", D("p_q", "p/q"), "update", D("$inc", D("c.v", int32(5)), "$set", D("c.t", int32(i))),
			"upsert", true, "new", true, "fields", D("c.v", int32(1), "_id", int32(0)))))
		v, _ := r.Get("value")
		c, _ := v.(*Doc).Get("c")
		if n, _ := c.(*Doc).Get("v"); n != int32(5*i) {
			t.Fatalf("round %d: %s", i, fmtValue(v))
		}
		if len(v.(*Doc).E) != 1 {
			t.Fatalf("projection: %s", fmtValue(v))
		}
	}
	r := okOf(t, run(t, s, "q", D("count", "queues", "query", D("p_q", D("$regex", "^p/")))))
	if n, _ := r.Get("n"); n != int32(1) {
		t.Fatalf("count %v", n)
	}
}

func TestMatchSemantics(t *testing.T) {
	doc := D("a", int32(1), "b", nil, "c", D("d", Array{int32(1), int32(5)}), "s", "xyz",
		"arr", Array{D("x", int32(1)), D("x", int32(2))})
	cases := []struct {
		q    *Doc
		want bool
	}{
		{D("a", 1.0), true},
		{D("a", int64(2)), false},
		{D("b", nil), true},
		{D("missing", nil), true},
		{D("missing", D("$exists", false)), true},
		{D("b", D("$exists", true)), true},
		{D("a", D("$ne", nil)), true},
		{D("missing", D("$ne", nil)), false},
		{D("c.d", int32(5)), true},
		{D("c.d", D("$gt", int32(4), "$lt", int32(6))), true},
		{D("c.d", D("$gt", "a")), false},
		{D("arr.x", int32(2)), true},
		{D("a", D("$in", Array{int32(3), int32(1)})), true},
		{D("a", D("$nin", Array{int32(3), int32(1)})), false},
		{D("s", Regex{"^X", "i"}), true},
		{D("s", D("$regex", "y.$")), true},
		{D("$or", Array{D("a", int32(2)), D("s", "xyz")}), true},
		{D("$and", Array{D("a", int32(1)), D("s", "no")}), false},
		{D("$nor", Array{D("a", int32(2))}), true},
		{D("a", D("$not", D("$gt", int32(0)))), false},
		{D("arr", D("$elemMatch", D("x", D("$gte", int32(2))))), true},
		{D("arr", D("$size", int32(2))), true},
		{D("a", D("$type", "int")), true},
	}
	for _, c := range cases {
		f, err := compileFilter(c.q)
		if err != nil {
			t.Fatalf("%s: %v", fmtValue(c.q), err)
		}
		if got := f.m.match(doc); got != c.want {
			t.Errorf("%s: %v, want %v", fmtValue(c.q), got, c.want)
		}
	}
}

func TestUpdateOperators(t *testing.T) {
	d := D("_id", int32(1), "n", int32(1), "c", D("v", int32(1)))
	u := D("$inc", D("n", int32(2), "c.v", 0.5), "$max", D("m", int32(3)), "$unset", D("c.x", ""),
		"$set", D("a.b.c", "x"), "$setOnInsert", D("z", int32(1)))
	out, err := applyUpdate(d, u, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{ _id: 1, n: 3, c: { v: 1.5 }, m: 3, a: { b: { c: "x" } } }`
	if fmtValue(out) != want {
		t.Fatalf("%s, want %s", fmtValue(out), want)
	}
	if fmtValue(d) != `{ _id: 1, n: 1, c: { v: 1 } }` {
		t.Fatalf("the original changed: %s", fmtValue(d))
	}
}

func TestCursorBatches(t *testing.T) {
	s, _ := primed(t, 10, false)
	r := run(t, s, "db", D("find", "messages", "batchSize", int32(4)))
	cur, _ := okOf(t, r).Get("cursor")
	id, _ := cur.(*Doc).Get("id")
	if len(batchOf(t, r)) != 4 || id == int64(0) {
		t.Fatalf("first batch: %s", fmtValue(cur))
	}
	total := 4
	for id != int64(0) {
		r = okOf(t, run(t, s, "db", D("getMore", id, "collection", "messages", "batchSize", int32(4))))
		cur, _ = r.Get("cursor")
		nb, _ := cur.(*Doc).Get("nextBatch")
		total += len(nb.(Array))
		id, _ = cur.(*Doc).Get("id")
	}
	if total != 10 {
		t.Fatalf("%d documents", total)
	}
}

func TestUnknownCommand(t *testing.T) {
	s := &server{store: newStore()}
	r := run(t, s, "db", D("frobnicate", int32(1)))
	if c, _ := r.Get("code"); c != int32(59) {
		t.Fatalf("%s", fmtValue(r))
	}
}

// TestWire: on each transport, a legacy isMaster over OP_QUERY, then an
// insert over OP_MSG with a kind 1 section and a checksum, then a large
// find whose answer takes more than one write.
func TestWire(t *testing.T) {
	s := &server{store: newStore()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { _ = s.serve(ln) }()
	wire(t, ln.Addr().String(), "go")
	lfd, at, err := listenRaw("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.serveEpoll(lfd, 2); err != nil {
		t.Fatal(err)
	}
	wire(t, at.String(), "epoll")
}

func wire(t *testing.T, addr, db string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := appendU32(nil, 0)
	q = append(append(q, "admin.$cmd"...), 0)
	q = appendU32(appendU32(q, 0), 0xffffffff)
	q = appendDoc(q, D("isMaster", int32(1), "helloOk", true))
	reply := roundTrip(t, c, opQuery, q)
	doc, err := decodeDoc(reply[20:])
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := doc.Get("ismaster"); v != true {
		t.Fatalf("isMaster: %s", fmtValue(doc))
	}
	m := appendU32(nil, msgChecksum)
	m = appendDoc(append(m, 0), D("insert", "c", "$db", db))
	seq := append([]byte("documents"), 0)
	seq = appendDoc(appendDoc(seq, D("_id", int32(1))), D("_id", int32(2)))
	m = append(m, 1)
	m = appendU32(m, uint32(len(seq)+4))
	m = append(m, seq...)
	m = appendU32(m, 0) // the checksum: tolerated, not checked
	reply = roundTrip(t, c, opMsg, m)
	doc, _ = decodeDoc(reply[5:])
	if n, _ := doc.Get("n"); n != int32(2) {
		t.Fatalf("insert: %s", fmtValue(doc))
	}
	big := make([]byte, 1<<20)
	var docs Array
	for i := 0; i < 8; i++ {
		docs = append(docs, D("_id", int32(10+i), "b", Binary{0, big}))
	}
	m = appendDoc(append(appendU32(nil, 0), 0), D("insert", "c", "documents", docs, "$db", db))
	doc, _ = decodeDoc(roundTrip(t, c, opMsg, m)[5:])
	if n, _ := doc.Get("n"); n != int32(8) {
		t.Fatalf("insert: %s", fmtValue(doc))
	}
	m = appendDoc(append(appendU32(nil, 0), 0), D("find", "c", "filter", D("_id", D("$gte", int32(10))), "$db", db))
	doc, _ = decodeDoc(roundTrip(t, c, opMsg, m)[5:])
	cur, _ := doc.Get("cursor")
	if b, _ := cur.(*Doc).Get("firstBatch"); len(b.(Array)) != 8 {
		t.Fatalf("find: %d documents", len(b.(Array)))
	}
}

func roundTrip(t *testing.T, c net.Conn, op uint32, body []byte) []byte {
	msg := appendU32(nil, uint32(16+len(body)))
	msg = appendU32(appendU32(appendU32(msg, 7), 0), op)
	msg = append(msg, body...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 16)
	if _, err := readFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, int(le.Uint32(hdr))-16)
	if _, err := readFull(c, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// BenchmarkFindPage: the CPU of a page's find without the network:
// decoding the command, running it, encoding the reply.
func BenchmarkFindPage(b *testing.B) {
	s, now := primed(b, 2000, true)
	raw := appendDoc(nil, page(now, 7))
	cn := &conn{s: s, id: 1}
	b.ReportAllocs()
	b.ResetTimer()
	var out []byte
	for i := 0; i < b.N; i++ {
		buf := append([]byte(nil), raw...)
		d, _ := decodeDoc(buf)
		out = appendDoc(out[:0], s.run(cn, "db", d))
	}
}
