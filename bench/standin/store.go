// The collections in memory: documents in insertion order, a map by _id,
// and the indexes clients create, each a hash of its first field's value
// to the documents that have it, sorted by the index's other fields (so a
// queue's page is a walk of its bucket in marker order).
package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// entry is one stored document.  Its Doc is never changed once stored:
// an update stores a new one, so a reader may use a Doc after unlocking.
type entry struct {
	doc   *Doc
	seq   uint64
	dead  bool
	ikeys [][]any // per index of the collection: the values of its fields
}

type index struct {
	name    string
	spec    *Doc // as listIndexes shows it
	fields  []sortKey
	unique  bool
	sparse  bool
	ttl     int64 // expireAfterSeconds; -1: none
	hidden  bool  // made by the stand-in for a scan it saw, not listed
	multi   bool  // some document has an array in the first field: not used to plan
	buckets map[string]*bucket
	uniq    map[string]*entry
}

// bucket: the entries that share the index's first field, sorted by its
// other fields, then by insertion.
type bucket struct {
	items []*entry
}

type Collection struct {
	mu      sync.RWMutex
	db      string
	name    string
	byID    map[string]*entry
	order   []*entry
	dead    int
	seq     uint64
	indexes []*index
}

type DB struct {
	mu    sync.RWMutex
	name  string
	colls map[string]*Collection
}

type Store struct {
	mu  sync.RWMutex
	dbs map[string]*DB
}

func newStore() *Store {
	return &Store{dbs: map[string]*DB{}}
}

// coll returns the collection, made if create; nil if it is not there.
func (s *Store) coll(db, name string, create bool) *Collection {
	s.mu.RLock()
	d := s.dbs[db]
	s.mu.RUnlock()
	if d == nil {
		if !create {
			return nil
		}
		s.mu.Lock()
		if d = s.dbs[db]; d == nil {
			d = &DB{name: db, colls: map[string]*Collection{}}
			s.dbs[db] = d
		}
		s.mu.Unlock()
	}
	d.mu.RLock()
	c := d.colls[name]
	d.mu.RUnlock()
	if c == nil && create {
		d.mu.Lock()
		if c = d.colls[name]; c == nil {
			c = &Collection{db: db, name: name, byID: map[string]*entry{}}
			d.colls[name] = c
		}
		d.mu.Unlock()
	}
	return c
}

func (s *Store) database(name string) *DB {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dbs[name]
}

func (s *Store) dropCollection(db, name string) *Collection {
	d := s.database(db)
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.colls[name]
	delete(d.colls, name)
	return c
}

func (s *Store) dropDatabase(db string) {
	s.mu.Lock()
	delete(s.dbs, db)
	s.mu.Unlock()
}

func (s *Store) databaseNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for n := range s.dbs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (d *DB) collections() []*Collection {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]*Collection, 0, len(d.colls))
	for _, c := range d.colls {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (c *Collection) count() int {
	return len(c.byID)
}

// --- ObjectIds -------------------------------------------------------------------

var oidProcess [5]byte
var oidCounter atomic.Uint32

func init() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	copy(oidProcess[:], b[:5])
	oidCounter.Store(binary.LittleEndian.Uint32(b[4:]))
}

func newObjectID() ObjectID {
	var o ObjectID
	binary.BigEndian.PutUint32(o[:], uint32(time.Now().Unix()))
	copy(o[4:9], oidProcess[:])
	n := oidCounter.Add(1)
	o[9], o[10], o[11] = byte(n>>16), byte(n>>8), byte(n)
	return o
}

// --- indexes ------------------------------------------------------------------------

func (x *index) keysOf(d *Doc) []any {
	ks := make([]any, len(x.fields))
	for i, f := range x.fields {
		ks[i], _ = getPath(d, f.path)
	}
	return ks
}

func (x *index) skips(d *Doc) bool {
	if !x.sparse {
		return false
	}
	for _, f := range x.fields {
		if _, ok := getPath(d, f.path); ok {
			return false
		}
	}
	return true
}

func uniqKey(ks []any) string {
	var b []byte
	for _, k := range ks {
		b = appendKey(b, k)
		b = append(b, 0)
	}
	return string(b)
}

// before: whether a sorts before b in the index's buckets.
func (x *index) before(a, b *entry, ak, bk []any) bool {
	for i := 1; i < len(x.fields); i++ {
		c := compareValues(ak[i], bk[i])
		if x.fields[i].desc {
			c = -c
		}
		if c != 0 {
			return c < 0
		}
	}
	return a.seq < b.seq
}

func (x *index) pos(bk *bucket, e *entry, ks []any, pos int) int {
	return sort.Search(len(bk.items), func(i int) bool {
		o := bk.items[i]
		return !x.before(o, e, o.ikeys[pos], ks)
	})
}

func (x *index) add(e *entry, pos int) {
	ks := e.ikeys[pos]
	if ks == nil {
		return
	}
	if _, isArr := ks[0].(Array); isArr {
		x.multi = true
	}
	k := valueKey(ks[0])
	bk := x.buckets[k]
	if bk == nil {
		bk = &bucket{}
		x.buckets[k] = bk
	}
	i := len(bk.items)
	if i > 0 && x.before(e, bk.items[i-1], ks, bk.items[i-1].ikeys[pos]) {
		i = x.pos(bk, e, ks, pos)
	}
	bk.items = append(bk.items, nil)
	copy(bk.items[i+1:], bk.items[i:])
	bk.items[i] = e
	if x.unique {
		x.uniq[uniqKey(ks)] = e
	}
}

func (x *index) remove(e *entry, pos int) {
	ks := e.ikeys[pos]
	if ks == nil {
		return
	}
	k := valueKey(ks[0])
	bk := x.buckets[k]
	if bk != nil {
		i := x.pos(bk, e, ks, pos)
		for ; i < len(bk.items); i++ {
			if bk.items[i] == e {
				bk.items = append(bk.items[:i], bk.items[i+1:]...)
				break
			}
		}
		if len(bk.items) == 0 {
			delete(x.buckets, k)
		}
	}
	if x.unique {
		if u := uniqKey(ks); x.uniq[u] == e {
			delete(x.uniq, u)
		}
	}
}

func (c *Collection) dupError(x *index, ks []any) *cmdError {
	var parts []string
	pattern, value := &Doc{}, &Doc{}
	for i, f := range x.fields {
		parts = append(parts, f.name+": "+fmtValue(ks[i]))
		pattern.E = append(pattern.E, Elem{f.name, int32(1)})
		value.E = append(value.E, Elem{f.name, ks[i]})
	}
	e := cmdErr(11000, "DuplicateKey", fmt.Sprintf(
		"E11000 duplicate key error collection: %s.%s index: %s dup key: { %s }",
		c.db, c.name, x.name, strings.Join(parts, ", ")))
	e.Info = D("keyPattern", pattern, "keyValue", value)
	return e
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case ObjectID:
		return fmt.Sprintf("ObjectId('%x')", x[:])
	case nil:
		return "null"
	case *Doc:
		var parts []string
		for _, e := range x.E {
			parts = append(parts, e.K+": "+fmtValue(e.V))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return fmt.Sprint(v)
}

// rebuild recomputes every entry's index keys and every index (after an
// index is added or dropped).  Fails, changing nothing, on a duplicate.
func (c *Collection) rebuild(indexes []*index) error {
	for _, x := range indexes {
		x.buckets = map[string]*bucket{}
		x.uniq = map[string]*entry{}
		x.multi = false
	}
	keys := make(map[*entry][][]any, len(c.byID))
	for _, e := range c.order {
		if e.dead {
			continue
		}
		ks := make([][]any, len(indexes))
		for i, x := range indexes {
			if x.skips(e.doc) {
				continue
			}
			ks[i] = x.keysOf(e.doc)
			if x.unique {
				u := uniqKey(ks[i])
				if _, dup := x.uniq[u]; dup {
					return c.dupError(x, ks[i])
				}
				x.uniq[u] = e
			}
		}
		keys[e] = ks
	}
	for e, ks := range keys {
		e.ikeys = ks
	}
	c.indexes = indexes
	for i, x := range indexes {
		x.uniq = map[string]*entry{}
		for _, e := range c.order {
			if !e.dead {
				x.add(e, i)
			}
		}
	}
	return nil
}

func (c *Collection) findIndex(name string) int {
	for i, x := range c.indexes {
		if x.name == name {
			return i
		}
	}
	return -1
}

// addIndex creates an index from its specification (createIndexes).
func (c *Collection) addIndex(spec *Doc) (created bool, err error) {
	key, _ := spec.Get("key")
	kd, ok := key.(*Doc)
	if !ok || len(kd.E) == 0 {
		return false, cmdErr(67, "CannotCreateIndex", "index specification needs a key")
	}
	fields, err := compileSort(kd)
	if err != nil || len(fields) != len(kd.E) {
		fields = nil // text, hashed, 2d: kept for listIndexes, not used
		for _, e := range kd.E {
			fields = append(fields, sortKey{splitPath(e.K), e.K, false})
		}
	}
	name, _ := spec.Get("name")
	nm, _ := name.(string)
	if nm == "" {
		var parts []string
		for _, e := range kd.E {
			parts = append(parts, e.K+"_"+fmt.Sprint(e.V))
		}
		nm = strings.Join(parts, "_")
	}
	if len(kd.E) == 1 && kd.E[0].K == "_id" {
		return false, nil
	}
	for _, x := range c.indexes {
		same := compareDocs(x.spec.E[1].V.(*Doc), kd) == 0
		if x.name == nm && same {
			return false, nil
		}
		if x.hidden && same {
			x.hidden, x.name, x.spec = false, nm, indexSpec(kd, nm, spec)
			x.unique = truthy(getOr(spec, "unique"))
			return true, c.rebuild(c.indexes)
		}
		if x.name == nm {
			return false, cmdErr(86, "IndexKeySpecsConflict",
				"An existing index has the same name as the requested index but different keys: "+nm)
		}
		if same && !x.hidden {
			return false, cmdErr(85, "IndexOptionsConflict",
				"Index already exists with a different name: "+x.name)
		}
	}
	x := &index{name: nm, fields: fields, unique: truthy(getOr(spec, "unique")),
		sparse: truthy(getOr(spec, "sparse")), ttl: -1, spec: indexSpec(kd, nm, spec)}
	if t, _, _, ok := number(getOr(spec, "expireAfterSeconds")); ok {
		x.ttl = t
	} else if _, f, _, ok := number(getOr(spec, "expireAfterSeconds")); ok {
		x.ttl = int64(f)
	}
	indexes := append(append([]*index{}, c.indexes...), x)
	if err := c.rebuild(indexes); err != nil {
		_ = c.rebuild(c.indexes[:len(c.indexes):len(c.indexes)])
		return false, err
	}
	return true, nil
}

func indexSpec(key *Doc, name string, spec *Doc) *Doc {
	out := D("v", int32(2), "key", key, "name", name)
	for _, e := range spec.E {
		switch e.K {
		case "key", "name", "v", "ns", "background":
		default:
			out.E = append(out.E, e)
		}
	}
	return out
}

func getOr(d *Doc, key string) any {
	v, _ := d.Get(key)
	return v
}

func (c *Collection) dropIndex(i int) {
	indexes := append(append([]*index{}, c.indexes[:i]...), c.indexes[i+1:]...)
	_ = c.rebuild(indexes)
}

// autoIndex: a hidden index on field, for equality finds that scanned
// a large collection.
func (c *Collection) autoIndex(field string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.indexes {
		if x.fields[0].name == field {
			return
		}
	}
	kd := D(field, int32(1))
	name := "standin_" + field
	x := &index{name: name, fields: []sortKey{{splitPath(field), field, false}},
		ttl: -1, hidden: true, spec: indexSpec(kd, name, D())}
	_ = c.rebuild(append(append([]*index{}, c.indexes...), x))
}

// --- writes (the collection locked) -------------------------------------------------

// insert stores a document (given _id first if it has none).
func (c *Collection) insert(d *Doc) (*entry, error) {
	id, ok := d.Get("_id")
	if !ok {
		id = newObjectID()
		d = &Doc{E: append([]Elem{{"_id", id}}, d.E...)}
	} else if _, isArr := id.(Array); isArr {
		return nil, badValue("can't use an array for _id")
	}
	idk := valueKey(id)
	if _, dup := c.byID[idk]; dup {
		return nil, c.dupError(&index{name: "_id_", fields: []sortKey{{name: "_id"}}}, []any{id})
	}
	d.Raw()
	c.seq++
	e := &entry{doc: d, seq: c.seq, ikeys: make([][]any, len(c.indexes))}
	for i, x := range c.indexes {
		if x.skips(d) {
			continue
		}
		e.ikeys[i] = x.keysOf(d)
		if x.unique {
			if _, dup := x.uniq[uniqKey(e.ikeys[i])]; dup {
				return nil, c.dupError(x, e.ikeys[i])
			}
		}
	}
	c.byID[idk] = e
	c.order = append(c.order, e)
	for i, x := range c.indexes {
		x.add(e, i)
	}
	return e, nil
}

func (c *Collection) remove(e *entry) {
	id, _ := e.doc.Get("_id")
	delete(c.byID, valueKey(id))
	for i, x := range c.indexes {
		x.remove(e, i)
	}
	e.dead = true
	c.dead++
	if c.dead > 1024 && c.dead > len(c.order)/2 {
		live := make([]*entry, 0, len(c.order)-c.dead)
		for _, x := range c.order {
			if !x.dead {
				live = append(live, x)
			}
		}
		c.order, c.dead = live, 0
	}
}

// replace stores d as e's document, moving it in the indexes whose keys
// changed.
func (c *Collection) replace(e *entry, d *Doc) error {
	oldID, _ := e.doc.Get("_id")
	newID, ok := d.Get("_id")
	if !ok || !equalValues(oldID, newID) {
		return cmdErr(66, "ImmutableField",
			"Performing an update on the path '_id' would modify the immutable field '_id'")
	}
	d.Raw()
	nk := make([][]any, len(c.indexes))
	for i, x := range c.indexes {
		if x.skips(d) {
			continue
		}
		nk[i] = x.keysOf(d)
		if x.unique {
			if o, dup := x.uniq[uniqKey(nk[i])]; dup && o != e {
				return c.dupError(x, nk[i])
			}
		}
	}
	for i, x := range c.indexes {
		if sameKeys(e.ikeys[i], nk[i]) {
			continue
		}
		x.remove(e, i)
		e.ikeys[i] = nk[i]
		x.add(e, i)
	}
	e.doc = d
	return nil
}

func sameKeys(a, b []any) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if rank(a[i]) != rank(b[i]) || compareValues(a[i], b[i]) != 0 {
			return false
		}
		if typeCode(a[i]) != typeCode(b[i]) {
			return false
		}
	}
	return true
}

// --- reads (the collection read-locked) -----------------------------------------------

// query runs a compiled filter: the matching entries in sort order after
// skip, at most limit (0: all).  autoField: an equality field whose index
// would have spared a long scan.
func (c *Collection) query(f *filter, keys []sortKey, skip, limit int) (out []*entry, autoField string) {
	list, ordered, reverse, full := c.plan(f, keys)
	want := -1
	if limit > 0 {
		want = skip + limit
	}
	n := len(list)
	for j := 0; j < n; j++ {
		i := j
		if reverse {
			i = n - 1 - j
		}
		e := list[i]
		if e.dead || !f.m.match(e.doc) {
			continue
		}
		out = append(out, e)
		if ordered && want > 0 && len(out) >= want {
			break
		}
	}
	if !ordered {
		sortEntries(out, keys)
	}
	if skip > 0 {
		if skip >= len(out) {
			out = nil
		} else {
			out = out[skip:]
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	if full && len(list) > 1000 {
		autoField = pickAutoField(f)
	}
	return out, autoField
}

func pickAutoField(f *filter) string {
	for _, e := range f.eqs {
		switch e.vs[0].(type) {
		case string, ObjectID, int32, int64, float64:
			return e.field
		}
	}
	return ""
}

// plan chooses where to look: one document by _id, an index's bucket
// (in sort order when the index's next fields are the sort), or every
// document in insertion order.
func (c *Collection) plan(f *filter, keys []sortKey) (list []*entry, ordered, reverse, full bool) {
	if id, ok := f.eq("_id"); ok {
		if _, isOp := isOperatorDoc(id); !isOp {
			if e := c.byID[valueKey(id)]; e != nil {
				return []*entry{e}, true, false, false
			}
			return nil, true, false, false
		}
	}
	if ids, ok := findField(f.ins, "_id"); ok {
		for _, id := range ids {
			if e := c.byID[valueKey(id)]; e != nil {
				list = append(list, e)
			}
		}
		return list, len(keys) == 0, false, false
	}
	var best *bucket
	bestOrdered, bestReverse, found := false, false, false
	for _, x := range c.indexes {
		if x.multi {
			continue
		}
		v, ok := f.eq(x.fields[0].name)
		if !ok {
			continue
		}
		if _, isArr := v.(Array); isArr {
			continue
		}
		if _, isOp := isOperatorDoc(v); isOp {
			continue
		}
		bk := x.buckets[valueKey(v)]
		if bk == nil {
			return nil, true, false, false
		}
		ord, rev := sortFollows(x, keys)
		if !found || (ord && !bestOrdered) || (ord == bestOrdered && len(bk.items) < len(best.items)) {
			best, bestOrdered, bestReverse, found = bk, ord, rev, true
		}
	}
	if found {
		return best.items, bestOrdered, bestReverse, false
	}
	return c.order, len(keys) == 0, false, true
}

// sortFollows: whether an index's fields after the first give the sort
// (forwards or all reversed).
func sortFollows(x *index, keys []sortKey) (ordered, reverse bool) {
	if len(keys) == 0 {
		return true, false
	}
	if len(keys) > len(x.fields)-1 {
		return false, false
	}
	for _, dir := range []bool{false, true} {
		good := true
		for i, k := range keys {
			f := x.fields[i+1]
			if f.name != k.name || (f.desc != k.desc) != dir {
				good = false
				break
			}
		}
		if good {
			return true, dir
		}
	}
	return false, false
}

// --- TTL --------------------------------------------------------------------------------

// expire deletes what TTL indexes say has expired, as MongoDB's monitor.
func (s *Store) expire(now time.Time) {
	ms := now.UnixMilli()
	for _, name := range s.databaseNames() {
		d := s.database(name)
		if d == nil {
			continue
		}
		for _, c := range d.collections() {
			c.mu.Lock()
			n := 0
			for _, x := range c.indexes {
				if x.ttl < 0 || len(x.fields) != 1 {
					continue
				}
				for _, e := range c.order {
					if e.dead {
						continue
					}
					v, _ := getPath(e.doc, x.fields[0].path)
					if expiredAt(v, x.ttl, ms) {
						c.remove(e)
						n++
					}
				}
			}
			c.mu.Unlock()
			if n > 0 && verbose {
				log.Printf("ttl: %d documents expired in %s.%s", n, c.db, c.name)
			}
		}
	}
}

func expiredAt(v any, ttl, now int64) bool {
	switch x := v.(type) {
	case DateTime:
		return int64(x)+ttl*1000 <= now
	case Array:
		for _, el := range x {
			if expiredAt(el, ttl, now) {
				return true
			}
		}
	}
	return false
}
