// The commands the stand-in answers.  Anything else: ok 0, code 59, and
// its name on stderr once.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ctx is one command being run.
type ctx struct {
	s    *server
	cn   *conn
	db   string
	cmd  *Doc
	name string
}

type handler func(x *ctx) (*Doc, error)

var commands map[string]handler

func init() {
	commands = map[string]handler{
		"hello": cmdHello, "isMaster": cmdHello, "ismaster": cmdHello,
		"ping": cmdOK, "endSessions": cmdOK, "killSessions": cmdOK, "refreshSessions": cmdOK,
		"logout": cmdOK, "killAllSessions": cmdOK, "buildInfo": cmdBuildInfo,
		"buildinfo": cmdBuildInfo, "getParameter": cmdGetParameter, "startSession": cmdStartSession,
		"getLastError": cmdGetLastError, "getlasterror": cmdGetLastError,
		"whatsmyuri": cmdWhatsMyURI, "connectionStatus": cmdConnectionStatus,
		"getCmdLineOpts": cmdGetCmdLineOpts, "hostInfo": cmdHostInfo, "getLog": cmdGetLog,
		"serverStatus": cmdServerStatus, "listCommands": cmdListCommands,
		"getFreeMonitoringStatus": cmdOK,
		"find":                    cmdFind, "getMore": cmdGetMore, "killCursors": cmdKillCursors,
		"insert": cmdInsert, "update": cmdUpdate, "delete": cmdDelete,
		"findAndModify": cmdFindAndModify, "findandmodify": cmdFindAndModify,
		"count": cmdCount, "distinct": cmdDistinct, "aggregate": cmdAggregate,
		"createIndexes": cmdCreateIndexes, "listIndexes": cmdListIndexes,
		"dropIndexes": cmdDropIndexes, "deleteIndexes": cmdDropIndexes,
		"listCollections": cmdListCollections, "listDatabases": cmdListDatabases,
		"drop": cmdDrop, "dropDatabase": cmdDropDatabase, "create": cmdCreate,
		"collStats": cmdCollStats, "dbStats": cmdDBStats,
	}
}

var unknownSeen sync.Map

// run answers one command document.
func (s *server) run(cn *conn, db string, cmd *Doc) (reply *Doc) {
	if len(cmd.E) == 0 {
		return errReply(cmdErr(59, "CommandNotFound", "no command in the message"))
	}
	name := cmd.E[0].K
	h := commands[name]
	if h == nil {
		if _, seen := unknownSeen.LoadOrStore(name, true); !seen {
			log.Printf("no such command: %q (database %q): answered code 59", name, db)
		}
		return errReply(cmdErr(59, "CommandNotFound", fmt.Sprintf("no such command: '%s'", name)))
	}
	if db == "" {
		db = "test"
	}
	defer func() {
		if r := recover(); r != nil {
			log.Printf("%s: %v", name, r)
			reply = errReply(cmdErr(1, "InternalError", fmt.Sprintf("%s: %v", name, r)))
		}
	}()
	d, err := h(&ctx{s: s, cn: cn, db: db, cmd: cmd, name: name})
	if err != nil {
		if verbose {
			log.Printf("%s on %s: %v", name, db, err)
		}
		return errReply(err)
	}
	return d
}

func errReply(err error) *Doc {
	ce, ok := err.(*cmdError)
	if !ok {
		ce = cmdErr(1, "InternalError", err.Error())
	}
	return D("ok", 0.0, "errmsg", ce.Msg, "code", ce.Code, "codeName", ce.Name)
}

func ok(kv ...any) *Doc {
	return D(append(kv, "ok", 1.0)...)
}

// --- arguments ----------------------------------------------------------------------

func (x *ctx) arg(key string) any {
	v, _ := x.cmd.Get(key)
	return v
}

func (x *ctx) docArg(key string) (*Doc, error) {
	v, present := x.cmd.Get(key)
	if !present || v == nil {
		return nil, nil
	}
	d, ok := v.(*Doc)
	if !ok {
		return nil, cmdErr(14, "TypeMismatch", fmt.Sprintf("'%s' must be an object", key))
	}
	return d, nil
}

func (x *ctx) intArg(key string) int64 {
	n, f, isInt, ok := number(x.arg(key))
	if !ok {
		return 0
	}
	if !isInt {
		return int64(f)
	}
	return n
}

// collName: the collection the command names (its first value).
func (x *ctx) collName() (string, error) {
	s, ok := x.cmd.E[0].V.(string)
	if !ok || s == "" {
		return "", cmdErr(73, "InvalidNamespace", fmt.Sprintf(
			"collection name has invalid type %T", x.cmd.E[0].V))
	}
	return s, nil
}

func (x *ctx) ns(coll string) string { return x.db + "." + coll }

// --- handshake and server facts ------------------------------------------------------

func cmdHello(x *ctx) (*Doc, error) {
	d := &Doc{}
	if truthy(x.arg("helloOk")) {
		d.E = append(d.E, Elem{"helloOk", true})
	}
	d.E = append(d.E,
		Elem{"ismaster", true}, Elem{"isWritablePrimary", true},
		Elem{"maxBsonObjectSize", int32(maxBSON)},
		Elem{"maxMessageSizeBytes", int32(maxMessage)},
		Elem{"maxWriteBatchSize", int32(100000)},
		Elem{"localTime", DateTime(time.Now().UnixMilli())},
		Elem{"logicalSessionTimeoutMinutes", int32(30)},
		Elem{"connectionId", int32(x.cn.id)},
		Elem{"minWireVersion", int32(0)}, Elem{"maxWireVersion", int32(17)},
		Elem{"readOnly", false}, Elem{"ok", 1.0})
	return d, nil
}

func cmdOK(*ctx) (*Doc, error) { return ok(), nil }

func cmdBuildInfo(*ctx) (*Doc, error) {
	return ok("version", "6.0.0", "gitVersion", "msgbus-standin",
		"versionArray", Array{int32(6), int32(0), int32(0), int32(0)},
		"modules", Array{}, "allocator", "go", "javascriptEngine", "none",
		"sysInfo", "deprecated", "bits", int32(64), "debug", false,
		"maxBsonObjectSize", int32(maxBSON), "storageEngines", Array{"standin"},
		"standin", "an in-memory stand-in for a fast MongoDB (bench/standin), not a store"), nil
}

func cmdGetParameter(x *ctx) (*Doc, error) {
	if x.arg("featureCompatibilityVersion") != nil {
		return ok("featureCompatibilityVersion", D("version", "6.0")), nil
	}
	return ok(), nil
}

func cmdStartSession(*ctx) (*Doc, error) {
	id := newObjectID()
	return ok("id", D("id", Binary{4, append(id[:], 0, 0, 0, 0)}), "timeoutMinutes", int32(30)), nil
}

func cmdGetLastError(*ctx) (*Doc, error) {
	return ok("err", nil, "n", int32(0)), nil
}

func cmdWhatsMyURI(x *ctx) (*Doc, error) {
	return ok("you", x.cn.remote), nil
}

func cmdConnectionStatus(*ctx) (*Doc, error) {
	return ok("authInfo", D("authenticatedUsers", Array{}, "authenticatedUserRoles", Array{})), nil
}

func cmdGetCmdLineOpts(*ctx) (*Doc, error) {
	args := Array{}
	for _, a := range os.Args {
		args = append(args, a)
	}
	return ok("argv", args, "parsed", D()), nil
}

func cmdHostInfo(*ctx) (*Doc, error) {
	host, _ := os.Hostname()
	return ok("system", D("hostname", host), "os", D("type", "Linux")), nil
}

func cmdGetLog(*ctx) (*Doc, error) {
	return ok("totalLinesWritten", int32(0), "log", Array{}), nil
}

var started = time.Now()

func cmdServerStatus(x *ctx) (*Doc, error) {
	host, _ := os.Hostname()
	up := time.Since(started)
	return ok("host", host, "version", "6.0.0", "process", "msgbus-standin",
		"pid", int64(os.Getpid()), "uptime", up.Seconds(), "uptimeMillis", up.Milliseconds(),
		"localTime", DateTime(time.Now().UnixMilli()),
		"connections", D("current", int32(x.s.conns.Load()), "available", int32(100000),
			"totalCreated", int32(x.s.connIDs.Load()))), nil
}

func cmdListCommands(*ctx) (*Doc, error) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	d := &Doc{}
	for _, n := range names {
		d.E = append(d.E, Elem{n, D("help", "")})
	}
	return ok("commands", d), nil
}

// --- cursors --------------------------------------------------------------------------

type cursor struct {
	ns   string
	docs []*Doc
	used time.Time
}

var (
	cursorMu  sync.Mutex
	cursors   = map[int64]*cursor{}
	cursorIDs atomic.Int64
)

const batchBytes = maxBSON - 64*1024

// batch cuts the first batch off docs: at most n (0: no limit) and what
// fits one reply.
func batch(docs []*Doc, n int) ([]*Doc, []*Doc) {
	size := 0
	for i, d := range docs {
		if n > 0 && i >= n {
			return docs[:i], docs[i:]
		}
		size += len(d.Raw()) + 8
		if size > batchBytes && i > 0 {
			return docs[:i], docs[i:]
		}
	}
	return docs, nil
}

func cursorReply(ns string, docs []*Doc, batchSize int, single bool) *Doc {
	first, rest := batch(docs, batchSize)
	id := int64(0)
	if len(rest) > 0 && !single {
		id = cursorIDs.Add(1)
		cursorMu.Lock()
		cursors[id] = &cursor{ns: ns, docs: rest, used: time.Now()}
		cursorMu.Unlock()
	}
	return ok("cursor", D("firstBatch", docArray(first), "id", id, "ns", ns))
}

func docArray(docs []*Doc) Array {
	a := make(Array, len(docs))
	for i, d := range docs {
		a[i] = d
	}
	return a
}

func cmdGetMore(x *ctx) (*Doc, error) {
	id, _, _, _ := number(x.cmd.E[0].V)
	cursorMu.Lock()
	defer cursorMu.Unlock()
	c := cursors[id]
	if c == nil {
		return nil, cmdErr(43, "CursorNotFound", fmt.Sprintf("cursor id %d not found", id))
	}
	next, rest := batch(c.docs, int(x.intArg("batchSize")))
	if len(rest) == 0 {
		delete(cursors, id)
		id = 0
	} else {
		c.docs, c.used = rest, time.Now()
	}
	return ok("cursor", D("nextBatch", docArray(next), "id", id, "ns", c.ns)), nil
}

func cmdKillCursors(x *ctx) (*Doc, error) {
	ids, _ := x.arg("cursors").(Array)
	killed, missing := Array{}, Array{}
	cursorMu.Lock()
	for _, v := range ids {
		id, _, _, _ := number(v)
		if _, there := cursors[id]; there {
			delete(cursors, id)
			killed = append(killed, id)
		} else {
			missing = append(missing, id)
		}
	}
	cursorMu.Unlock()
	return ok("cursorsKilled", killed, "cursorsNotFound", missing, "cursorsAlive", Array{},
		"cursorsUnknown", Array{}), nil
}

// expireCursors drops cursors unused for 10 minutes, as MongoDB.
func expireCursors(now time.Time) {
	cursorMu.Lock()
	for id, c := range cursors {
		if now.Sub(c.used) > 10*time.Minute {
			delete(cursors, id)
		}
	}
	cursorMu.Unlock()
}

// --- reads ------------------------------------------------------------------------------

// read runs a filter on a collection, read-locked: the documents.
func (x *ctx) read(coll string, f *filter, keys []sortKey, skip, limit int) []*Doc {
	c := x.s.store.coll(x.db, coll, false)
	if c == nil {
		return nil
	}
	c.mu.RLock()
	es, auto := c.query(f, keys, skip, limit)
	docs := make([]*Doc, len(es))
	for i, e := range es {
		docs[i] = e.doc
	}
	c.mu.RUnlock()
	if auto != "" {
		c.autoIndex(auto)
	}
	return docs
}

func (x *ctx) filterArg(key string) (*filter, error) {
	q, err := x.docArg(key)
	if err != nil {
		return nil, err
	}
	return compileFilter(q)
}

func cmdFind(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	f, err := x.filterArg("filter")
	if err != nil {
		return nil, err
	}
	keys, err := compileSort(x.arg("sort"))
	if err != nil {
		return nil, err
	}
	proj, err := compileProjection(x.arg("projection"))
	if err != nil {
		return nil, err
	}
	limit := x.intArg("limit")
	single := truthy(x.arg("singleBatch"))
	if limit < 0 {
		limit, single = -limit, true
	}
	docs := x.read(coll, f, keys, int(x.intArg("skip")), int(limit))
	if proj != nil {
		for i, d := range docs {
			docs[i] = proj.apply(d)
		}
	}
	return cursorReply(x.ns(coll), docs, int(x.intArg("batchSize")), single), nil
}

func cmdCount(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	f, err := x.filterArg("query")
	if err != nil {
		return nil, err
	}
	n := len(x.read(coll, f, nil, int(x.intArg("skip")), int(abs(x.intArg("limit")))))
	return ok("n", int32(n)), nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func cmdDistinct(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	key, _ := x.arg("key").(string)
	f, err := x.filterArg("query")
	if err != nil {
		return nil, err
	}
	var vals Array
	path := splitPath(key)
	for _, d := range x.read(coll, f, nil, 0, 0) {
		for _, v := range lookupPath(d, path, nil) {
			items := Array{v}
			if a, isArr := v.(Array); isArr {
				items = a
			}
			for _, it := range items {
				if !(eqP{it}).test([]any{vals}) || len(vals) == 0 {
					vals = append(vals, it)
				}
			}
		}
	}
	if vals == nil {
		vals = Array{}
	}
	return ok("values", vals), nil
}

// --- writes -----------------------------------------------------------------------------

// writeError: an entry of writeErrors.
func writeError(i int, err error) *Doc {
	ce, isCmd := err.(*cmdError)
	if !isCmd {
		ce = cmdErr(1, "InternalError", err.Error())
	}
	d := D("index", int32(i), "code", ce.Code, "errmsg", ce.Msg)
	if ce.Info != nil {
		d.E = append(d.E, ce.Info.E...)
	}
	return d
}

func (x *ctx) ordered() bool {
	v, present := x.cmd.Get("ordered")
	return !present || truthy(v)
}

// statements: the array of a write command (documents, updates, deletes).
func (x *ctx) statements(key string) ([]*Doc, error) {
	arr, ok := x.arg(key).(Array)
	if !ok {
		return nil, cmdErr(9, "FailedToParse", fmt.Sprintf("'%s' must be an array", key))
	}
	out := make([]*Doc, len(arr))
	for i, v := range arr {
		d, isDoc := v.(*Doc)
		if !isDoc {
			return nil, cmdErr(14, "TypeMismatch", fmt.Sprintf("'%s.%d' must be an object", key, i))
		}
		out[i] = d
	}
	return out, nil
}

// writeReply: n, nModified, upserted and writeErrors as MongoDB answers.
func writeReply(n int, extra []Elem, errs Array) *Doc {
	d := D("n", int32(n))
	d.E = append(d.E, extra...)
	if len(errs) > 0 {
		d.E = append(d.E, Elem{"writeErrors", errs})
	}
	d.E = append(d.E, Elem{"ok", 1.0})
	return d
}

// own copies a document out of the message buffer it was read from.
func own(d *Doc) *Doc {
	if d.raw == nil {
		return d.Clone()
	}
	o, err := decodeDoc(bytes.Clone(d.raw))
	if err != nil {
		return d.Clone()
	}
	return o
}

// writes runs a write command's statements (key: documents, updates,
// deletes) in order, the collection locked; a statement's error is an
// entry of writeErrors, and stops an ordered command.
func (x *ctx) writes(key string, create bool, each func(c *Collection, i int, st *Doc) error) (Array, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	sts, err := x.statements(key)
	if err != nil {
		return nil, err
	}
	c := x.s.store.coll(x.db, coll, create)
	if c == nil {
		return nil, nil
	}
	ordered := x.ordered()
	var errs Array
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, st := range sts {
		if err := each(c, i, st); err != nil {
			errs = append(errs, writeError(i, err))
			if ordered {
				break
			}
		}
	}
	return errs, nil
}

func cmdInsert(x *ctx) (*Doc, error) {
	n := 0
	errs, err := x.writes("documents", true, func(c *Collection, _ int, d *Doc) error {
		if _, err := c.insert(own(d)); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return writeReply(n, nil, errs), nil
}

func cmdUpdate(x *ctx) (*Doc, error) {
	matched, modified := 0, 0
	var upserted Array
	errs, err := x.writes("updates", true, func(c *Collection, i int, st *Doc) error {
		m, mod, id, err := c.updateOne(st)
		matched += m
		modified += mod
		if id != nil {
			upserted = append(upserted, D("index", int32(i), "_id", id))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	extra := []Elem{{"nModified", int32(modified)}}
	if len(upserted) > 0 {
		extra = append(extra, Elem{"upserted", upserted})
	}
	return writeReply(matched+len(upserted), extra, errs), nil
}

// updateOne runs one update statement {q, u, upsert, multi} (locked):
// matched, modified, the upserted _id.
func (c *Collection) updateOne(st *Doc) (int, int, any, error) {
	q, _ := st.Get("q")
	qd, _ := q.(*Doc)
	u, _ := st.Get("u")
	ud, isDoc := u.(*Doc)
	if !isDoc {
		return 0, 0, nil, cmdErr(9, "FailedToParse",
			"the stand-in does not run pipeline updates")
	}
	f, err := compileFilter(qd)
	if err != nil {
		return 0, 0, nil, err
	}
	limit := 1
	if truthy(getOr(st, "multi")) {
		limit = 0
	}
	es, _ := c.query(f, nil, 0, limit)
	if len(es) == 0 {
		if !truthy(getOr(st, "upsert")) {
			return 0, 0, nil, nil
		}
		nd, err := upsertDoc(qd, ud)
		if err != nil {
			return 0, 0, nil, err
		}
		e, err := c.insert(nd)
		if err != nil {
			return 0, 0, nil, err
		}
		id, _ := e.doc.Get("_id")
		return 0, 0, id, nil
	}
	modified := 0
	for _, e := range es {
		nd, err := applyUpdate(e.doc, ud, false)
		if err != nil {
			return 0, modified, nil, err
		}
		if bytes.Equal(nd.Raw(), e.doc.Raw()) {
			continue
		}
		if err := c.replace(e, nd); err != nil {
			return 0, modified, nil, err
		}
		modified++
	}
	return len(es), modified, nil, nil
}

func cmdDelete(x *ctx) (*Doc, error) {
	n := 0
	errs, err := x.writes("deletes", false, func(c *Collection, _ int, st *Doc) error {
		q, _ := st.Get("q")
		qd, _ := q.(*Doc)
		f, err := compileFilter(qd)
		if err != nil {
			return err
		}
		lim, _, _, _ := number(getOr(st, "limit"))
		es, _ := c.query(f, nil, 0, int(lim))
		for _, e := range es {
			c.remove(e)
		}
		n += len(es)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return writeReply(n, nil, errs), nil
}

func cmdFindAndModify(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	qd, err := x.docArg("query")
	if err != nil {
		return nil, err
	}
	f, err := compileFilter(qd)
	if err != nil {
		return nil, err
	}
	keys, err := compileSort(x.arg("sort"))
	if err != nil {
		return nil, err
	}
	pv := x.arg("fields")
	if pv == nil {
		pv = x.arg("projection")
	}
	proj, err := compileProjection(pv)
	if err != nil {
		return nil, err
	}
	remove := truthy(x.arg("remove"))
	upsert := truthy(x.arg("upsert"))
	ud, _ := x.arg("update").(*Doc)
	if !remove && ud == nil {
		return nil, cmdErr(9, "FailedToParse", "Either an update or remove=true must be specified")
	}
	c := x.s.store.coll(x.db, coll, !remove)
	if c == nil {
		return ok("lastErrorObject", D("n", int32(0)), "value", nil), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	es, _ := c.query(f, keys, 0, 1)
	leo := D("n", int32(0))
	var value *Doc
	switch {
	case remove:
		if len(es) > 0 {
			c.remove(es[0])
			value = es[0].doc
			leo = D("n", int32(1))
		}
	case len(es) > 0:
		e := es[0]
		nd, err := applyUpdate(e.doc, ud, false)
		if err != nil {
			return nil, err
		}
		value = e.doc
		if err := c.replace(e, nd); err != nil {
			return nil, err
		}
		if truthy(x.arg("new")) {
			value = nd
		}
		leo = D("n", int32(1), "updatedExisting", true)
	case upsert:
		nd, err := upsertDoc(qd, ud)
		if err != nil {
			return nil, err
		}
		e, err := c.insert(nd)
		if err != nil {
			return nil, err
		}
		id, _ := e.doc.Get("_id")
		leo = D("n", int32(1), "updatedExisting", false, "upserted", id)
		if truthy(x.arg("new")) {
			value = e.doc
		}
	default:
		leo = D("n", int32(0), "updatedExisting", false)
	}
	var v any
	if value != nil {
		v = proj.apply(value)
	}
	return ok("lastErrorObject", leo, "value", v), nil
}

// --- aggregate: $match, $sort, $skip, $limit, $project, $count, $group ----------------

func cmdAggregate(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, cmdErr(59, "CommandNotFound", "the stand-in runs aggregate on a collection only")
	}
	stages, _ := x.arg("pipeline").(Array)
	var docs []*Doc
	started := false
	for i, sv := range stages {
		st, isDoc := sv.(*Doc)
		if !isDoc || len(st.E) != 1 {
			return nil, cmdErr(40323, "Location40323",
				"A pipeline stage specification object must contain exactly one field.")
		}
		name, arg := st.E[0].K, st.E[0].V
		if !started {
			q, _ := arg.(*Doc)
			if name != "$match" {
				q = nil
			}
			f, err := compileFilter(q)
			if err != nil {
				return nil, err
			}
			docs, started = x.read(coll, f, nil, 0, 0), true
			if name == "$match" {
				continue
			}
		}
		if docs, err = stage(name, arg, docs); err != nil {
			if ce, isCmd := err.(*cmdError); isCmd && ce.Code == 40324 {
				if _, seen := unknownSeen.LoadOrStore("aggregate "+name, true); !seen {
					log.Printf("aggregate: stage %d, %s, is not supported: answered code 40324", i, name)
				}
			}
			return nil, err
		}
	}
	if !started {
		docs = x.read(coll, &filter{m: allM{}}, nil, 0, 0)
	}
	bs := 0
	if cur, isDoc := x.arg("cursor").(*Doc); isDoc {
		n, _, _, _ := number(getOr(cur, "batchSize"))
		bs = int(n)
	}
	return cursorReply(x.ns(coll), docs, bs, false), nil
}

func stage(name string, arg any, docs []*Doc) ([]*Doc, error) {
	switch name {
	case "$match":
		q, _ := arg.(*Doc)
		f, err := compileFilter(q)
		if err != nil {
			return nil, err
		}
		var out []*Doc
		for _, d := range docs {
			if f.m.match(d) {
				out = append(out, d)
			}
		}
		return out, nil
	case "$sort":
		keys, err := compileSort(arg)
		if err != nil {
			return nil, err
		}
		out := append([]*Doc{}, docs...)
		sort.SliceStable(out, func(i, j int) bool { return compareBy(keys, out[i], out[j]) < 0 })
		return out, nil
	case "$skip", "$limit":
		n, _, _, _ := number(arg)
		if name == "$skip" {
			if int(n) >= len(docs) {
				return nil, nil
			}
			return docs[n:], nil
		}
		if int(n) < len(docs) {
			return docs[:n], nil
		}
		return docs, nil
	case "$project", "$unset":
		if name == "$unset" {
			arg = unsetSpec(arg)
		}
		p, err := compileProjection(arg)
		if err != nil {
			return nil, err
		}
		out := make([]*Doc, len(docs))
		for i, d := range docs {
			out[i] = p.apply(d)
		}
		return out, nil
	case "$count":
		field, _ := arg.(string)
		if len(docs) == 0 {
			return nil, nil
		}
		return []*Doc{D(field, int32(len(docs)))}, nil
	case "$group":
		spec, _ := arg.(*Doc)
		return group(spec, docs)
	}
	return nil, cmdErr(40324, "Location40324", "Unrecognized pipeline stage name: '"+name+"'")
}

func unsetSpec(arg any) *Doc {
	d := &Doc{}
	names, isArr := arg.(Array)
	if !isArr {
		names = Array{arg}
	}
	for _, n := range names {
		if s, isStr := n.(string); isStr {
			d.E = append(d.E, Elem{s, int32(0)})
		}
	}
	return d
}

// fieldRef: the value of "$a.b" in d, or a constant.
func fieldRef(d *Doc, v any) any {
	if s, isStr := v.(string); isStr && strings.HasPrefix(s, "$") {
		r, _ := getPath(d, splitPath(s[1:]))
		return r
	}
	return v
}

// group: $group with _id a constant or a field, and $sum, $min, $max,
// $first, $last, $avg, $push of a field or a constant.
func group(spec *Doc, docs []*Doc) ([]*Doc, error) {
	if spec == nil {
		return nil, badValue("$group needs a document")
	}
	idSpec, _ := spec.Get("_id")
	type acc struct {
		id    any
		vals  []any
		count []int
	}
	var order []string
	groups := map[string]*acc{}
	n := len(spec.E) - 1
	for _, d := range docs {
		id := fieldRef(d, idSpec)
		k := valueKey(id)
		g := groups[k]
		if g == nil {
			g = &acc{id: id, vals: make([]any, n), count: make([]int, n)}
			groups[k] = g
			order = append(order, k)
		}
		j := 0
		for _, e := range spec.E {
			if e.K == "_id" {
				continue
			}
			op, isDoc := e.V.(*Doc)
			if !isDoc || len(op.E) != 1 {
				return nil, badValue("$group field %s needs an accumulator", e.K)
			}
			v := fieldRef(d, op.E[0].V)
			cur := g.vals[j]
			switch op.E[0].K {
			case "$sum", "$avg":
				if _, _, _, isNum := number(v); isNum {
					if cur == nil {
						cur = int32(0)
					}
					cur = addNumbers(cur, v)
					g.count[j]++
				}
			case "$min", "$max":
				if v != nil && (cur == nil || (compareValues(v, cur) < 0) == (op.E[0].K == "$min")) {
					cur = v
				}
			case "$first":
				if g.count[j] == 0 {
					cur = v
				}
				g.count[j]++
			case "$last":
				cur = v
			case "$push":
				a, _ := cur.(Array)
				cur = append(a, v)
			default:
				return nil, cmdErr(15952, "Location15952", "unknown group operator '"+op.E[0].K+"'")
			}
			g.vals[j] = cur
			j++
		}
	}
	out := make([]*Doc, 0, len(order))
	for _, k := range order {
		g := groups[k]
		d := D("_id", g.id)
		j := 0
		for _, e := range spec.E {
			if e.K == "_id" {
				continue
			}
			v := g.vals[j]
			op := e.V.(*Doc).E[0].K
			if op == "$sum" && v == nil {
				v = int32(0)
			}
			if op == "$avg" && g.count[j] > 0 {
				_, f, _, _ := number(v)
				v = f / float64(g.count[j])
			}
			d.E = append(d.E, Elem{e.K, v})
			j++
		}
		out = append(out, d)
	}
	return out, nil
}

// --- collections, indexes, databases -------------------------------------------------

func visibleIndexes(c *Collection) []*index {
	var out []*index
	for _, x := range c.indexes {
		if !x.hidden {
			out = append(out, x)
		}
	}
	return out
}

func idIndexSpec() *Doc {
	return D("v", int32(2), "key", D("_id", int32(1)), "name", "_id_")
}

func cmdCreateIndexes(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	specs, err := x.statements("indexes")
	if err != nil {
		return nil, err
	}
	existed := x.s.store.coll(x.db, coll, false) != nil
	c := x.s.store.coll(x.db, coll, true)
	c.mu.Lock()
	defer c.mu.Unlock()
	before := 1 + len(visibleIndexes(c))
	made := 0
	for _, spec := range specs {
		created, err := c.addIndex(spec)
		if err != nil {
			return nil, err
		}
		if created {
			made++
		}
	}
	d := ok("numIndexesBefore", int32(before), "numIndexesAfter", int32(1+len(visibleIndexes(c))),
		"createdCollectionAutomatically", !existed)
	if made == 0 {
		d.E = append([]Elem{{"note", "all indexes already exist"}}, d.E...)
	}
	return d, nil
}

// existing: the collection the command names, which must be there.
func (x *ctx) existing() (*Collection, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	c := x.s.store.coll(x.db, coll, false)
	if c == nil {
		return nil, cmdErr(26, "NamespaceNotFound", "ns does not exist: "+x.ns(coll))
	}
	return c, nil
}

func cmdListIndexes(x *ctx) (*Doc, error) {
	c, err := x.existing()
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	docs := []*Doc{idIndexSpec()}
	for _, ix := range visibleIndexes(c) {
		docs = append(docs, ix.spec)
	}
	c.mu.RUnlock()
	return cursorReply(x.ns(c.name), docs, 0, false), nil
}

func cmdDropIndexes(x *ctx) (*Doc, error) {
	c, err := x.existing()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	was := 1 + len(visibleIndexes(c))
	var names []string
	switch v := x.arg("index").(type) {
	case string:
		names = []string{v}
	case Array:
		for _, n := range v {
			if s, isStr := n.(string); isStr {
				names = append(names, s)
			}
		}
	case *Doc:
		for _, ix := range c.indexes {
			if compareDocs(ix.spec.E[1].V.(*Doc), v) == 0 {
				names = append(names, ix.name)
			}
		}
		if names == nil {
			return nil, cmdErr(27, "IndexNotFound", "can't find index with key: "+fmtValue(v))
		}
	}
	for _, n := range names {
		if n == "*" {
			_ = c.rebuild(nil)
			break
		}
		if n == "_id_" {
			return nil, cmdErr(72, "InvalidOptions", "cannot drop _id index")
		}
		i := c.findIndex(n)
		if i < 0 {
			return nil, cmdErr(27, "IndexNotFound", "index not found with name ["+n+"]")
		}
		c.dropIndex(i)
	}
	return ok("nIndexesWas", int32(was)), nil
}

func collectionInfo(c *Collection) *Doc {
	return D("name", c.name, "type", "collection", "options", D(),
		"info", D("readOnly", false), "idIndex", idIndexSpec())
}

func cmdListCollections(x *ctx) (*Doc, error) {
	f, err := x.filterArg("filter")
	if err != nil {
		return nil, err
	}
	var docs []*Doc
	if d := x.s.store.database(x.db); d != nil {
		for _, c := range d.collections() {
			info := collectionInfo(c)
			if !f.m.match(info) {
				continue
			}
			if truthy(x.arg("nameOnly")) {
				info = D("name", c.name, "type", "collection")
			}
			docs = append(docs, info)
		}
	}
	return cursorReply(x.db+".$cmd.listCollections", docs, 0, false), nil
}

func cmdListDatabases(x *ctx) (*Doc, error) {
	var dbs Array
	for _, name := range x.s.store.databaseNames() {
		if truthy(x.arg("nameOnly")) {
			dbs = append(dbs, D("name", name))
		} else {
			dbs = append(dbs, D("name", name, "sizeOnDisk", 0.0, "empty", false))
		}
	}
	if dbs == nil {
		dbs = Array{}
	}
	return ok("databases", dbs, "totalSize", 0.0, "totalSizeMb", int64(0)), nil
}

func cmdDrop(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	c := x.s.store.dropCollection(x.db, coll)
	was := int32(0)
	if c != nil {
		c.mu.RLock()
		was = int32(1 + len(visibleIndexes(c)))
		c.mu.RUnlock()
	}
	return ok("nIndexesWas", was, "ns", x.ns(coll)), nil
}

func cmdDropDatabase(x *ctx) (*Doc, error) {
	x.s.store.dropDatabase(x.db)
	return ok("dropped", x.db), nil
}

func cmdCreate(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	if x.s.store.coll(x.db, coll, false) != nil {
		return nil, cmdErr(48, "NamespaceExists", "Collection "+x.ns(coll)+" already exists.")
	}
	x.s.store.coll(x.db, coll, true)
	return ok(), nil
}

func cmdCollStats(x *ctx) (*Doc, error) {
	coll, err := x.collName()
	if err != nil {
		return nil, err
	}
	n, size, nix := 0, 0, 1
	if c := x.s.store.coll(x.db, coll, false); c != nil {
		c.mu.RLock()
		n, nix = c.count(), 1+len(visibleIndexes(c))
		for _, e := range c.byID {
			size += len(e.doc.Raw())
		}
		c.mu.RUnlock()
	}
	return ok("ns", x.ns(coll), "count", int32(n), "size", int64(size),
		"storageSize", int64(size), "nindexes", int32(nix)), nil
}

func cmdDBStats(x *ctx) (*Doc, error) {
	colls, objects := 0, 0
	if d := x.s.store.database(x.db); d != nil {
		for _, c := range d.collections() {
			c.mu.RLock()
			objects += c.count()
			c.mu.RUnlock()
			colls++
		}
	}
	return ok("db", x.db, "collections", int32(colls), "objects", int64(objects)), nil
}
