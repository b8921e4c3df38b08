// Query filters, sort specifications and projections.
package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// cmdError is a command's failure: MongoDB's code, code name and text.
type cmdError struct {
	Code int32
	Name string
	Msg  string
	Info *Doc // more fields for the error document (keyPattern, keyValue)
}

func (e *cmdError) Error() string { return e.Msg }

func badValue(format string, a ...any) *cmdError {
	return &cmdError{Code: 2, Name: "BadValue", Msg: fmt.Sprintf(format, a...)}
}

// matcher is a compiled filter.
type matcher interface {
	match(d *Doc) bool
}

type andM []matcher
type orM []matcher
type norM []matcher
type allM struct{}

func (m andM) match(d *Doc) bool {
	for _, x := range m {
		if !x.match(d) {
			return false
		}
	}
	return true
}

func (m orM) match(d *Doc) bool {
	for _, x := range m {
		if x.match(d) {
			return true
		}
	}
	return false
}

func (m norM) match(d *Doc) bool { return !orM(m).match(d) }

func (allM) match(*Doc) bool { return true }

// fieldM: every predicate holds for the values at path.
type fieldM struct {
	path  []string
	preds []pred
	buf   []any  // the values found, reused: a filter is used by one command
	arr   [2]any // buf's first array
}

func (m *fieldM) match(d *Doc) bool {
	if m.buf == nil {
		m.buf = m.arr[:0]
	}
	vals := lookupPath(d, m.path, m.buf[:0])
	m.buf = vals
	for _, p := range m.preds {
		if !p.test(vals) {
			return false
		}
	}
	return true
}

// lookupPath appends the values at a dotted path to out; through an array
// on the way, each of its documents is followed (MongoDB's implicit array
// traversal).  None: the field is missing.
func lookupPath(d *Doc, path []string, out []any) []any {
	v, ok := d.Get(path[0])
	if !ok {
		return out
	}
	if len(path) == 1 {
		return append(out, v)
	}
	switch x := v.(type) {
	case *Doc:
		return lookupPath(x, path[1:], out)
	case Array:
		if i, err := strconv.Atoi(path[1]); err == nil {
			if i >= 0 && i < len(x) {
				if len(path) == 2 {
					return append(out, x[i])
				}
				if sub, ok := x[i].(*Doc); ok {
					return lookupPath(sub, path[2:], out)
				}
			}
			return out
		}
		for _, el := range x {
			if sub, ok := el.(*Doc); ok {
				out = lookupPath(sub, path[1:], out)
			}
		}
	}
	return out
}

// getPath: the value at a dotted path without array traversal (sort keys,
// index keys, updates); missing is (nil, false).
func getPath(d *Doc, path []string) (any, bool) {
	var cur any = d
	for _, k := range path {
		switch x := cur.(type) {
		case *Doc:
			v, ok := x.Get(k)
			if !ok {
				return nil, false
			}
			cur = v
		case Array:
			n, err := strconv.Atoi(k)
			if err != nil || n < 0 || n >= len(x) {
				return nil, false
			}
			cur = x[n]
		default:
			return nil, false
		}
	}
	return cur, true
}

var paths sync.Map
var pathCount atomic.Int32

// splitPath: a dotted path's parts, shared (callers do not change them).
func splitPath(s string) []string {
	if p, ok := paths.Load(s); ok {
		return p.([]string)
	}
	s = strings.Clone(s) // not the message's bytes: kept
	p := strings.Split(s, ".")
	if pathCount.Add(1) < 100000 {
		paths.Store(s, p)
	}
	return p
}

// pred tests the values found at a path (none: missing).
type pred interface {
	test(vals []any) bool
}

// eqP: equality; against an array, the array or any element; null
// matches a missing field.
type eqP struct{ v any }

func (p eqP) test(vals []any) bool {
	if len(vals) == 0 {
		return p.v == nil
	}
	for _, v := range vals {
		if eqOne(v, p.v) {
			return true
		}
	}
	return false
}

func eqOne(v, want any) bool {
	if re, ok := want.(*regexp.Regexp); ok {
		return regexOne(v, re)
	}
	if equalValues(v, want) {
		return true
	}
	if a, ok := v.(Array); ok {
		for _, el := range a {
			if equalValues(el, want) {
				return true
			}
		}
	}
	return false
}

type notP struct{ p pred }

func (p notP) test(vals []any) bool { return !p.p.test(vals) }

type inP struct{ vs []any }

func (p inP) test(vals []any) bool {
	for _, w := range p.vs {
		if (eqP{w}).test(vals) {
			return true
		}
	}
	return false
}

// cmpP: $gt, $gte, $lt, $lte, within the operand's type (numbers together).
type cmpP struct {
	v      any
	lt, eq bool // lt: wants less than v; else greater
}

func (p cmpP) one(v any) bool {
	if rank(v) != rank(p.v) {
		_, minmax := p.v.(MinKey)
		_, mx := p.v.(MaxKey)
		if !(minmax || mx) {
			return false
		}
	}
	c := compareValues(v, p.v)
	if c == 0 {
		return p.eq
	}
	return (c < 0) == p.lt
}

func (p cmpP) test(vals []any) bool {
	if len(vals) == 0 {
		return p.v == nil && p.eq
	}
	for _, v := range vals {
		if p.one(v) {
			return true
		}
		if a, ok := v.(Array); ok {
			for _, el := range a {
				if p.one(el) {
					return true
				}
			}
		}
	}
	return false
}

type existsP bool

func (p existsP) test(vals []any) bool { return (len(vals) > 0) == bool(p) }

type regexP struct{ re *regexp.Regexp }

func (p regexP) test(vals []any) bool {
	for _, v := range vals {
		if regexOne(v, p.re) {
			return true
		}
	}
	return false
}

func regexOne(v any, re *regexp.Regexp) bool {
	switch x := v.(type) {
	case string:
		return re.MatchString(x)
	case Array:
		for _, el := range x {
			if s, ok := el.(string); ok && re.MatchString(s) {
				return true
			}
		}
	}
	return false
}

type sizeP int

func (p sizeP) test(vals []any) bool {
	for _, v := range vals {
		if a, ok := v.(Array); ok && len(a) == int(p) {
			return true
		}
	}
	return false
}

type allP []any

func (p allP) test(vals []any) bool {
	for _, w := range p {
		if !(eqP{w}).test(vals) {
			return false
		}
	}
	return len(p) > 0
}

// elemMatchP: an element of an array matches (a document filter, or the
// operators against the element itself).
type elemMatchP struct {
	doc   matcher
	preds []pred
}

func (p elemMatchP) test(vals []any) bool {
	for _, v := range vals {
		a, ok := v.(Array)
		if !ok {
			continue
		}
		for _, el := range a {
			if p.doc != nil {
				if sub, ok := el.(*Doc); ok && p.doc.match(sub) {
					return true
				}
				continue
			}
			good := true
			for _, q := range p.preds {
				if !q.test([]any{el}) {
					good = false
					break
				}
			}
			if good {
				return true
			}
		}
	}
	return false
}

type typeP []int

var typeNames = map[string]int{"double": 1, "string": 2, "object": 3, "array": 4, "binData": 5,
	"undefined": 6, "objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "int": 16,
	"timestamp": 17, "long": 18, "decimal": 19, "minKey": -1, "maxKey": 127}

func typeCode(v any) int {
	switch x := v.(type) {
	case float64:
		return 1
	case string:
		return 2
	case *Doc:
		return 3
	case Array:
		return 4
	case Binary:
		return 5
	case Undefined:
		return 6
	case ObjectID:
		return 7
	case bool:
		return 8
	case DateTime:
		return 9
	case nil:
		return 10
	case Regex:
		return 11
	case int32:
		return 16
	case Timestamp:
		return 17
	case int64, int:
		return 18
	case Decimal128:
		return 19
	case MinKey:
		return -1
	case MaxKey:
		return 127
	case Raw:
		return int(x.T)
	}
	return 0
}

func (p typeP) test(vals []any) bool {
	for _, v := range vals {
		c := typeCode(v)
		for _, want := range p {
			if want == c || (want == -2 && rank(v) == 3) {
				return true
			}
		}
	}
	return false
}

var regexCache sync.Map

func compileRegex(pattern, options string) (*regexp.Regexp, error) {
	key := options + "/" + pattern
	if re, ok := regexCache.Load(key); ok {
		return re.(*regexp.Regexp), nil
	}
	flags := ""
	for _, c := range options {
		if strings.ContainsRune("ims", c) {
			flags += string(c)
		}
	}
	src := pattern
	if flags != "" {
		src = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, badValue("Regular expression is invalid: %s", err)
	}
	regexCache.Store(key, re)
	return re, nil
}

// --- compiling ------------------------------------------------------------------

// filter is a compiled query with what the planner can use: top-level
// equalities and $in lists by field.
type filter struct {
	m   matcher
	eqs []fieldValues // equalities, top level or in $and: one value each
	ins []fieldValues // $in lists, top level
}

type fieldValues struct {
	field string
	vs    []any
}

func findField(list []fieldValues, field string) ([]any, bool) {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].field == field {
			return list[i].vs, true
		}
	}
	return nil, false
}

// eq: the value a top-level equality gives field.
func (f *filter) eq(field string) (any, bool) {
	vs, ok := findField(f.eqs, field)
	if !ok {
		return nil, false
	}
	return vs[0], true
}

func compileFilter(q *Doc) (*filter, error) {
	f := &filter{}
	if q == nil || len(q.E) == 0 {
		f.m = allM{}
		return f, nil
	}
	m, err := f.compileDoc(q, true)
	if err != nil {
		return nil, err
	}
	f.m = m
	return f, nil
}

func (f *filter) compileDoc(q *Doc, top bool) (matcher, error) {
	out := make(andM, 0, len(q.E))
	fields := make([]fieldM, len(q.E)) // one allocation for the document's
	for i, e := range q.E {
		switch e.K {
		case "$and", "$or", "$nor":
			arr, ok := e.V.(Array)
			if !ok || len(arr) == 0 {
				return nil, badValue("%s must be a nonempty array", e.K)
			}
			subs := make([]matcher, 0, len(arr))
			for _, x := range arr {
				sd, ok := x.(*Doc)
				if !ok {
					return nil, badValue("%s/$or/$nor entries need to be full objects", e.K)
				}
				m, err := f.compileDoc(sd, top && e.K == "$and")
				if err != nil {
					return nil, err
				}
				subs = append(subs, m)
			}
			switch e.K {
			case "$and":
				out = append(out, andM(subs))
			case "$or":
				out = append(out, orM(subs))
			default:
				out = append(out, norM(subs))
			}
		case "$comment":
		case "$expr", "$where", "$text", "$jsonSchema":
			return nil, badValue("%s is not supported by the stand-in", e.K)
		default:
			if strings.HasPrefix(e.K, "$") {
				return nil, badValue("unknown top level operator: %s", e.K)
			}
			preds, err := f.compileField(e.K, e.V, top)
			if err != nil {
				return nil, err
			}
			fields[i] = fieldM{path: splitPath(e.K), preds: preds}
			out = append(out, &fields[i])
		}
	}
	if len(out) == 1 {
		return out[0], nil
	}
	return out, nil
}

func isOperatorDoc(v any) (*Doc, bool) {
	d, ok := v.(*Doc)
	if !ok || len(d.E) == 0 || !strings.HasPrefix(d.E[0].K, "$") {
		return nil, false
	}
	return d, true
}

func (f *filter) noteEq(field string, v any) {
	if f.eqs == nil {
		f.eqs = make([]fieldValues, 0, 4)
	}
	f.eqs = append(f.eqs, fieldValues{field, []any{v}})
}

func (f *filter) compileField(field string, v any, top bool) ([]pred, error) {
	if r, ok := v.(Regex); ok {
		re, err := compileRegex(r.Pattern, r.Options)
		if err != nil {
			return nil, err
		}
		return []pred{regexP{re}}, nil
	}
	od, ok := isOperatorDoc(v)
	if !ok {
		if top {
			f.noteEq(field, v)
		}
		return []pred{eqP{v}}, nil
	}
	preds := make([]pred, 0, len(od.E))
	var regex, options string
	hasRegex := false
	for _, e := range od.E {
		var p pred
		switch e.K {
		case "$eq":
			if top {
				f.noteEq(field, e.V)
			}
			p = eqP{e.V}
		case "$ne":
			p = notP{eqP{e.V}}
		case "$gt", "$gte", "$lt", "$lte":
			p = cmpP{e.V, e.K[1] == 'l', len(e.K) == 4}
		case "$in", "$nin":
			arr, ok := e.V.(Array)
			if !ok {
				return nil, badValue("%s needs an array", e.K)
			}
			vs := make([]any, len(arr))
			for i, x := range arr {
				vs[i] = x
				if r, ok := x.(Regex); ok {
					re, err := compileRegex(r.Pattern, r.Options)
					if err != nil {
						return nil, err
					}
					vs[i] = re
				}
			}
			p = inP{vs}
			if e.K == "$nin" {
				p = notP{p}
			} else if top {
				f.ins = append(f.ins, fieldValues{field, vs})
			}
		case "$exists":
			p = existsP(truthy(e.V))
		case "$regex":
			hasRegex = true
			switch r := e.V.(type) {
			case string:
				regex = r
			case Regex:
				regex, options = r.Pattern, r.Options
			default:
				return nil, badValue("$regex has to be a string")
			}
			continue
		case "$options":
			s, _ := e.V.(string)
			options = s
			continue
		case "$not":
			var sub []pred
			var err error
			if r, ok := e.V.(Regex); ok {
				sub, err = f.compileField(field, r, false)
			} else if _, ok := isOperatorDoc(e.V); ok {
				sub, err = f.compileField(field, e.V, false)
			} else {
				return nil, badValue("$not needs a regex or a document")
			}
			if err != nil {
				return nil, err
			}
			p = notP{andP(sub)}
		case "$size":
			n, _, _, ok := number(e.V)
			if !ok {
				return nil, badValue("$size needs a number")
			}
			p = sizeP(n)
		case "$all":
			arr, ok := e.V.(Array)
			if !ok {
				return nil, badValue("$all needs an array")
			}
			p = allP(arr)
		case "$elemMatch":
			sd, ok := e.V.(*Doc)
			if !ok {
				return nil, badValue("$elemMatch needs an Object")
			}
			if _, isOp := isOperatorDoc(sd); isOp && sd.E[0].K != "$and" && sd.E[0].K != "$or" {
				sub, err := f.compileField(field, sd, false)
				if err != nil {
					return nil, err
				}
				p = elemMatchP{preds: sub}
			} else {
				m, err := (&filter{}).compileDoc(sd, false)
				if err != nil {
					return nil, err
				}
				p = elemMatchP{doc: m}
			}
		case "$type":
			var codes typeP
			list, ok := e.V.(Array)
			if !ok {
				list = Array{e.V}
			}
			for _, x := range list {
				if s, ok := x.(string); ok {
					if s == "number" {
						codes = append(codes, -2)
					} else {
						codes = append(codes, typeNames[s])
					}
				} else if n, _, _, ok := number(x); ok {
					codes = append(codes, int(n))
				}
			}
			p = codes
		case "$comment":
			continue
		default:
			return nil, badValue("unknown operator: %s", e.K)
		}
		preds = append(preds, p)
	}
	if hasRegex {
		re, err := compileRegex(regex, options)
		if err != nil {
			return nil, err
		}
		preds = append(preds, regexP{re})
	}
	return preds, nil
}

type andP []pred

func (p andP) test(vals []any) bool {
	for _, q := range p {
		if !q.test(vals) {
			return false
		}
	}
	return true
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case nil, Undefined:
		return false
	}
	if _, f, _, ok := number(v); ok {
		return f != 0
	}
	return true
}

// --- sort ---------------------------------------------------------------------------

type sortKey struct {
	path []string
	name string
	desc bool
}

func compileSort(v any) ([]sortKey, error) {
	d, ok := v.(*Doc)
	if v == nil || !ok {
		return nil, nil
	}
	var out []sortKey
	for _, e := range d.E {
		if _, isDoc := e.V.(*Doc); isDoc { // {$meta: ...}
			continue
		}
		n, f, _, ok := number(e.V)
		if !ok {
			return nil, badValue("bad sort specification")
		}
		if n == 0 && f == 0 {
			return nil, badValue("bad sort specification")
		}
		out = append(out, sortKey{splitPath(e.K), e.K, f < 0})
	}
	return out, nil
}

// sortValue: the value a document sorts by (missing sorts as null; an
// array by its least element ascending, its greatest descending).
func sortValue(d *Doc, k sortKey) any {
	v, _ := getPath(d, k.path)
	if a, ok := v.(Array); ok && len(a) > 0 {
		best := a[0]
		for _, el := range a[1:] {
			if c := compareValues(el, best); (c < 0) != k.desc && c != 0 {
				best = el
			}
		}
		return best
	}
	return v
}

func compareBy(keys []sortKey, a, b *Doc) int {
	for _, k := range keys {
		c := compareValues(sortValue(a, k), sortValue(b, k))
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func sortEntries(es []*entry, keys []sortKey) {
	if len(keys) == 0 {
		return
	}
	sort.SliceStable(es, func(i, j int) bool { return compareBy(keys, es[i].doc, es[j].doc) < 0 })
}

// --- projection -------------------------------------------------------------------------

type projection struct {
	include bool
	paths   [][]string
	noID    bool
}

func compileProjection(v any) (*projection, error) {
	d, ok := v.(*Doc)
	if !ok || len(d.E) == 0 {
		return nil, nil
	}
	p := &projection{}
	decided := false
	for _, e := range d.E {
		on := truthy(e.V)
		if _, isDoc := e.V.(*Doc); isDoc {
			on = true // $slice, $elemMatch, $meta: kept whole
		}
		if e.K == "_id" {
			p.noID = !on
			continue
		}
		if decided && on != p.include {
			return nil, &cmdError{Code: 31254, Name: "Location31254",
				Msg: "Cannot do exclusion on field " + e.K + " in inclusion projection"}
		}
		p.include, decided = on, true
		p.paths = append(p.paths, splitPath(e.K))
	}
	if !decided {
		p.include = false
	}
	return p, nil
}

func (p *projection) apply(d *Doc) *Doc {
	if p == nil {
		return d
	}
	if p.include {
		out := &Doc{}
		if id, ok := d.Get("_id"); ok && !p.noID {
			out.E = append(out.E, Elem{"_id", id})
		}
		rest := projectDoc(d, p.paths)
		for _, e := range rest.E {
			if e.K != "_id" {
				out.E = append(out.E, e)
			}
		}
		return out
	}
	out := d.Clone()
	if p.noID {
		out.Delete("_id")
	}
	for _, path := range p.paths {
		unsetPath(out, path)
	}
	return out
}

// projectDoc: what an inclusion of paths keeps of d.
func projectDoc(d *Doc, paths [][]string) *Doc {
	out := &Doc{}
	for _, e := range d.E {
		if v, ok := projectInclude(e.K, e.V, paths); ok {
			out.E = append(out.E, Elem{e.K, v})
		}
	}
	return out
}

// projectInclude: the part of a field an inclusion keeps.
func projectInclude(key string, v any, paths [][]string) (any, bool) {
	var subs [][]string
	for _, path := range paths {
		if path[0] != key {
			continue
		}
		if len(path) == 1 {
			return v, true
		}
		subs = append(subs, path[1:])
	}
	if subs == nil {
		return nil, false
	}
	switch x := v.(type) {
	case *Doc:
		return projectDoc(x, subs), true
	case Array:
		var out Array
		for _, el := range x {
			if sd, ok := el.(*Doc); ok {
				out = append(out, projectDoc(sd, subs))
			}
		}
		return out, true
	}
	return nil, false
}

func cmdErr(code int32, name, msg string) *cmdError {
	return &cmdError{Code: code, Name: name, Msg: msg}
}
